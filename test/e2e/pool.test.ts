/**
 * The worker's inference pool against real ONNX Runtime sessions on real threads: outputs equal
 * a direct in-process run, fixed-batch models run row by row, mismatches are clear and leave the
 * pool alive, sessions are loaded once per thread, CUDA is refused clearly where it is missing.
 */
import { existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/util/bytes.ts';
import { isDrillError } from '../../src/util/errors.ts';
import type { HostTensor } from '../../src/util/tensor.ts';
import { checkDevice, probeMachine } from '../../src/worker/device.ts';
import { runDirect } from '../../src/worker/direct.ts';
import { ModelCache } from '../../src/worker/models.ts';
import { InferencePool } from '../../src/worker/pool.ts';
import type { RunRequest } from '../../src/worker/pool.ts';
import { GraphBuilder } from '../../src/onnx/builder.ts';
import { makeInputs, workloadSpec } from '../../workloads/models.ts';

let dir: string;
let models: ModelCache;
const REPO = join(import.meta.dirname, '..', '..');

/** The committed workload model when present, else the same graph built from workloads/models.ts. */
async function model(name: string): Promise<{ hash: string; path: string }> {
  const committed = join(REPO, 'workloads', name, 'model.onnx');
  const bytes = existsSync(committed) ? new Uint8Array(await readFile(committed)) : await workloadSpec(name).build();
  const hash = await models.put(bytes);
  return { hash, path: models.path(hash) };
}

function clone(inputs: Record<string, HostTensor>): Record<string, HostTensor> {
  const out: Record<string, HostTensor> = {};
  for (const [k, t] of Object.entries(inputs)) out[k] = { dtype: t.dtype, dims: [...t.dims], data: t.data.slice() as HostTensor['data'] };
  return out;
}

async function code(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (e) {
    if (isDrillError(e)) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error('expected a rejection');
}

function expectSame(a: Record<string, HostTensor>, b: Record<string, HostTensor>): void {
  expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
  for (const k of Object.keys(b)) {
    expect(a[k]!.dtype).toBe(b[k]!.dtype);
    expect(a[k]!.dims).toEqual(b[k]!.dims);
    // Same ORT, same graph, same intra-op threads (1) on the same CPU: bit-identical.
    expect(Array.from(a[k]!.data as ArrayLike<number>)).toEqual(Array.from(b[k]!.data as ArrayLike<number>));
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'drill-pool-'));
  models = new ModelCache(join(dir, 'models'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('InferencePool (2 threads, CPU)', () => {
  let pool: InferencePool;
  beforeAll(async () => {
    pool = new InferencePool({ threads: 2 });
    await pool.start();
  });
  afterAll(async () => {
    await pool.stop();
  });

  it('mlp: outputs equal a direct ORT run; inputs moved, outputs are plain typed arrays', async () => {
    const m = await model('mlp');
    const inputs = makeInputs('mlp', 64, 1);
    const want = await runDirect(m.path, clone(inputs));
    const sent = clone(inputs);
    const r = await pool.run({ modelHash: m.hash, modelPath: m.path, inputs: sent });
    expectSame(r.outputs, want);
    expect(sent.features!.data.length).toBe(0); // transferred, not copied
    expect(r.profile).toMatchObject({ device: 'cpu', ep: 'CPUExecutionProvider', intraOpThreads: 1 });
    expect(r.profile.ortVersion).toMatch(/^\d+\.\d+\.\d+/);
    const kept = clone(inputs);
    await pool.run({ modelHash: m.hash, modelPath: m.path, inputs: kept, transfer: false });
    expect(kept.features!.data.length).toBe(64 * 32);
  });

  it('encoder: multi-input (int64 + float32), multi-output equals a direct run', async () => {
    const m = await model('encoder');
    const inputs = makeInputs('encoder', 24, 2);
    const want = await runDirect(m.path, clone(inputs));
    const r = await pool.run({ modelHash: m.hash, modelPath: m.path, inputs: clone(inputs) });
    expectSame(r.outputs, want);
    expect(r.outputs.embedding!.dims).toEqual([24, 16, 64]);
    const only = await pool.run({ modelHash: m.hash, modelPath: m.path, inputs: clone(inputs), outputNames: ['pooled'] });
    expect(Object.keys(only.outputs)).toEqual(['pooled']);
    expectSame(only.outputs, { pooled: want.pooled! });
  });

  it('cnn: uint8 images equal a direct run', async () => {
    const m = await model('cnn');
    const inputs = makeInputs('cnn', 8, 3);
    const want = await runDirect(m.path, clone(inputs));
    const r = await pool.run({ modelHash: m.hash, modelPath: m.path, inputs: clone(inputs) });
    expectSame(r.outputs, want);
  });

  it('every HostTensor dtype crosses the thread boundary both ways (bool as Uint8Array, int64 as BigInt64Array)', async () => {
    const g = new GraphBuilder({ name: 'dtypes', seed: 1 });
    g.output(g.op('Not', [g.input('m', 'bool', ['batch', 3])]), 'bool', ['batch', 3], 'not_m');
    const i = g.input('i', 'int64', ['batch', 2]);
    g.output(g.op('Add', [i, i]), 'int64', ['batch', 2], 'twice_i');
    g.output(g.op('Neg', [g.input('d', 'float64', ['batch', 2])]), 'float64', ['batch', 2], 'neg_d');
    g.output(g.op('Identity', [g.input('u', 'uint8', ['batch', 2])]), 'uint8', ['batch', 2], 'same_u');
    g.output(g.op('Abs', [g.input('k', 'int32', ['batch', 2])]), 'int32', ['batch', 2], 'abs_k');
    const hash = await models.put(await g.toBytes());
    const inputs: Record<string, HostTensor> = {
      m: { dtype: 'bool', dims: [2, 3], data: Uint8Array.from([1, 0, 1, 0, 0, 1]) },
      i: { dtype: 'int64', dims: [2, 2], data: BigInt64Array.from([1n, -2n, 2n ** 40n, 0n]) },
      d: { dtype: 'float64', dims: [2, 2], data: Float64Array.from([0.1, -2.5, 1e300, 0]) },
      u: { dtype: 'uint8', dims: [2, 2], data: Uint8Array.from([0, 255, 7, 8]) },
      k: { dtype: 'int32', dims: [2, 2], data: Int32Array.from([-3, 4, -5, 0]) },
    };
    const r = await pool.run({ modelHash: hash, modelPath: models.path(hash), inputs: clone(inputs) });
    expect(r.outputs.not_m).toEqual({ dtype: 'bool', dims: [2, 3], data: Uint8Array.from([0, 1, 0, 1, 1, 0]) });
    expect(r.outputs.twice_i).toEqual({ dtype: 'int64', dims: [2, 2], data: BigInt64Array.from([2n, -4n, 2n ** 41n, 0n]) });
    expect(r.outputs.neg_d).toEqual({ dtype: 'float64', dims: [2, 2], data: Float64Array.from([-0.1, 2.5, -1e300, -0]) });
    expect(r.outputs.same_u).toEqual({ dtype: 'uint8', dims: [2, 2], data: Uint8Array.from([0, 255, 7, 8]) });
    expect(r.outputs.abs_k).toEqual({ dtype: 'int32', dims: [2, 2], data: Int32Array.from([3, 4, 5, 0]) });
    // A Node Buffer is a Uint8Array: accepted (and copied, since it views a shared pool slab).
    const buf = Buffer.from([1, 1, 0, 0, 1, 0]);
    const r2 = await pool.run({ modelHash: hash, modelPath: models.path(hash), inputs: { ...clone(inputs), m: { dtype: 'bool', dims: [2, 3], data: buf } } });
    expect(Array.from(r2.outputs.not_m!.data as Uint8Array)).toEqual([0, 0, 1, 1, 0, 1]);
    expect(buf.length).toBe(6);
  });

  it('rowwise: first dim fixed at 1, B rows run row by row equal per-row direct runs, in order', async () => {
    const m = await model('rowwise');
    const B = 7;
    const inputs = makeInputs('rowwise', B, 4);
    const r = await pool.run({ modelHash: m.hash, modelPath: m.path, inputs: clone(inputs) });
    const x = inputs.x!;
    const per = x.dims[1]!;
    const rows: number[] = [];
    for (let i = 0; i < B; i++) {
      const row = await runDirect(m.path, { x: { dtype: 'int32', dims: [1, per], data: (x.data as Int32Array).slice(i * per, (i + 1) * per) } });
      expect(row.y!.dims).toEqual([1, 8]);
      rows.push(...Array.from(row.y!.data as Int32Array));
    }
    expect(r.outputs.y!.dims).toEqual([B, 8]);
    expect(Array.from(r.outputs.y!.data as Int32Array)).toEqual(rows);
    // One row goes straight through.
    const one = await pool.run({ modelHash: m.hash, modelPath: m.path, inputs: { x: { dtype: 'int32', dims: [1, per], data: (x.data as Int32Array).slice(0, per) } } });
    expect(Array.from(one.outputs.y!.data as Int32Array)).toEqual(rows.slice(0, 8));
  });

  it('input mismatches are INPUT_MISMATCH naming input, expected and received, and the pool survives', async () => {
    const m = await model('mlp');
    const base: Omit<RunRequest, 'inputs'> = { modelHash: m.hash, modelPath: m.path };
    const failedBefore = pool.stats().failed;

    const unknown = await code(pool.run({ ...base, inputs: { ...makeInputs('mlp', 2, 1), extra: { dtype: 'float32', dims: [2, 32], data: new Float32Array(64) } } }));
    expect(unknown.code).toBe('INPUT_MISMATCH');
    expect(unknown.message).toContain('inputs.extra');
    expect(unknown.message).toContain('features');

    const dtype = await code(pool.run({ ...base, inputs: { features: { dtype: 'float64', dims: [2, 32], data: new Float64Array(64) } } }));
    expect(dtype.code).toBe('INPUT_MISMATCH');
    expect(dtype.message).toBe('inputs.features.dtype: expected float32, received float64');

    const dims = await code(pool.run({ ...base, inputs: { features: { dtype: 'float32', dims: [2, 31], data: new Float32Array(62) } } }));
    expect(dims.code).toBe('INPUT_MISMATCH');
    expect(dims.message).toMatch(/^inputs\.features\.dims\[1\]: expected 32 .*received 31/);

    const missing = await code(pool.run({ ...base, inputs: {} }));
    expect(missing.code).toBe('INPUT_MISMATCH');
    expect(missing.message).toContain('inputs.features');

    const badLen = await code(pool.run({ ...base, inputs: { features: { dtype: 'float32', dims: [2, 32], data: new Float32Array(10) } } }));
    expect(badLen.code).toBe('INPUT_MISMATCH');
    expect(badLen.message).toContain('64 elements');

    const badOut = await code(pool.run({ ...base, inputs: makeInputs('mlp', 2, 1), outputNames: ['nope'] }));
    expect(badOut.code).toBe('INPUT_MISMATCH');

    const rw = await model('rowwise');
    const rwDims = await code(pool.run({ modelHash: rw.hash, modelPath: rw.path, inputs: { x: { dtype: 'int32', dims: [3, 15], data: new Int32Array(45) } } }));
    expect(rwDims.code).toBe('INPUT_MISMATCH');

    // Still alive and correct afterwards.
    const ok = await pool.run({ ...base, inputs: makeInputs('mlp', 4, 9) });
    expect(Object.values(ok.outputs)[0]!.dims[0]).toBe(4);
    expect(pool.stats().failed).toBeGreaterThanOrEqual(failedBefore + 5);
  });

  it('loads a session once per thread per model and reuses it', async () => {
    const m = await model('mlp');
    const inputs = makeInputs('mlp', 8, 5);
    const seen = new Map<number, boolean[]>();
    // Concurrent waves so both threads get work.
    for (let wave = 0; wave < 4; wave++) {
      const rs = await Promise.all([0, 1].map(() => pool.run({ modelHash: m.hash, modelPath: m.path, inputs: clone(inputs) })));
      for (const r of rs) seen.set(r.thread, [...(seen.get(r.thread) ?? []), r.sessionLoaded]);
    }
    for (const loads of seen.values()) {
      // At most the first run on a thread loads (earlier tests may have loaded it already); never later ones.
      expect(loads.slice(1).every((l) => !l)).toBe(true);
    }
    const s = pool.stats();
    // 4 models over 2 threads: at most 8 loads however many runs.
    expect(s.sessionLoads).toBeLessThanOrEqual(8);
    expect(s.completed).toBeGreaterThan(8);
    expect(s.runMsP50).toBeGreaterThan(0);
    expect(s.utilization).toBeGreaterThan(0);
    expect(s.utilization).toBeLessThanOrEqual(1);
  });

  it('refuses a model file whose bytes do not match modelHash', async () => {
    const rw = await model('rowwise');
    // A hash no thread has loaded (a cached hash is served from the session, not the file).
    const other = sha256Hex('some other model');
    const bad = await code(pool.run({ modelHash: other, modelPath: rw.path, inputs: makeInputs('rowwise', 2, 1) }));
    expect(bad.code).toBe('MODEL_HASH_MISMATCH');
    expect(bad.message).toContain(other);
    expect(bad.message).toContain(rw.hash);
    const malformed = await code(pool.run({ modelHash: 'abc', modelPath: rw.path, inputs: {} }));
    expect(malformed.code).toBe('BAD_REQUEST');
  });

  it('a non-ONNX file is MODEL_LOAD_FAILED', async () => {
    const junk = new TextEncoder().encode('not a model');
    const hash = await models.put(junk);
    const r = await code(pool.run({ modelHash: hash, modelPath: models.path(hash), inputs: {} }));
    expect(r.code).toBe('MODEL_LOAD_FAILED');
  });
});

describe('InferencePool lifecycle', () => {
  it('aborts: a pre-aborted run is ABORTED; aborting a running one answers at once without killing its thread', async () => {
    const pool = new InferencePool({ threads: 1 });
    await pool.start();
    try {
      const m = await model('cnn');
      const ac = new AbortController();
      ac.abort();
      expect((await code(pool.run({ modelHash: m.hash, modelPath: m.path, inputs: makeInputs('cnn', 2, 1), signal: ac.signal }))).code).toBe('ABORTED');
      const warm = await pool.run({ modelHash: m.hash, modelPath: m.path, inputs: makeInputs('cnn', 2, 1) });
      const ac2 = new AbortController();
      const p = pool.run({ modelHash: m.hash, modelPath: m.path, inputs: makeInputs('cnn', 64, 1), signal: ac2.signal });
      expect(pool.stats().running).toBe(1);
      ac2.abort();
      expect((await code(p)).code).toBe('ABORTED');
      const ok = await pool.run({ modelHash: m.hash, modelPath: m.path, inputs: makeInputs('cnn', 2, 1) });
      expect(ok.outputs.probs!.dims).toEqual([2, 10]);
      // The same thread, still holding its session: terminating a thread inside ONNX Runtime
      // could take the process down, so the aborted run finished and was discarded.
      expect(ok.thread).toBe(warm.thread);
      expect(ok.sessionLoaded).toBe(false);
    } finally {
      await pool.stop();
    }
  });

  it('evicts the least recently used session beyond maxSessionsPerThread', async () => {
    const pool = new InferencePool({ threads: 1, maxSessionsPerThread: 2 });
    await pool.start();
    try {
      const [mlp, rw, enc] = [await model('mlp'), await model('rowwise'), await model('encoder')];
      const go = async (m: { hash: string; path: string }, name: string): Promise<boolean> =>
        (await pool.run({ modelHash: m.hash, modelPath: m.path, inputs: makeInputs(name, 1, 1) })).sessionLoaded;
      expect(await go(mlp, 'mlp')).toBe(true);
      expect(await go(rw, 'rowwise')).toBe(true);
      expect(await go(mlp, 'mlp')).toBe(false); // mlp is now the most recent
      expect(await go(enc, 'encoder')).toBe(true); // evicts rowwise
      expect(await go(mlp, 'mlp')).toBe(false);
      expect(await go(rw, 'rowwise')).toBe(true); // reloaded, evicts encoder
      expect(pool.stats().sessionLoads).toBe(4);
    } finally {
      await pool.stop();
    }
  });

  it('backpressure: beyond threads + maxQueue runs in flight, run() refuses with POOL_QUEUE_FULL', async () => {
    const pool = new InferencePool({ threads: 1, maxQueue: 1 });
    await pool.start();
    try {
      const m = await model('mlp');
      const req = (): RunRequest => ({ modelHash: m.hash, modelPath: m.path, inputs: makeInputs('mlp', 16, 1) });
      const a = pool.run(req());
      const b = pool.run(req());
      expect(pool.stats().saturated).toBe(true);
      expect((await code(pool.run(req()))).code).toBe('POOL_QUEUE_FULL');
      await Promise.all([a, b]);
      expect(pool.stats().saturated).toBe(false);
    } finally {
      await pool.stop();
    }
  });

  it('after stop(), run() is POOL_NOT_STARTED; stop() is idempotent', async () => {
    const pool = new InferencePool({ threads: 1 });
    await pool.start();
    await pool.stop();
    await pool.stop();
    const m = await model('mlp');
    expect((await code(pool.run({ modelHash: m.hash, modelPath: m.path, inputs: makeInputs('mlp', 1, 1) }))).code).toBe('POOL_NOT_STARTED');
  });

  it('stop() ends every thread: a process that used the pool exits on its own', async () => {
    const m = await model('mlp');
    const script = join(dir, 'exit-check.mts');
    await writeFile(
      script,
      `import { InferencePool } from ${JSON.stringify(join(REPO, 'src/worker/pool.ts'))};
const pool = new InferencePool({ threads: 2 });
await pool.start();
const r = await pool.run({ modelHash: ${JSON.stringify(m.hash)}, modelPath: ${JSON.stringify(m.path)}, inputs: { features: { dtype: 'float32', dims: [1, 32], data: new Float32Array(32) } } });
await pool.stop();
console.log('done', r.outputs ? 'ok' : 'no');
`,
    );
    const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    // No process.exit() in the script: it only ends if no thread or handle is left behind.
    const exitCode = await new Promise<number | null>((res) => child.on('exit', res));
    expect(exitCode).toBe(0);
    expect(out.trim()).toBe('done ok');
  });

  it("device 'cuda': DEVICE_UNAVAILABLE naming what is missing (or runs on CUDA where it is installed)", async () => {
    const verdict = checkDevice('cuda', probeMachine());
    const pool = new InferencePool({ threads: 1, device: 'cuda' });
    if (!verdict.ok) {
      const e = await code(pool.start());
      expect(e.code).toBe('DEVICE_UNAVAILABLE');
      expect(e.message).toContain(verdict.missing);
      expect(e.message).toMatch(/ONNXRUNTIME_NODE_INSTALL=cuda12|NVIDIA|device cpu/);
      const fb = new InferencePool({ threads: 1, device: 'cuda', fallbackToCpu: true });
      await fb.start();
      expect(fb.profile?.device).toBe('cpu');
      await fb.stop();
    } else {
      await pool.start();
      expect(pool.profile?.ep).toBe('CUDAExecutionProvider');
      const m = await model('mlp');
      const inputs = makeInputs('mlp', 16, 1);
      const want = await runDirect(m.path, clone(inputs));
      const r = await pool.run({ modelHash: m.hash, modelPath: m.path, inputs });
      for (const k of Object.keys(want)) {
        const a = r.outputs[k]!.data as Float32Array;
        const b = want[k]!.data as Float32Array;
        for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThan(1e-3 + 1e-3 * Math.abs(b[i]!));
      }
      await pool.stop();
    }
  });
});
