/**
 * The piscina worker module: one of these runs in each thread of the InferencePool.
 *
 * Following piscina's async_load pattern, the module's default export is a PROMISE of the task
 * handler, so ONNX Runtime is loaded once per thread before the thread reports ready. Each
 * thread keeps one ORT session per model, keyed by the model's content hash, in a small LRU:
 * a model is read, hash-checked and loaded once, then every later unit for it reuses the session.
 *
 * Tensors arrive in transferred ArrayBuffers and are wrapped by ort.Tensor without copying; the
 * outputs' buffers are moved back the same way (Piscina.move).
 *
 * Errors never escape as thrown exceptions (structured clone would drop their `code`): the
 * handler answers `{ ok: false, error: { code, message, meta } }` and the pool rethrows a DrillError.
 */
import { createHash } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { open, readFile, rm } from 'node:fs/promises';
import { isMainThread, threadId, workerData } from 'node:worker_threads';
import type { InferenceSession } from 'onnxruntime-node';
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { DrillError, isDrillError } from '../util/errors.ts';
import type { HostTensor } from '../util/tensor.ts';
import { executionProfile } from './device.ts';
import type { DeviceSelection, ExecutionProfile } from './device.ts';
import { inputSpecs, openSession, runChecked } from './session.ts';
import type { RowAxes } from './plan.ts';
import { resultDigest } from '../pod/commit.ts';
import { tensorFrameParts } from '../protocol/tensors.ts';

/**
 * Results smaller than this are returned (and revealed over the network) even when a spool file
 * is offered: 64 KiB crosses loopback in well under a millisecond, less than a file costs.
 */
export const SPOOL_MIN_BYTES = 64 * 1024;

function resultBytes(outputs: Record<string, HostTensor>): number {
  let n = 0;
  for (const t of Object.values(outputs)) n += t.data.byteLength;
  return n;
}

/**
 * Write a result's tensor frame to a new file: O_EXCL (never over an existing file, so never
 * through a planted link either) and O_NOFOLLOW, positional writes of each part. A failed write
 * removes what it created.
 */
async function writeSpool(path: string, outputs: Record<string, HostTensor>): Promise<void> {
  const { byteLength, parts } = tensorFrameParts(outputs);
  let fh;
  try {
    fh = await open(path, fsc.O_CREAT | fsc.O_EXCL | fsc.O_WRONLY | fsc.O_NOFOLLOW, 0o600);
  } catch (e) {
    // EEXIST included: a file (or link) already there is never written through or removed.
    throw new DrillError('SPOOL_WRITE_FAILED', `spoolPath: cannot create ${path} (${(e as NodeJS.ErrnoException).code ?? String(e)})`, { field: 'spoolPath' });
  }
  try {
    for (const p of parts) {
      let off = 0;
      while (off < p.bytes.length) off += (await fh.write(p.bytes, off, p.bytes.length - off, p.offset + off)).bytesWritten;
    }
    await fh.truncate(byteLength); // trailing padding of the last tensor, if any
  } catch (e) {
    await fh.close().catch(() => undefined);
    await rm(path, { force: true }).catch(() => undefined);
    throw new DrillError('SPOOL_WRITE_FAILED', `spoolPath: cannot write the result to ${path} (${e instanceof Error ? e.message : String(e)})`, { field: 'spoolPath' }, { cause: e });
  }
  await fh.close();
}

/** Settings every thread receives as piscina workerData. */
export interface ThreadConfig {
  selection: DeviceSelection;
  intraOpThreads: number;
  allowSpinning: boolean;
  /** Sessions kept per thread (LRU by model hash). */
  maxSessions: number;
  /** Hash the model file on load and refuse it when it does not match modelHash. */
  verifyModelHash: boolean;
  /** A tiny model to open (and run) on the selected device when the pool starts. */
  probeModel?: Uint8Array;
}

