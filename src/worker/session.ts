/**
 * ONNX Runtime session helpers shared by the pool's threads (thread.ts) and the in-process
 * baseline (direct.ts): session options, HostTensor <-> ort.Tensor without copies, and running
 * a checked plan (one batched call, or row by row with outputs concatenated in order).
 */
import { InferenceSession, Tensor } from 'onnxruntime-node';
import { DrillError } from '../util/errors.ts';
import type { HostTensor, TensorData } from '../util/tensor.ts';
import { isDtype, DTYPES } from '../util/tensor.ts';
import { chunkPlan, concatAxis, concatRows, planRun, sliceAxis, sliceRow } from './plan.ts';
import type { InputSpec, RowAxes, RunPlan } from './plan.ts';

/** How a session is created. */
export interface SessionConfig {
  /** ORT execution providers in priority order, e.g. ['cpu'] or ['cuda', 'cpu']. */
  executionProviders: string[];
  /** ORT intra-op threads for this session (1 = no ORT thread pool). */
  intraOpThreads: number;
  /**
   * Let ORT's intra-op threads spin while waiting for work. Spinning cuts latency for one
   * session that owns the machine, but steals cores from the other sessions of a pool, so the
   * pool turns it off.
   */
  allowSpinning?: boolean;
  /** ORT log severity (0 verbose .. 4 fatal); 3 keeps ORT's per-node warnings out of the logs. */
  logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
}

/** ORT session options for a config. */
export function sessionOptions(cfg: SessionConfig): InferenceSession.SessionOptions {
  const spin = (cfg.allowSpinning ?? true) ? '1' : '0';
  return {
    executionProviders: cfg.executionProviders,
    intraOpNumThreads: cfg.intraOpThreads,
    // One operator at a time: parallel inter-op mode only helps branchy graphs and would add a
    // second thread pool per session on top of the pool's threads.
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    logSeverityLevel: cfg.logSeverityLevel ?? 3,
    extra: { session: { intra_op: { allow_spinning: spin }, inter_op: { allow_spinning: spin } } },
  };
}

/** Create a session from a file path or the model's bytes. */
export async function openSession(model: string | Uint8Array, cfg: SessionConfig): Promise<InferenceSession> {
  const opts = sessionOptions(cfg);
  return typeof model === 'string' ? InferenceSession.create(model, opts) : InferenceSession.create(model, opts);
}

/** The session's tensor inputs as InputSpecs. @throws DrillError UNSUPPORTED_MODEL for non-tensor inputs. */
export function inputSpecs(session: InferenceSession): InputSpec[] {
  return session.inputMetadata.map((m) => {
    if (!m.isTensor) throw new DrillError('UNSUPPORTED_MODEL', `model input ${JSON.stringify(m.name)}: expected a tensor input, received a non-tensor (sequence/map) input`, { input: m.name });
    return { name: m.name, type: m.type, shape: m.shape };
  });
}

/** Wrap a HostTensor as an ort.Tensor over the same typed array (no copy). */
export function toOrt(t: HostTensor): Tensor {
  // Every HostTensor dtype is ORT's own name over the typed array ORT expects in Node: 'bool'
  // takes a Uint8Array and 'float16' a Uint16Array of half bits (Node has no Float16Array).
  return new Tensor(t.dtype, t.data as Float32Array, t.dims);
}

/**
 * An ORT output as a HostTensor over the same typed array (no copy).
 * @throws DrillError UNSUPPORTED_OUTPUT for non-tensor outputs or dtypes HostTensor lacks.
 */
export function fromOrt(name: string, v: unknown): HostTensor {
  if (!(v instanceof Tensor)) throw new DrillError('UNSUPPORTED_OUTPUT', `outputs.${name}: expected a tensor, received a non-tensor value`, { output: name });
  const type = v.type;
  if (!isDtype(type)) {
    throw new DrillError('UNSUPPORTED_OUTPUT', `outputs.${name}: expected one of ${DTYPES.join(', ')}, received dtype ${type}`, { output: name, dtype: type });
  }
  let data = v.data as TensorData;
  // A runtime with Float16Array hands halves out as one: keep our representation (the bits).
  if (type === 'float16' && !(data instanceof Uint16Array)) {
    const d = data as unknown as ArrayBufferView;
    data = new Uint16Array(d.buffer, d.byteOffset, d.byteLength / 2);
  }
  return { dtype: type, dims: [...v.dims], data };
}

