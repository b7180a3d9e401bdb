/**
 * The worker's inference runtime: a piscina pool of threads, each holding one ONNX Runtime
 * session per model (keyed by content hash), that runs work units' input rows and returns the
 * outputs with the execution profile that produced them.
 *
 *   InferencePool.run(req) ──(inputs' buffers transferred)──▶ thread.ts handler
 *        ▲                                                    │ session LRU by modelHash
 *        └────────(outputs' buffers transferred back)─────────┘ ort.Tensor over the same arrays
 *
 * Threads vs intra-op threads: `threads` sessions run side by side, one unit each; a session's
 * `intraOpThreads` split one operator across cores. For the small batches of a work unit one
 * session per core (threads = cores, intraOpThreads = 1) keeps every core busy without ORT's
 * thread-pool synchronisation; one big session (threads = 1, intraOpThreads = cores) gives the
 * lowest latency for a single large unit. See docs/WORKER.md.
 *
 * Backpressure: at most `threads + maxQueue` runs are accepted; the next one is refused at once
 * with POOL_QUEUE_FULL (drop-newest), so the network side stops taking units instead of
 * buffering tensors without bound.
 */
import { availableParallelism } from 'node:os';
import { isMarkedAsUntransferable } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { DrillError, isDrillError } from '../util/errors.ts';
import { silentLogger } from '../util/log.ts';
import type { Logger } from '../util/log.ts';
import type { HostTensor, TensorData } from '../util/tensor.ts';
import { allocData } from '../util/tensor.ts';
import { buildMatMulChain } from './benchmark.ts';
import { checkHostTensor } from './plan.ts';
import { selectDevice, selectionFor } from './device.ts';
import type { Device, DeviceSelection, ExecutionProfile } from './device.ts';
import type { RowAxes } from './plan.ts';
import type { ThreadConfig, ThreadReply, ThreadTask } from './thread.ts';

export type { Device, ExecutionProfile } from './device.ts';

/** Pool settings; every field is optional (see defaultInferencePoolOptions). */
export interface InferencePoolOptions {
  /** Threads, each with its own sessions. Default: os.availableParallelism() (one session per core); 2 on 'cuda'. */
  threads?: number;
  /** ORT intra-op threads per session. Default: 1 when threads > 1 or on 'cuda', else all cores. */
  intraOpThreads?: number;
  /** 'cuda' → ORT CUDA execution provider; DEVICE_UNAVAILABLE when it cannot be used. Default 'cpu'. */
  device?: Device;
  /** Run on the CPU (with a warning) when the requested device is unavailable. Default false. */
  fallbackToCpu?: boolean;
  /** Runs that may wait for a thread (piscina maxQueue); beyond it run() refuses. */
  maxQueue?: number;
  /** Sessions (models) each thread keeps loaded, least recently used evicted first. */
  maxSessionsPerThread?: number;
  /** Hash each model file when a thread loads it and refuse a mismatch. Default true. */
  verifyModelHash?: boolean;
  /**
   * A tiny ONNX model each new pool opens and runs on the selected device in start(), so a
   * device that passes the file checks but cannot run (no GPU, missing cuDNN) fails at start,
   * not on the first unit. Default: none for CPU; recommended for CUDA.
   */
  probeModel?: Uint8Array;
  logger?: Logger;
}

/**
 * Defaults. Why these values:
 * - threads = cores: work units are small batches; one single-threaded session per core has no
 *   intra-op synchronisation and keeps every core busy (measured in docs/WORKER.md).
 * - maxQueue = 4 per thread: enough queued units to keep threads busy while the network side
 *   fetches the next ones, few enough that queued input tensors stay a small multiple of one unit.
 * - maxSessionsPerThread = 4: a worker usually serves one or two jobs at a time; four models per
 *   thread bound memory at 4 × model size × threads.
 */
export const defaultInferencePoolOptions = {
  threads: availableParallelism(),
  /** On 'cuda': two threads, so one prepares/returns tensors while the other's unit is on the GPU; more only multiply GPU memory. */
  cudaThreads: 2,
  device: 'cpu' as Device,
  fallbackToCpu: false,
  maxQueuePerThread: 4,
  maxSessionsPerThread: 4,
  verifyModelHash: true,
} as const;

