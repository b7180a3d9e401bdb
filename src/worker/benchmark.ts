/**
 * "Device Share" benchmark: a short standard workload that measures how many GFLOP/s this
 * worker's pool sustains, so the coordinator can size work units and estimate deadlines.
 *
 * It is a SCHEDULING HINT ONLY and never credit: a worker reports it about itself, so it could
 * be anything. Credit comes only from verified units (their FLOPs from the model graph, agreed
 * by other replicas under Proof of Drilling).
 *
 * The workload: a chain of BENCH_LAYERS MatMuls, X[M,K] · W1[K,K] · … , built in code with the
 * project's ONNX builder (fixed seed, byte-identical everywhere), run on every pool thread at
 * once for about `durationMs`. FLOPs are counted as 2·M·K·K per MatMul (one multiply + one add
 * per term). The result is cached in `<dataDir>/benchmark.json` and reused while the execution
 * profile and thread count match; `rerun: true` measures again.
 */
import { readFile, writeFile, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GraphBuilder, Prng } from '../onnx/builder.ts';
import { DrillError } from '../util/errors.ts';
import type { HostTensor } from '../util/tensor.ts';
import type { ExecutionProfile } from './device.ts';
import { ensureDataDir } from './identity.ts';
import { ModelCache } from './models.ts';
import type { InferencePool } from './pool.ts';

/**
 * Workload size. K = 512 keeps the weights at 4 × 1 MiB (cheap to load in every thread);
 * M = 256 rows makes each MatMul 134 MFLOP, so one run of the 4-layer chain (537 MFLOP) takes
 * about 6 ms on one AVX-512 core (measured: ~85 GFLOP/s per core on this project's CI machine):
 * long enough that the thread hand-off (~0.3 ms) is small, short enough that ~1.5 s gives
 * hundreds of samples.
 */
export const BENCH_ROWS = 256;
export const BENCH_WIDTH = 512;
export const BENCH_LAYERS = 4;
/** Bumped whenever the workload changes, so old cached scores are not compared with new ones. */
export const BENCH_VERSION = 1;
/** Seed of the benchmark model's weights and input. */
const BENCH_SEED = 7;

/** Benchmark settings. */
export interface DeviceBenchmarkOptions {
  /** Measuring time in ms (after warm-up). 1500: long enough for a stable rate, short at startup. */
  durationMs?: number;
  /** Data folder holding benchmark.json (cache) and the model; default: no cache, model in the OS temp dir. */
  dataDir?: string;
  /** Ignore a cached result and measure again. */
  rerun?: boolean;
}

export const defaultDeviceBenchmarkOptions = { durationMs: 1500, rerun: false } as const;

/** A benchmark result. */
export interface DeviceBenchmarkResult {
  /** GFLOP/s sustained by the whole pool on the standard workload. */
  score: number;
  /** FLOPs executed while measuring. */
  flops: number;
  /** Measuring time in ms. */
  ms: number;
  profile: ExecutionProfile;
  /** Pool threads that ran it. */
  threads: number;
  /** True when read from benchmark.json instead of measured now. */
  cached: boolean;
  /** ISO time of the measurement. */
  at: string;
  version: number;
}

/**
 * The MatMul-chain model: input 'x' [batch, width] → output 'y' [batch, width].
 * Also a tiny device probe with small sizes.
 */
export async function buildMatMulChain(width: number = BENCH_WIDTH, layers: number = BENCH_LAYERS): Promise<Uint8Array> {
  const g = new GraphBuilder({ name: 'device_share', seed: BENCH_SEED });
  let h = g.input('x', 'float32', ['batch', width]);
  for (let i = 0; i < layers; i++) {
    // Weights scaled ±1/sqrt(width) keep activations O(1) through the chain (no inf/denormals).
    h = g.op('MatMul', [h, g.weight(`w${i}`, [width, width], { kind: 'uniform', scale: 1 / Math.sqrt(width) })]);
  }
  g.output(h, 'float32', ['batch', width], 'y');
  return g.toBytes();
}