/** A task posted to a thread. */
export type ThreadTask =
  | { kind: 'probe' }
  /** Load a model's session ahead of its first unit (a job about to start). */
  | { kind: 'load'; modelHash: string; modelPath: string }
  | {
      kind: 'run';
      modelHash: string;
      modelPath: string;
      inputs: Record<string, HostTensor>;
      outputNames?: string[];
      /** Where the rows lie: lets a large unit run in chunks of rows (session.ts runChecked). */
      rowAxes?: RowAxes;
      /** Also compute the result's digest (pod/commit.ts resultDigest) here, off the main thread. */
      digest?: boolean;
      /**
       * Write the result as a tensor frame to this new file (created exclusively, never through a
       * link) and send no tensors back: the coordinator's result spool (coordinator/spool.ts).
       * Results under SPOOL_MIN_BYTES are returned instead (`spooled` false).
       */
      spoolPath?: string;
    };

/** A serialisable error (DrillError's fields). */
export interface WireError {
  code: string;
  message: string;
  meta: Record<string, unknown>;
}

/** A thread's answer. */
export type ThreadReply =
  | { ok: true; kind: 'probe'; thread: number; profile: ExecutionProfile }
  | { ok: true; kind: 'load'; thread: number; loaded: boolean; loadMs: number }
  | {
      ok: true;
      kind: 'run';
      thread: number;
      /** The result's tensors; empty when they were written to `spoolPath`. */
      outputs: Record<string, HostTensor>;
      /** resultDigest of the result (when asked for, or spooled). */
      digest?: string;
      /** Whether the tensors went to `spoolPath` instead of `outputs`. */
      spooled: boolean;
      /** Wall time of the ORT run(s) in ms (excludes session loading). */
      runMs: number;
      /** Whether this task had to load the model's session (false = cache hit). */
      sessionLoaded: boolean;
      /** Time spent loading the session in ms (0 on a cache hit). */
      loadMs: number;
      /** Sessions this thread has loaded since it started. */
      sessionLoads: number;
      /** performance.timeOrigin + performance.now() when the thread picked the task up. */
      startedAt: number;
      /** ms the thread spent on this task (session load + run + output handling). */
      busyMs: number;
      profile: ExecutionProfile;
    }
  | { ok: false; thread: number; error: WireError };

/** The handler's type (what the default export resolves to). */
export type ThreadHandler = (task: ThreadTask) => Promise<unknown>;

function toWire(e: unknown): WireError {
  if (isDrillError(e)) return { code: e.code, message: e.message, meta: { ...(e.meta as Record<string, unknown>) } };
  const msg = e instanceof Error ? e.message : String(e);
  return { code: 'RUN_FAILED', message: `onnxruntime: ${msg}`, meta: {} };
}