/** Graceful stop waits this long for running units before terminating threads (a CPU unit takes seconds at most). */
const CLOSE_TIMEOUT_MS = 30_000;
/** Width of the CUDA probe's single MatMul: tiny, it only has to run once on the device. */
const PROBE_WIDTH = 8;
/** Samples kept for the wait/run medians: recent enough to follow load changes, cheap to sort. */
const TIMING_SAMPLES = 512;

/** One unit's inputs for the pool. */
export interface RunRequest {
  /** sha256 hex of the model bytes: the session cache key. */
  modelHash: string;
  /** A local file holding exactly those bytes. */
  modelPath: string;
  /** Tensors by input name, rows along axis 0. */
  inputs: Record<string, HostTensor>;
  /** Outputs to return (default: all, in the model's order). */
  outputNames?: string[];
  /**
   * Aborts the run: the promise rejects with ABORTED at once. A thread already inside ONNX
   * Runtime is never terminated (terminating a thread inside native code can take the whole
   * process down); it finishes the run and the result is discarded.
   */
  signal?: AbortSignal;
  /**
   * Move the inputs' ArrayBuffers to the thread instead of copying (default true). When true,
   * typed arrays that span their whole buffer are DETACHED from the caller after run(); views
   * into a larger buffer are copied (moving them would move the whole buffer).
   */
  transfer?: boolean;
  /** Each input's and output's row axis: a unit over 1 MiB of split input then runs in chunks of rows (bounded ORT memory). */
  rowAxes?: RowAxes;
  /** Compute the result's digest (pod/commit.ts resultDigest) on the thread: RunResult.digest. */
  digest?: boolean;
  /**
   * Write the result's tensor frame to this new file on the thread (created exclusively, not
   * through links) instead of returning the tensors: RunResult.outputs is then empty and
   * `spooled` true, and `digest` is always computed. The coordinator's result spool. A result
   * under 64 KiB (thread.ts SPOOL_MIN_BYTES) is returned as usual, `spooled` false.
   */
  spoolPath?: string;
}

/** One unit's outputs. */
export interface RunResult {
  /** The result's tensors (empty when spooled). */
  outputs: Record<string, HostTensor>;
  /** resultDigest of the result, when asked for (or spooled). */
  digest?: string;
  /** Whether the tensors were written to `spoolPath` instead. */
  spooled: boolean;
  /** ORT run time in ms (excludes queueing and session loading). */
  runMs: number;
  /** The thread (worker_threads threadId) that ran it. */
  thread: number;
  profile: ExecutionProfile;
  /** Whether this run had to load the model's session on its thread (false = cached). */
  sessionLoaded: boolean;
  /** Session load time in ms (0 when cached). */
  loadMs: number;
  /** Time in ms from run() to a thread picking it up. */
  waitMs: number;
}

/** Pool counters. */
export interface InferencePoolStats {
  threads: number;
  queued: number;
  running: number;
  completed: number;
  failed: number;
  /** Sessions loaded over all threads since start (a cache hit adds nothing). */
  sessionLoads: number;
  waitMsP50?: number;
  runMsP50?: number;
  /** Threads' busy time / (threads × time since start), 0..1, over the pool's lifetime. */
  utilization: number;
  /** True while run() would refuse with POOL_QUEUE_FULL. */
  saturated: boolean;
}

const HEX64 = /^[0-9a-fA-F]{64}$/;

/** A fresh, exact-size copy of a tensor's data in its base typed array (never a Buffer view). */
function copyOf(t: HostTensor): TensorData {
  const out = allocData(t.dtype, t.data.length);
  (out as Float32Array).set(t.data as Float32Array);
  return out;
}

/** Resolve/reject with `p`, or reject with an AbortError as soon as `signal` fires. */
function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      const e = new Error('aborted');
      e.name = 'AbortError';
      reject(e);
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function median(xs: readonly number[]): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1]! + s[m]!) / 2;
}

function push(ring: number[], v: number): void {
  ring.push(v);
  if (ring.length > TIMING_SAMPLES) ring.shift();
}

/**
 * A pool of ONNX Runtime threads. Construct, `await start()`, `run()` units, `await stop()`.
 */
export class InferencePool {
  readonly threads: number;
  readonly intraOpThreads: number;
  readonly maxQueue: number;
  #opts: InferencePoolOptions;
  #log: Logger;
  #piscina: Piscina<ThreadTask, ThreadReply> | undefined;
  #selection: DeviceSelection | undefined;
  #profile: ExecutionProfile | undefined;
  #starting: Promise<void> | undefined;
  #inFlight = 0;
  #completed = 0;
  #failed = 0;
  #loadsByThread = new Map<number, number>();
  #busyMs = 0;
  #startedAt = 0;
  #waits: number[] = [];
  #runs: number[] = [];

