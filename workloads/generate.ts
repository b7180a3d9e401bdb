/**
 * Regenerates the sample workloads: for each, `model.onnx`, `inputs/<input>.npy`,
 * `golden/<output>.npy` (a direct onnxruntime-node run) and `job.json`. Weights and inputs come
 * from fixed seeds, so models, inputs and manifests are byte-identical on every run; golden
 * outputs are byte-identical on the same CPU and ORT version (single-threaded run), and within
 * the manifest's policy elsewhere.
 *
 *   node workloads/generate.ts                 # rewrite workloads/<name>/ for every workload
 *   node workloads/generate.ts --only cnn,mlp  # just these
 *   node workloads/generate.ts --out /tmp/w    # write elsewhere
 *   node workloads/generate.ts --bench         # bigger inputs, no golden, into workloads/.bench/
 *   node workloads/generate.ts --bench --rows 8192 --only cnn
 *
 * Library use: `generateWorkload(spec, dir, opts)`; inputs alone: `makeInputs` in models.ts.
 */
import { mkdir, writeFile, rm } from 'node:fs/promises';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { decodeModel } from '../src/onnx/decode.ts';
import type { DecodedModel } from '../src/onnx/decode.ts';
import { rowCost } from '../src/onnx/inspect.ts';
import { encodeNpy } from '../src/util/npy.ts';
import { UserError } from '../src/util/errors.ts';
import type { Dtype, HostTensor, TensorData } from '../src/util/tensor.ts';
import { DTYPES } from '../src/util/tensor.ts';
import { WORKLOADS, workloadSpec, type WorkloadSpec } from './models.ts';

/** The `job.json` manifest shape the grid parses. Paths are relative to the manifest's folder. */
export interface JobManifest {
  name: string;
  model: string;
  inputs: Record<string, string>;
  policy: string;
  replicas: number;
  unitRows: number;
  flopsPerRow: number;
}

/** Options for generateWorkload. */
export interface GenerateOptions {
  /** Rows of sample input (default: the workload's committed row count). */
  rows?: number;
  /** Write golden outputs (default true). */
  golden?: boolean;
}

/**
 * Bench inputs: the multiple of the committed rows written by `--bench`. 4× the cnn sample is
 * 4096 rows ≈ 0.94 TFLOP per replica: ~18 s of ORT compute per replica on one core of the
 * 2-core dev machine (measured ~4.5 ms/row), so a 2-replica bench job stays well over 10 s.
 */
const BENCH_ROW_FACTOR = 4;

const HERE = dirname(fileURLToPath(import.meta.url));

/** HostTensor dtypes are onnxruntime-node's own names over the typed arrays it takes. */
function toOrt(t: HostTensor): ort.Tensor {
  return new ort.Tensor(t.dtype, t.data as Float32Array, t.dims);
}

function fromOrt(t: ort.Tensor): HostTensor {
  const dtype = t.type as Dtype;
  if (!DTYPES.includes(dtype)) throw new UserError('output type', DTYPES.join(', '), t.type);
  return { dtype, dims: [...t.dims], data: t.data as TensorData };
}

/** A model whose every input has its first dim fixed at 1 runs one row per ORT call. */
export function isRowByRow(m: DecodedModel): boolean {
  return m.inputs.length > 0 && m.inputs.every((v) => v.dims?.[0] === 1);
}

/** FLOPs per row of a workload over its real inputs (every input split on axis 0). */
export function workloadFlopsPerRow(m: DecodedModel, inputs: Record<string, HostTensor>): number {
  const shapes = Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, { dtype: t.dtype, dims: t.dims, batchAxis: 0 }]));
  return rowCost(m, shapes, isRowByRow(m)).flopsPerRow;
}

function sliceRows(t: HostTensor, start: number, end: number): HostTensor {
  const per = t.dims.slice(1).reduce((a, b) => a * b, 1);
  return { dtype: t.dtype, dims: [end - start, ...t.dims.slice(1)], data: t.data.subarray(start * per, end * per) as TensorData };
}

function concatRows(parts: HostTensor[]): HostTensor {
  const first = parts[0]!;
  const rows = parts.reduce((s, p) => s + p.dims[0]!, 0);
  const n = parts.reduce((s, p) => s + p.data.length, 0);
  const Ctor = first.data.constructor as { new (n: number): TensorData };
  const data = new Ctor(n);
  let o = 0;
  for (const p of parts) {
    (data as Float32Array).set(p.data as Float32Array, o);
    o += p.data.length;
  }
  return { dtype: first.dtype, dims: [rows, ...first.dims.slice(1)], data };
}

/**
 * Run a model over whole inputs with onnxruntime-node, single-threaded (so results do not
 * depend on the thread count). Fixed-batch-1 models are run row by row.
 */