async function runOnce(session: InferenceSession, feeds: Record<string, HostTensor>, outputNames: string[]): Promise<Record<string, HostTensor>> {
  const ortFeeds: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(feeds)) ortFeeds[k] = toOrt(t);
  const res = await session.run(ortFeeds, outputNames);
  const out: Record<string, HostTensor> = {};
  for (const o of outputNames) out[o] = fromOrt(o, res[o]);
  return out;
}

/**
 * Split input bytes per ORT call when a unit's row axes are known (RowAxes): 1 MiB, the chunk
 * the raw ONNX Runtime baseline uses for the tiny mlp (8,192 rows of 128 B), where per-call
 * overhead is already negligible. A 16 MiB unit of the mlp run whole makes ORT hold ~200 MB of
 * intermediates (and its arena keeps that peak) in every thread; in 1 MiB chunks, ~13 MB.
 */
export const CHUNK_INPUT_BYTES = 1024 * 1024;

/**
 * Check `inputs` against the session, then run: in one call (batch mode) or one ORT run per row
 * with outputs concatenated along axis 0 (rows mode, for models whose first dim is fixed at 1).
 * With `axes` (where each input's and output's rows lie), a batch larger than
 * `maxChunkBytes` (CHUNK_INPUT_BYTES) of split input runs in chunks of rows, outputs
 * concatenated on their axes: the same rows, bounded memory.
 * @throws DrillError INPUT_MISMATCH before running when the inputs do not fit the model.
 * @throws DrillError UNSUPPORTED_OUTPUT / OUTPUT_MISMATCH when outputs cannot be returned.
 */
export async function runChecked(
  session: InferenceSession,
  inputs: Record<string, HostTensor>,
  wanted?: readonly string[],
  axes?: RowAxes,
  maxChunkBytes = CHUNK_INPUT_BYTES,
): Promise<{ outputs: Record<string, HostTensor>; plan: RunPlan; chunks: number }> {
  const plan = planRun(inputSpecs(session), session.outputNames, inputs, wanted);
  if (plan.mode === 'batch') {
    const c = axes ? chunkPlan(inputs, plan.outputNames, axes, maxChunkBytes) : null;
    if (!c || !axes) return { outputs: await runOnce(session, inputs, plan.outputNames), plan, chunks: 1 };
    const parts: Record<string, HostTensor>[] = [];
    for (let r = 0; r < c.rows; r += c.chunkRows) {
      const end = Math.min(c.rows, r + c.chunkRows);
      const feeds: Record<string, HostTensor> = {};
      for (const [k, t] of Object.entries(inputs)) {
        const axis = axes.inputs[k];
        feeds[k] = axis === null || axis === undefined ? t : sliceAxis(t, axis, r, end);
      }
      parts.push(await runOnce(session, feeds, plan.outputNames));
    }
    const outputs: Record<string, HostTensor> = {};
    for (const o of plan.outputNames) outputs[o] = concatAxis(o, parts.map((p) => p[o]!), axes.outputs[o]!);
    return { outputs, plan, chunks: parts.length };
  }
  const parts: Record<string, HostTensor>[] = [];
  for (let i = 0; i < plan.rows; i++) {
    const feeds: Record<string, HostTensor> = {};
    for (const [k, t] of Object.entries(inputs)) feeds[k] = plan.split.includes(k) ? sliceRow(t, i) : t;
    parts.push(await runOnce(session, feeds, plan.outputNames));
  }
  const outputs: Record<string, HostTensor> = {};
  for (const o of plan.outputNames) outputs[o] = concatRows(o, parts.map((p) => p[o]!));
  return { outputs, plan, chunks: plan.rows };
}