  /** @throws DrillError USER_INPUT for non-positive or non-integer counts. */
  constructor(opts: InferencePoolOptions = {}) {
    this.#opts = opts;
    this.#log = (opts.logger ?? silentLogger).child('pool');
    const int = (field: string, v: number | undefined, dflt: number): number => {
      const x = v ?? dflt;
      if (!Number.isSafeInteger(x) || x < 1) throw new DrillError('USER_INPUT', `${field}: expected a positive integer, received ${String(v)}`, { field });
      return x;
    };
    const gpu = (opts.device ?? defaultInferencePoolOptions.device) === 'cuda';
    this.threads = int('threads', opts.threads, gpu ? defaultInferencePoolOptions.cudaThreads : defaultInferencePoolOptions.threads);
    // On a GPU the device does the parallel work; the CPU side only feeds it.
    this.intraOpThreads = int('intraOpThreads', opts.intraOpThreads, this.threads > 1 || gpu ? 1 : availableParallelism());
    this.maxQueue = opts.maxQueue === 0 ? 0 : int('maxQueue', opts.maxQueue, this.threads * defaultInferencePoolOptions.maxQueuePerThread);
    int('maxSessionsPerThread', opts.maxSessionsPerThread, defaultInferencePoolOptions.maxSessionsPerThread);
  }

  /** The profile results are produced with (after start()). */
  get profile(): ExecutionProfile | undefined {
    return this.#profile;
  }