/** Build the handler for a thread config (exported for in-process tests). */
export async function createHandler(cfg: ThreadConfig): Promise<ThreadHandler> {
  const profile = executionProfile(cfg.selection, cfg.intraOpThreads);
  const sessionCfg = { executionProviders: cfg.selection.executionProviders, intraOpThreads: cfg.intraOpThreads, allowSpinning: cfg.allowSpinning };
  // Insertion order is recency order: a hit re-inserts its key at the end.
  const sessions = new Map<string, Promise<InferenceSession>>();
  let sessionLoads = 0;

  async function load(modelHash: string, modelPath: string): Promise<InferenceSession> {
    const bytes = new Uint8Array(await readFile(modelPath));
    if (cfg.verifyModelHash) {
      const got = createHash('sha256').update(bytes).digest('hex');
      if (got !== modelHash.toLowerCase()) {
        throw new DrillError('MODEL_HASH_MISMATCH', `modelPath: expected a file whose sha256 is ${modelHash}, received ${modelPath} with sha256 ${got}`, { field: 'modelPath', modelPath, expected: modelHash, received: got });
      }
    }
    try {
      return await openSession(bytes, sessionCfg);
    } catch (e) {
      throw new DrillError('MODEL_LOAD_FAILED', `modelPath: expected an ONNX model ONNX Runtime can load, received ${modelPath} (${e instanceof Error ? e.message : String(e)})`, { field: 'modelPath', modelPath }, { cause: e });
    }
  }

  async function session(modelHash: string, modelPath: string): Promise<{ s: InferenceSession; loaded: boolean; loadMs: number }> {
    const hit = sessions.get(modelHash);
    if (hit) {
      sessions.delete(modelHash);
      sessions.set(modelHash, hit);
      return { s: await hit, loaded: false, loadMs: 0 };
    }
    const t0 = performance.now();
    const p = load(modelHash, modelPath);
    sessions.set(modelHash, p);
    try {
      const s = await p;
      sessionLoads++;
      while (sessions.size > cfg.maxSessions) {
        const [oldest, old] = sessions.entries().next().value as [string, Promise<InferenceSession>];
        sessions.delete(oldest);
        await old.then((o) => o.release()).catch(() => undefined);
      }
      return { s, loaded: true, loadMs: performance.now() - t0 };
    } catch (e) {
      sessions.delete(modelHash);
      throw e;
    }
  }

  async function probe(): Promise<void> {
    if (!cfg.probeModel) return;
    const s = await openSession(cfg.probeModel, sessionCfg);
    try {
      const feeds: Record<string, HostTensor> = {};
      for (const spec of inputSpecs(s)) {
        const dims = spec.shape.map((d) => (typeof d === 'number' ? d : 1));
        const n = dims.reduce((a, b) => a * b, 1);
        if (spec.type !== 'float32') throw new DrillError('UNSUPPORTED_MODEL', `probe model input ${spec.name}: expected float32, received ${spec.type}`);
        feeds[spec.name] = { dtype: 'float32', dims, data: new Float32Array(n) };
      }
      await runChecked(s, feeds);
    } finally {
      await s.release();
    }
  }

  return async (task: ThreadTask): Promise<unknown> => {
    const startedAt = performance.timeOrigin + performance.now();
    try {
      if (task.kind === 'probe') {
        await probe();
        return { ok: true, kind: 'probe', thread: threadId, profile } satisfies ThreadReply;
      }
      if (task.kind === 'load') {
        const { loaded, loadMs } = await session(task.modelHash, task.modelPath);
        return { ok: true, kind: 'load', thread: threadId, loaded, loadMs } satisfies ThreadReply;
      }
      const { s, loaded, loadMs } = await session(task.modelHash, task.modelPath);
      const t0 = performance.now();
      const { outputs } = await runChecked(s, task.inputs, task.outputNames, task.rowAxes);
      const runMs = performance.now() - t0;
      const digest = task.digest || task.spoolPath ? resultDigest(outputs) : undefined;
      // A small result crosses the network faster than a file is created, written, read and
      // removed: only results of SPOOL_MIN_BYTES or more go to the spool.
      const spool = task.spoolPath !== undefined && resultBytes(outputs) >= SPOOL_MIN_BYTES;
      if (spool) await writeSpool(task.spoolPath!, outputs);
      const sent = spool ? {} : outputs;
      const busyMs = performance.timeOrigin + performance.now() - startedAt;
      const reply: ThreadReply = { ok: true, kind: 'run', thread: threadId, outputs: sent, ...(digest ? { digest } : {}), spooled: spool, runMs, sessionLoaded: loaded, loadMs, sessionLoads, startedAt, busyMs, profile };
      const buffers = new Set<ArrayBuffer>();
      for (const t of Object.values(sent)) if (t.data.buffer instanceof ArrayBuffer) buffers.add(t.data.buffer);
      return move({ get [transferableSymbol]() { return [...buffers]; }, get [valueSymbol]() { return reply; } });
    } catch (e) {
      return { ok: false, thread: threadId, error: toWire(e) } satisfies ThreadReply;
    }
  };
}

/**
 * piscina loads this: a promise of the handler, so ORT and the config are ready before the first
 * task. Undefined when imported on the main thread (tests call createHandler directly).
 */
const handler: Promise<ThreadHandler> | undefined = isMainThread ? undefined : createHandler(workerData as ThreadConfig);
export default handler;
