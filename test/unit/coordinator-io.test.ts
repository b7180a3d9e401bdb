/**
 * The coordinator's file edges with real files in a temp dir: InputReader reads a unit's rows
 * of an input split on axis 0, on a later axis (strided runs) or sent whole, into a lease and as
 * same-filesystem ranges; OutputAssembler stitches units finishing in any order back on each
 * output's batch axis, and keeps an output without one from the first unit only if all agree;
 * and the reveal path's check of a result against the model (outputsProblem) uses those axes.
 */
import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { mkdtemp, mkdir, rm, writeFile, open, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputReader } from '../../src/coordinator/inputs.ts';
import { OutputAssembler } from '../../src/coordinator/output.ts';
import { outputsProblem } from '../../src/coordinator/reveal.ts';
import type { JobSpec } from '../../src/coordinator/job.ts';
import { encodeNpy, parseNpy } from '../../src/util/npy.ts';
import { BYTES_PER_ELEMENT, elementCount, typedView } from '../../src/util/tensor.ts';
import type { HostTensor } from '../../src/util/tensor.ts';
import { parsePolicy } from '../../src/pod/policy.ts';
import { errCodeAsync } from '../helpers/errors.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'drill-io-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A float32 tensor whose element i is i. */
const iota = (dims: number[]): HostTensor => ({ dtype: 'float32', dims, data: Float32Array.from({ length: elementCount(dims) }, (_, i) => i) });

/** Elements of `t` with index `axis` in [start, end) — the reference slice, computed in memory. */
function sliceAxis(t: HostTensor, axis: number, start: number, end: number): number[] {
  const out: number[] = [];
  const dims = t.dims;
  const inner = elementCount(dims.slice(axis + 1));
  const outer = elementCount(dims.slice(0, axis));
  for (let o = 0; o < outer; o++) for (let r = start; r < end; r++) for (let k = 0; k < inner; k++) out.push(Number(t.data[(o * dims[axis]! + r) * inner + k]));
  return out;
}

describe('InputReader', () => {
  it("reads a unit's rows on axis 0, on axis 1 (strided) and a whole input, the same into a lease and through file ranges", async () => {
    const audio = iota([10, 4]);
    const state = iota([2, 10, 3]);
    const sr = { dtype: 'int64', dims: [], data: BigInt64Array.from([16000n]) } as HostTensor;
    for (const [n, t] of Object.entries({ audio, state, sr })) await writeFile(join(dir, `${n}.npy`), encodeNpy(t));
    const spec = {
      inputs: {
        audio: { path: join(dir, 'audio.npy'), dtype: 'float32', dims: [10, 4], batchAxis: 0 },
        state: { path: join(dir, 'state.npy'), dtype: 'float32', dims: [2, 10, 3], batchAxis: 1 },
        sr: { path: join(dir, 'sr.npy'), dtype: 'int64', dims: [], batchAxis: null },
      },
    } as unknown as JobSpec;
    const r = new InputReader(spec);
    try {
      const shapes = await r.shapes(3, 7);
      expect(shapes).toEqual({ audio: { dtype: 'float32', dims: [4, 4] }, state: { dtype: 'float32', dims: [2, 4, 3] }, sr: { dtype: 'int64', dims: [] } });
      const ranges = await r.ranges(3, 7);
      expect(ranges.state).toMatchObject({ segments: 2, stride: 10 * 3 * 4, dims: [2, 4, 3] });
      expect(ranges.audio!.segments).toBeUndefined();
      for (const [name, s] of Object.entries(shapes)) {
        const bytes = new Uint8Array(elementCount(s.dims) * BYTES_PER_ELEMENT[s.dtype]);
        await r.readInto(name, 3, 7, bytes);
        // What a worker on the same filesystem reads from the range it is given.
        const f = ranges[name]!;
        const fromFile = new Uint8Array(bytes.length);
        const fh = await open(f.path, 'r');
        const segs = f.segments ?? 1;
        for (let k = 0; k < segs; k++) await fh.read(fromFile, (k * bytes.length) / segs, bytes.length / segs, f.offset + k * (f.stride ?? 0));
        await fh.close();
        expect(Buffer.from(fromFile).equals(Buffer.from(bytes)), name).toBe(true);
        const got = Array.from(typedView(s.dtype, bytes), Number);
        const src = { audio, state, sr }[name as 'audio' | 'state' | 'sr'];
        const axis = spec.inputs[name]!.batchAxis;
        expect(got, name).toEqual(axis === null ? [16000] : sliceAxis(src, axis!, 3, 7));
      }
    } finally {
      await r.close();
    }
  });
});