/** FLOPs of one run of the chain on `rows` rows. */
export function matMulChainFlops(rows: number = BENCH_ROWS, width: number = BENCH_WIDTH, layers: number = BENCH_LAYERS): number {
  return 2 * rows * width * width * layers;
}

function benchInput(rows: number, width: number): HostTensor {
  const rng = new Prng(BENCH_SEED, 'device_share/x');
  const data = new Float32Array(rows * width);
  for (let i = 0; i < data.length; i++) data[i] = rng.uniform(-1, 1);
  return { dtype: 'float32', dims: [rows, width], data };
}

function sameProfile(a: ExecutionProfile, b: ExecutionProfile): boolean {
  return a.device === b.device && a.ep === b.ep && a.intraOpThreads === b.intraOpThreads && a.ortVersion === b.ortVersion && a.arch === b.arch && a.cpuModel === b.cpuModel && a.gpuModel === b.gpuModel;
}

async function readCache(file: string): Promise<DeviceBenchmarkResult | undefined> {
  try {
    const r = JSON.parse(await readFile(file, 'utf8')) as DeviceBenchmarkResult;
    return typeof r.score === 'number' && r.version === BENCH_VERSION ? r : undefined;
  } catch {
    return undefined; // missing or unreadable: just measure again (it is only a hint)
  }
}

/**
 * Measure (or read the cached) Device Share score of a started pool.
 * @throws DrillError POOL_NOT_STARTED when the pool has not been started.
 */
export async function runDeviceBenchmark(pool: InferencePool, opts: DeviceBenchmarkOptions = {}): Promise<DeviceBenchmarkResult> {
  const profile = pool.profile;
  if (!profile) throw new DrillError('POOL_NOT_STARTED', 'runDeviceBenchmark: expected a started pool (call start() first)');
  const durationMs = opts.durationMs ?? defaultDeviceBenchmarkOptions.durationMs;
  const dataDir = opts.dataDir === undefined ? undefined : await ensureDataDir(opts.dataDir);
  const cacheFile = dataDir === undefined ? undefined : join(dataDir, 'benchmark.json');
  if (cacheFile && !(opts.rerun ?? defaultDeviceBenchmarkOptions.rerun)) {
    const c = await readCache(cacheFile);
    if (c && c.threads === pool.threads && sameProfile(c.profile, profile)) return { ...c, cached: true };
  }

  const models = new ModelCache(join(dataDir ?? tmpdir(), 'models'));
  const modelHash = await models.put(await buildMatMulChain());
  const modelPath = models.path(modelHash);
  const input = benchInput(BENCH_ROWS, BENCH_WIDTH);
  const once = () => pool.run({ modelHash, modelPath, inputs: { x: input }, transfer: false });

  // Warm-up: every thread loads the session (a few rounds, since threads are picked by piscina).
  for (let round = 0; round < 3; round++) await Promise.all(Array.from({ length: pool.threads }, once));

  let runs = 0;
  const t0 = performance.now();
  const deadline = t0 + durationMs;
  const lane = async (): Promise<void> => {
    while (performance.now() < deadline) {
      await once();
      runs++;
    }
  };
  await Promise.all(Array.from({ length: pool.threads }, lane));
  const ms = performance.now() - t0;
  const flops = runs * matMulChainFlops();
  const result: DeviceBenchmarkResult = {
    score: flops / ms / 1e6, // FLOP/ms ÷ 1e6 = GFLOP/s
    flops,
    ms,
    profile,
    threads: pool.threads,
    cached: false,
    at: new Date().toISOString(),
    version: BENCH_VERSION,
  };
  if (cacheFile) {
    const tmp = `${cacheFile}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify(result, null, 2) + '\n');
    await rename(tmp, cacheFile);
  }
  return result;
}