export async function runReference(model: Uint8Array, inputs: Record<string, HostTensor>): Promise<Record<string, HostTensor>> {
  const rowByRow = isRowByRow(await decodeModel(model));
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential' });
  try {
    const rows = Object.values(inputs)[0]!.dims[0]!;
    const chunks: Record<string, HostTensor[]> = {};
    const step = rowByRow ? 1 : rows;
    for (let r = 0; r < rows; r += step) {
      const feeds: Record<string, ort.Tensor> = {};
      for (const [k, t] of Object.entries(inputs)) feeds[k] = toOrt(step === rows ? t : sliceRows(t, r, r + step));
      const out = await session.run(feeds);
      for (const name of session.outputNames) {
        // Copy: ORT's output buffers are not ours to keep across runs.
        const h = fromOrt(out[name]!);
        (chunks[name] ??= []).push({ ...h, data: h.data.slice() as TensorData });
      }
    }
    return Object.fromEntries(Object.entries(chunks).map(([k, v]) => [k, concatRows(v)]));
  } finally {
    await session.release();
  }
}

/** Serialise a manifest the same way every time (fixed key order, 2-space indent, trailing newline). */
export function manifestJson(m: JobManifest): string {
  const ordered: JobManifest = { name: m.name, model: m.model, inputs: m.inputs, policy: m.policy, replicas: m.replicas, unitRows: m.unitRows, flopsPerRow: m.flopsPerRow };
  return JSON.stringify(ordered, null, 2) + '\n';
}

/**
 * Write one workload into `dir` (replacing what is there).
 * @returns the manifest written
 */
export async function generateWorkload(spec: WorkloadSpec, dir: string, opts: GenerateOptions = {}): Promise<JobManifest> {
  const model = await spec.build();
  const decoded = await decodeModel(model, `${spec.name}/model.onnx`);
  const inputs = spec.makeInputs(opts.rows ?? spec.rows, spec.inputSeed);
  await rm(dir, { recursive: true, force: true });
  await mkdir(join(dir, 'inputs'), { recursive: true });
  await writeFile(join(dir, 'model.onnx'), model);
  const manifest: JobManifest = {
    name: spec.name,
    model: 'model.onnx',
    inputs: {},
    policy: spec.policy,
    replicas: spec.replicas,
    unitRows: spec.unitRows,
    flopsPerRow: workloadFlopsPerRow(decoded, inputs),
  };
  for (const v of decoded.inputs) {
    const t = inputs[v.name];
    if (!t) throw new Error(`workload ${spec.name}: makeInputs produced no ${v.name}`);
    manifest.inputs[v.name] = `inputs/${v.name}.npy`;
    await writeFile(join(dir, manifest.inputs[v.name]!), encodeNpy(t));
  }
  if (opts.golden ?? true) {
    await mkdir(join(dir, 'golden'), { recursive: true });
    const outs = await runReference(model, inputs);
    for (const v of decoded.outputs) await writeFile(join(dir, 'golden', `${v.name}.npy`), encodeNpy(outs[v.name]!));
  }
  await writeFile(join(dir, 'job.json'), manifestJson(manifest));
  return manifest;
}

function parseArgs(argv: string[]): { out: string; only: WorkloadSpec[]; bench: boolean; rows?: number } {
  let out: string | undefined;
  let only: WorkloadSpec[] = [...WORKLOADS];
  let bench = false;
  let rows: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const val = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new UserError(a, 'a value', undefined);
      return v;
    };
    if (a === '--out') out = resolve(val());
    else if (a === '--only') only = val().split(',').map((n) => workloadSpec(n.trim()));
    else if (a === '--bench') bench = true;
    else if (a === '--rows') {
      const v = val();
      rows = Number(v);
      if (!Number.isSafeInteger(rows) || rows < 1) throw new UserError('--rows', 'a positive integer', v);
    } else throw new UserError('argument', '--out DIR, --only a,b, --bench or --rows N', a);
  }
  return { out: out ?? (bench ? join(HERE, '.bench') : HERE), only, bench, rows };
}

async function main(): Promise<void> {
  const { out, only, bench, rows } = parseArgs(process.argv.slice(2));
  for (const spec of only) {
    const t0 = performance.now();
    const n = rows ?? (bench ? spec.rows * BENCH_ROW_FACTOR : spec.rows);
    const m = await generateWorkload(spec, join(out, spec.name), { rows: n, golden: !bench });
    console.log(`${spec.name}: ${n} rows, ${m.flopsPerRow} FLOPs/row, ${((performance.now() - t0) / 1000).toFixed(1)} s → ${join(out, spec.name)}`);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e: unknown) => {
    if (e instanceof UserError) {
      console.error(e.message);
      process.exit(2);
    }
    throw e;
  });
}