describe('OutputAssembler', () => {
  const spec = (name: string, outputs: Record<string, number | null>, rows: number, policy = 'allclose:1e-3,1e-4'): Pick<JobSpec, 'outDir' | 'rows' | 'outputNames' | 'outputs' | 'policy'> => ({
    outDir: join(dir, name),
    rows,
    outputNames: Object.keys(outputs),
    outputs: Object.entries(outputs).map(([name, a]) => ({ name, dtype: 'float32', dims: [], batchAxis: a })),
    policy: parsePolicy(policy),
  });

  it('stitches units finishing out of order on axis 0, on axis 1 and with several entries per row', async () => {
    await mkdir(join(dir, 'stitch'), { recursive: true });
    const full = { prob: iota([9, 1]), state: iota([2, 9, 3]), flat: iota([18, 5]) };
    const out = new OutputAssembler(spec('stitch', { prob: 0, state: 1, flat: 0 }, 9));
    const unit = (start: number, end: number): Record<string, HostTensor> => ({
      prob: { dtype: 'float32', dims: [end - start, 1], data: Float32Array.from(sliceAxis(full.prob, 0, start, end)) },
      state: { dtype: 'float32', dims: [2, end - start, 3], data: Float32Array.from(sliceAxis(full.state, 1, start, end)) },
      // two entries per row along axis 0 (a flattened [batch·2, 5])
      flat: { dtype: 'float32', dims: [2 * (end - start), 5], data: Float32Array.from(sliceAxis(full.flat, 0, 2 * start, 2 * end)) },
    });
    for (const [a, b] of [[4, 8], [0, 4], [8, 9]] as const) await out.write(a, b, unit(a, b));
    const paths = await out.finish();
    for (const [k, t] of Object.entries(full)) {
      const got = parseNpy(await readFile(paths[k]!));
      expect(got.dims, k).toEqual(t.dims);
      expect(Array.from(got.data as Float32Array), k).toEqual(Array.from(t.data as Float32Array));
    }
  });

  it('an output without a batch axis: written from the first unit, every later unit must agree under the policy', async () => {
    await mkdir(join(dir, 'whole'), { recursive: true });
    const rows = (n: number): HostTensor => ({ dtype: 'float32', dims: [n, 2], data: new Float32Array(2 * n) });
    const k = (v: number[]): HostTensor => ({ dtype: 'float32', dims: [v.length], data: Float32Array.from(v) });
    const out = new OutputAssembler(spec('whole', { y: 0, k: null }, 6));
    await out.write(0, 3, { y: rows(3), k: k([1, 2]) });
    await out.write(3, 5, { y: rows(2), k: k([1, 2.0000001]) }); // within the tolerance: agrees
    // A restart: a fresh assembler resumes the files and still checks against the first value.
    const again = new OutputAssembler(spec('whole', { y: 0, k: null }, 6));
    await again.resume(out.layout());
    const e = await errCodeAsync(() => again.write(5, 6, { y: rows(1), k: k([1, 3]) }));
    expect(e).toBe('OUTPUT_UNBATCHED');
    await again.write(5, 6, { y: rows(1), k: k([1, 2]) });
    const paths = await again.finish();
    expect(Array.from(parseNpy(await readFile(paths.k!)).data as Float32Array)).toEqual([1, 2]);
  });

  it('a result that does not fit the layout is OUTPUT_SHAPE, naming the output', async () => {
    await mkdir(join(dir, 'bad'), { recursive: true });
    const out = new OutputAssembler(spec('bad', { y: 1 }, 4));
    // 3 entries along axis 1 for 2 rows: not a whole number per row.
    await expect(out.write(0, 2, { y: iota([2, 3]) })).rejects.toThrow(/output y: expected its batch axis 1 to hold a whole number of entries per row, received \[2, 3\] for 2 rows/);
    await out.abort();
  });
});

describe('outputsProblem (a revealed result against the model, before PoD)', () => {
  const t = (dims: number[], dtype: 'float32' | 'int64' = 'float32'): HostTensor => ({ dtype, dims, data: dtype === 'int64' ? new BigInt64Array(elementCount(dims)) : new Float32Array(elementCount(dims)) });
  const spec = {
    outputNames: ['output', 'stateN', 'k', 'dets'],
    outputs: [
      { name: 'output', dtype: 'float32', dims: ['batch', 1], batchAxis: 0 },
      { name: 'stateN', dtype: 'float32', dims: [2, 'batch', 16], batchAxis: 1 },
      { name: 'k', dtype: 'float32', dims: [3], batchAxis: null },
      { name: 'dets', dtype: 'int64', dims: [4, ''], batchAxis: 1, guessed: true },
    ],
  };
  const good = { output: t([5, 1]), stateN: t([2, 5, 16]), k: t([3]), dets: t([4, 7], 'int64') };
  it('checks each output on its own batch axis; one without an axis, or with a guessed one, only for its fixed dims', () => {
    expect(outputsProblem(spec, 5, good)).toBeNull();
    expect(outputsProblem(spec, 5, { ...good, stateN: t([2, 4, 16]) })).toMatch(/stateN: \[2, 4, 16\] does not hold the unit's 5 rows on axis 1/);
    expect(outputsProblem(spec, 5, { ...good, stateN: t([3, 5, 16]) })).toMatch(/stateN: dim 0 is 3, the model fixes it at 2/);
    expect(outputsProblem(spec, 5, { ...good, k: t([4]) })).toMatch(/k: dim 0 is 4, the model fixes it at 3/);
    expect(outputsProblem(spec, 5, { ...good, dets: t([5, 3], 'int64') })).toMatch(/dets: dim 0 is 5, the model fixes it at 4/);
  });
});
