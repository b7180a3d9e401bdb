/** Pure input planning: every INPUT_MISMATCH case, batch vs rows mode, row slicing and concatenation. */
import { describe, expect, it } from 'vitest';
import { DrillError } from '../../src/util/errors.ts';
import type { HostTensor } from '../../src/util/tensor.ts';
import { checkHostTensor, concatRows, planRun, sliceRow } from '../../src/worker/plan.ts';
import type { InputSpec } from '../../src/worker/plan.ts';

const f32 = (dims: number[]): HostTensor => ({ dtype: 'float32', dims, data: new Float32Array(dims.reduce((a, b) => a * b, 1)) });
const i64 = (dims: number[]): HostTensor => ({ dtype: 'int64', dims, data: new BigInt64Array(dims.reduce((a, b) => a * b, 1)) });

const dyn: InputSpec[] = [{ name: 'x', type: 'float32', shape: ['batch', 4] }];
const fixed1: InputSpec[] = [{ name: 'x', type: 'float32', shape: [1, 4] }];

function err(f: () => unknown): DrillError {
  try {
    f();
  } catch (e) {
    if (e instanceof DrillError) return e;
    throw e;
  }
  throw new Error('expected a DrillError');
}

describe('planRun', () => {
  it('dynamic batch: one call with all rows', () => {
    expect(planRun(dyn, ['y'], { x: f32([5, 4]) })).toEqual({ mode: 'batch', rows: 5, split: [], outputNames: ['y'] });
  });

  it('first dim fixed at 1 with B > 1 rows: rows mode', () => {
    expect(planRun(fixed1, ['y'], { x: f32([3, 4]) })).toEqual({ mode: 'rows', rows: 3, split: ['x'], outputNames: ['y'] });
    expect(planRun(fixed1, ['y'], { x: f32([1, 4]) }).mode).toBe('batch');
  });

  it('rows mode: inputs with one row are shared by every row, other row counts refused', () => {
    const specs: InputSpec[] = [
      { name: 'a', type: 'float32', shape: [1, 2] },
      { name: 'b', type: 'float32', shape: [1, 3] },
    ];
    expect(planRun(specs, ['y'], { a: f32([4, 2]), b: f32([1, 3]) })).toMatchObject({ mode: 'rows', rows: 4, split: ['a'] });
    expect(err(() => planRun(specs, ['y'], { a: f32([4, 2]), b: f32([3, 3]) })).code).toBe('INPUT_MISMATCH');
  });

  it('unknown input name', () => {
    const e = err(() => planRun(dyn, ['y'], { x: f32([1, 4]), z: f32([1, 4]) }));
    expect(e.code).toBe('INPUT_MISMATCH');
    expect(e.message).toBe('inputs.z: expected an input of the model (x), received unknown input "z"');
  });

  it('missing input', () => {
    expect(err(() => planRun(dyn, ['y'], {})).message).toBe('inputs.x: expected a tensor for model input "x", received nothing');
  });

  it('wrong dtype', () => {
    expect(err(() => planRun(dyn, ['y'], { x: i64([1, 4]) })).message).toBe('inputs.x.dtype: expected float32, received int64');
  });

  it('wrong rank and wrong non-batch dim', () => {
    expect(err(() => planRun(dyn, ['y'], { x: f32([4]) })).message).toBe('inputs.x.dims: expected rank 2 ["batch", 4], received rank 1 [4]');
    expect(err(() => planRun(dyn, ['y'], { x: f32([2, 5]) })).message).toBe('inputs.x.dims[1]: expected 4 (model shape ["batch", 4]), received 5 (dims [2, 5])');
  });

  it('fixed first dim other than 1 must match exactly', () => {
    const specs: InputSpec[] = [{ name: 'x', type: 'float32', shape: [8, 4] }];
    expect(planRun(specs, ['y'], { x: f32([8, 4]) }).mode).toBe('batch');
    expect(err(() => planRun(specs, ['y'], { x: f32([3, 4]) })).message).toContain('inputs.x.dims[0]: expected 8');
    expect(err(() => planRun(fixed1, ['y'], { x: f32([0, 4]) })).code).toBe('INPUT_MISMATCH');
  });

  it('unknown output name', () => {
    const e = err(() => planRun(dyn, ['y'], { x: f32([1, 4]) }, ['q']));
    expect(e.message).toBe('outputNames: expected outputs of the model (y), received "q"');
  });

  it('malformed tensors: data type, length, dims', () => {
    expect(err(() => checkHostTensor('inputs.x', { dtype: 'float32', dims: [2], data: new Float64Array(2) })).message).toBe('inputs.x.data: expected a Float32Array for dtype float32, received a Float64Array');
    expect(err(() => checkHostTensor('inputs.x', { dtype: 'float32', dims: [3], data: new Float32Array(2) })).message).toBe('inputs.x.data: expected 3 elements for dims [3], received 2 elements');
    expect(err(() => checkHostTensor('inputs.x', { dtype: 'float32', dims: [-1], data: new Float32Array(2) })).code).toBe('INPUT_MISMATCH');
    expect(err(() => checkHostTensor('inputs.x', { dtype: 'float16' as 'float32', dims: [1], data: new Float32Array(1) })).code).toBe('INPUT_MISMATCH');
    // bool tensors are Uint8Arrays
    expect(() => checkHostTensor('inputs.m', { dtype: 'bool', dims: [2], data: new Uint8Array(2) })).not.toThrow();
  });
});

describe('sliceRow / concatRows', () => {
  it('slices without copying and concatenates in order', () => {
    const t: HostTensor = { dtype: 'int32', dims: [3, 2], data: Int32Array.from([1, 2, 3, 4, 5, 6]) };
    const rows = [0, 1, 2].map((i) => sliceRow(t, i));
    expect(rows[1]!.dims).toEqual([1, 2]);
    expect(Array.from(rows[1]!.data as Int32Array)).toEqual([3, 4]);
    expect(rows[1]!.data.buffer).toBe(t.data.buffer);
    const back = concatRows('y', rows);
    expect(back.dims).toEqual([3, 2]);
    expect(Array.from(back.data as Int32Array)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('refuses rows whose trailing dims differ', () => {
    const a: HostTensor = { dtype: 'float32', dims: [1, 2], data: new Float32Array(2) };
    const b: HostTensor = { dtype: 'float32', dims: [1, 3], data: new Float32Array(3) };
    expect(err(() => concatRows('y', [a, b])).code).toBe('OUTPUT_MISMATCH');
  });
});