  /**
   * Select the device, start the threads and check one of them can run on it.
   * @throws DrillError DEVICE_UNAVAILABLE when the device cannot be used (and fallbackToCpu is unset).
   */
  async start(): Promise<void> {
    // Concurrent start() calls share one start.
    this.#starting ??= this.#start().finally(() => {
      this.#starting = undefined;
    });
    return this.#starting;
  }

  async #start(): Promise<void> {
    if (this.#piscina) return;
    const device = this.#opts.device ?? defaultInferencePoolOptions.device;
    const fallbackToCpu = this.#opts.fallbackToCpu ?? defaultInferencePoolOptions.fallbackToCpu;
    let sel = selectDevice(device, { fallbackToCpu, logger: this.#log });
    try {
      await this.#startWith(sel);
    } catch (e) {
      await this.#destroy();
      if (sel.device === 'cpu' || !fallbackToCpu) {
        if (sel.device !== 'cpu') {
          throw new DrillError('DEVICE_UNAVAILABLE', `device: expected a usable '${sel.device}' execution provider, received an ONNX Runtime failure: ${e instanceof Error ? e.message : String(e)}`, { field: 'device', device: sel.device }, { cause: e });
        }
        throw isDrillError(e) ? e : new DrillError('WORKER_FAILED', `inference threads failed to start: ${e instanceof Error ? e.message : String(e)}`, {}, { cause: e });
      }
      this.#log.warn('device probe failed, falling back to CPU as asked', { device: sel.device, error: e instanceof Error ? e.message : String(e) });
      sel = selectionFor('cpu');
      await this.#startWith(sel);
    }
    this.#log.info('inference pool started', { threads: this.threads, intraOpThreads: this.intraOpThreads, device: sel.device, maxQueue: this.maxQueue });
  }

  async #startWith(sel: DeviceSelection): Promise<void> {
    const cfg: ThreadConfig = {
      selection: sel,
      intraOpThreads: this.intraOpThreads,
      // Spinning ORT threads would steal cores from the pool's other sessions.
      allowSpinning: this.threads === 1,
      maxSessions: this.#opts.maxSessionsPerThread ?? defaultInferencePoolOptions.maxSessionsPerThread,
      verifyModelHash: this.#opts.verifyModelHash ?? defaultInferencePoolOptions.verifyModelHash,
      // A GPU is only known to work once a session ran on it: probe CUDA with a tiny model.
      probeModel: this.#opts.probeModel ?? (sel.device === 'cuda' ? await buildMatMulChain(PROBE_WIDTH, 1) : undefined),
    };
    this.#selection = sel;
    this.#piscina = new Piscina<ThreadTask, ThreadReply>({
      // thread-entry.js installs the stripped-TypeScript cache in the thread, then loads thread.ts.
      filename: new URL('./thread-entry.js', import.meta.url).href,
      // A fixed set of threads: a thread that idles out would lose its loaded sessions.
      minThreads: this.threads,
      maxThreads: this.threads,
      maxQueue: this.maxQueue,
      concurrentTasksPerWorker: 1,
      closeTimeout: CLOSE_TIMEOUT_MS,
      workerData: cfg,
    });
    const reply = await this.#piscina.run({ kind: 'probe' });
    if (!reply.ok) throw new DrillError(reply.error.code, reply.error.message, reply.error.meta);
    if (reply.kind !== 'probe') throw new DrillError('WORKER_FAILED', 'probe: expected a probe reply');
    this.#profile = reply.profile;
    this.#startedAt = performance.now();
  }

  /**
   * Load a model's session on the threads ahead of its first unit (a job about to start), so
   * the first units do not wait for it. One load task per thread; a thread that already holds
   * the session answers at once. Best effort: a failure here resurfaces on the first run.
   * @throws DrillError POOL_NOT_STARTED before start().
   */
  async warm(modelHash: string, modelPath: string): Promise<void> {
    const piscina = this.#piscina;
    if (!piscina) throw new DrillError('POOL_NOT_STARTED', 'InferencePool.warm: expected a started pool (call start() first)');
    const task: ThreadTask = { kind: 'load', modelHash: modelHash.toLowerCase(), modelPath };
    await Promise.all(Array.from({ length: this.threads }, () => piscina.run(task).catch(() => undefined)));
  }

  /**
   * Run one unit's rows on a thread.
   * @throws DrillError POOL_NOT_STARTED before start() or after stop().
   * @throws DrillError BAD_REQUEST for a malformed modelHash/modelPath.
   * @throws DrillError POOL_QUEUE_FULL when threads + maxQueue runs are already in flight.
   * @throws DrillError INPUT_MISMATCH when the inputs do not fit the model (nothing is run).
   * @throws DrillError MODEL_HASH_MISMATCH / MODEL_LOAD_FAILED when the model file is wrong.
   * @throws DrillError RUN_FAILED when ONNX Runtime fails; ABORTED when `signal` fires;
   *   WORKER_FAILED when a thread dies.
   */
  async run(req: RunRequest): Promise<RunResult> {
    const piscina = this.#piscina;
    if (!piscina) throw new DrillError('POOL_NOT_STARTED', 'InferencePool.run: expected a started pool (call start() first)');
    if (typeof req.modelHash !== 'string' || !HEX64.test(req.modelHash)) {
      throw new DrillError('BAD_REQUEST', `modelHash: expected 64 hex characters (sha256), received ${JSON.stringify(String(req.modelHash).slice(0, 80))}`, { field: 'modelHash' });
    }
    if (typeof req.modelPath !== 'string' || req.modelPath.length === 0) {
      throw new DrillError('BAD_REQUEST', `modelPath: expected a file path, received ${JSON.stringify(req.modelPath)}`, { field: 'modelPath' });
    }
    if (req.inputs === null || typeof req.inputs !== 'object') {
      throw new DrillError('INPUT_MISMATCH', `inputs: expected an object of tensors by input name, received ${String(req.inputs)}`, { field: 'inputs' });
    }
    if (this.#inFlight >= this.threads + this.maxQueue) {
      throw new DrillError('POOL_QUEUE_FULL', `InferencePool.run: expected at most ${this.threads + this.maxQueue} runs in flight (threads + maxQueue), received one more`, { threads: this.threads, maxQueue: this.maxQueue });
    }
    // Cheap per-tensor checks here so a malformed tensor never reaches structured clone.
    for (const [name, t] of Object.entries(req.inputs)) checkHostTensor(`inputs.${name}`, t);

    const transfer = req.transfer ?? true;
    const inputs: Record<string, HostTensor> = {};
    const transferList = new Set<ArrayBuffer>();
    for (const [name, t] of Object.entries(req.inputs)) {
      const whole = t.data.byteOffset === 0 && t.data.byteLength === t.data.buffer.byteLength;
      if (!(t.data.buffer instanceof ArrayBuffer)) {
        inputs[name] = { dtype: t.dtype, dims: [...t.dims], data: t.data }; // shared memory: nothing to move
        continue;
      }
      // Move the caller's buffer only when it is exactly this tensor and may move (Node's Buffer
      // pool slab is marked untransferable); otherwise one exact-size copy, which is what moves.
      const movable = transfer && whole && !transferList.has(t.data.buffer) && !isMarkedAsUntransferable(t.data.buffer);
      const data = movable ? t.data : copyOf(t);
      transferList.add(data.buffer as ArrayBuffer);
      inputs[name] = { dtype: t.dtype, dims: [...t.dims], data };
    }

    if (req.signal?.aborted) throw new DrillError('ABORTED', "InferencePool.run: aborted by the caller's signal");
    const submittedAt = performance.timeOrigin + performance.now();
    this.#inFlight++;
    let reply: ThreadReply;
    // piscina's own `signal` terminates a running thread; we never do that to a thread inside
    // ORT. The task runs to completion (the in-flight count drops only then, so backpressure
    // stays honest) and an aborted caller is answered at once.
    const task = piscina.run(
      { kind: 'run', modelHash: req.modelHash.toLowerCase(), modelPath: req.modelPath, inputs, outputNames: req.outputNames, ...(req.digest ? { digest: true } : {}), ...(req.spoolPath ? { spoolPath: req.spoolPath } : {}), ...(req.rowAxes ? { rowAxes: req.rowAxes } : {}) },
      { transferList: [...transferList] },
    );
    void task.then(
      () => (this.#inFlight--, undefined),
      () => (this.#inFlight--, undefined),
    );
    try {
      reply = await (req.signal ? raceAbort(task, req.signal) : task);
    } catch (e) {
      this.#failed++;
      throw this.#mapPiscinaError(e);
    }
    if (!reply.ok) {
      this.#failed++;
      throw new DrillError(reply.error.code, reply.error.message, reply.error.meta);
    }
    if (reply.kind !== 'run') throw new DrillError('WORKER_FAILED', 'run: expected a run reply');
    this.#completed++;
    this.#busyMs += reply.busyMs;
    this.#loadsByThread.set(reply.thread, reply.sessionLoads);
    const waitMs = Math.max(0, reply.startedAt - submittedAt);
    push(this.#waits, waitMs);
    push(this.#runs, reply.runMs);
    return { outputs: reply.outputs, ...(reply.digest ? { digest: reply.digest } : {}), spooled: reply.spooled, runMs: reply.runMs, thread: reply.thread, profile: reply.profile, sessionLoaded: reply.sessionLoaded, loadMs: reply.loadMs, waitMs };
  }

  #mapPiscinaError(e: unknown): DrillError {
    if (isDrillError(e)) return e;
    const err = e instanceof Error ? e : new Error(String(e));
    if (err.name === 'AbortError') return new DrillError('ABORTED', 'InferencePool.run: aborted by the caller\'s signal', {}, { cause: e });
    // piscina's own wording for its maxQueue refusal (our own check normally fires first).
    if (err.message === 'Task queue is at limit') {
      return new DrillError('POOL_QUEUE_FULL', `InferencePool.run: expected at most ${this.threads + this.maxQueue} runs in flight, received one more`, { threads: this.threads, maxQueue: this.maxQueue }, { cause: e });
    }
    return new DrillError('WORKER_FAILED', `inference thread failed: ${err.message}`, {}, { cause: e });
  }

  /** Counters for metrics and the dashboard. */
  stats(): InferencePoolStats {
    const queued = this.#piscina?.queueSize ?? 0;
    let sessionLoads = 0;
    for (const n of this.#loadsByThread.values()) sessionLoads += n;
    return {
      threads: this.threads,
      queued,
      running: Math.max(0, this.#inFlight - queued),
      completed: this.#completed,
      failed: this.#failed,
      sessionLoads,
      waitMsP50: median(this.#waits),
      runMsP50: median(this.#runs),
      utilization: this.#piscina ? Math.min(1, this.#busyMs / (this.threads * Math.max(1, performance.now() - this.#startedAt))) : 0,
      saturated: this.#inFlight >= this.threads + this.maxQueue,
    };
  }

  /** Wait for running units (up to 30 s), then end every thread. Idempotent. */
  async stop(): Promise<void> {
    const p = this.#piscina;
    this.#piscina = undefined;
    if (!p) return;
    await p.close();
    this.#log.info('inference pool stopped', { completed: this.#completed, failed: this.#failed });
  }

  async #destroy(): Promise<void> {
    const p = this.#piscina;
    this.#piscina = undefined;
    if (p) await p.destroy();
  }

  /** The device selection in use (after start()). */
  get selection(): DeviceSelection | undefined {
    return this.#selection;
  }
}
