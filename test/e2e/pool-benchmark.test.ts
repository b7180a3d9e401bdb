/** The Device Share benchmark on a real pool: a positive GFLOP/s score, cached per data dir, rerun on request. */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DirectSession } from '../../src/worker/direct.ts';
import { BENCH_ROWS, BENCH_WIDTH, buildMatMulChain, matMulChainFlops, runDeviceBenchmark } from '../../src/worker/benchmark.ts';
import { ModelCache } from '../../src/worker/models.ts';
import { InferencePool } from '../../src/worker/pool.ts';

let dir: string;
let pool: InferencePool;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'drill-bench-'));
  pool = new InferencePool({ threads: 1 });
  await pool.start();
});
afterAll(async () => {
  await pool.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('runDeviceBenchmark', () => {
  it('the standard workload is the MatMul chain it claims to be', async () => {
    const models = new ModelCache(join(dir, 'm'));
    const h = await models.put(await buildMatMulChain());
    const s = await DirectSession.open(models.path(h));
    try {
      expect(s.session.inputMetadata[0]).toMatchObject({ name: 'x', type: 'float32', shape: ['batch', BENCH_WIDTH] });
      const y = await s.run({ x: { dtype: 'float32', dims: [2, BENCH_WIDTH], data: new Float32Array(2 * BENCH_WIDTH).fill(0.5) } });
      expect(y.y!.dims).toEqual([2, BENCH_WIDTH]);
      expect(Array.from(y.y!.data as Float32Array).every(Number.isFinite)).toBe(true);
    } finally {
      await s.release();
    }
    expect(matMulChainFlops()).toBe(2 * BENCH_ROWS * BENCH_WIDTH * BENCH_WIDTH * 4);
  });

  it('measures GFLOP/s, caches it in <dataDir>/benchmark.json, reruns when asked', async () => {
    const a = await runDeviceBenchmark(pool, { dataDir: dir, durationMs: 200 });
    expect(a.cached).toBe(false);
    expect(a.score).toBeGreaterThan(0);
    expect(a.flops % matMulChainFlops()).toBe(0);
    expect(a.score).toBeCloseTo(a.flops / a.ms / 1e6, 6);
    expect(a.profile).toEqual(pool.profile);
    const file = JSON.parse(await readFile(join(dir, 'benchmark.json'), 'utf8')) as { score: number };
    expect(file.score).toBe(a.score);

    const b = await runDeviceBenchmark(pool, { dataDir: dir, durationMs: 200 });
    expect(b.cached).toBe(true);
    expect(b.score).toBe(a.score);

    const c = await runDeviceBenchmark(pool, { dataDir: dir, durationMs: 200, rerun: true });
    expect(c.cached).toBe(false);
    expect(c.at >= a.at).toBe(true);
  });
});
