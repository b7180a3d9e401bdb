import { describe, it, expect } from 'vitest';
import { parsePolicy, tensorsAgree, resultsAgree, DEFAULT_POLICY, formatPolicy } from '../../src/pod/index.ts';
import type { HostTensor } from '../../src/util/tensor.ts';
import { floatToHalf } from '../../src/util/tensor.ts';

const f32 = (v: number[], dims = [v.length]): HostTensor => ({ dtype: 'float32', dims, data: Float32Array.from(v) });

/** Seeded LCG so the noise test is reproducible. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

describe('parsePolicy', () => {
  it('parses every policy and the default', () => {
    expect(parsePolicy('exact')).toEqual({ kind: 'exact' });
    expect(parsePolicy('argmax')).toEqual({ kind: 'argmax' });
    expect(parsePolicy('allclose:1e-2,0')).toEqual({ kind: 'allclose', rtol: 0.01, atol: 0 });
    expect(parsePolicy('allclose')).toEqual(parsePolicy(DEFAULT_POLICY));
    expect(parsePolicy(formatPolicy(parsePolicy(DEFAULT_POLICY)))).toEqual(parsePolicy(DEFAULT_POLICY));
  });
  it('names the field, what was expected and what was received', () => {
    expect(() => parsePolicy('close', '--compare')).toThrow(/--compare: expected one of exact, argmax, allclose:RTOL,ATOL.*received "close"/);
    expect(() => parsePolicy('allclose:x,1', 'policy')).toThrow(/policy: expected allclose:RTOL,ATOL with two non-negative numbers/);
    expect(() => parsePolicy('allclose:-1,1')).toThrow(/non-negative/);
  });
});

describe('tensorsAgree', () => {
  const p = parsePolicy(DEFAULT_POLICY);
  it('default tolerance absorbs float32 re-association noise but not wrong answers', () => {
    const r = rng(7);
    const truth = Array.from({ length: 4096 }, () => (r() - 0.5) * 20);
    // Honest replica: same values, each perturbed by up to 64 float32 ulps (summation order, SIMD width).
    const honest = Float32Array.from(truth.map((x) => x * (1 + (r() - 0.5) * 64 * 2 ** -23)));
    expect(tensorsAgree(p, f32(truth), { dtype: 'float32', dims: [4096], data: honest })).toBe(true);
    // A lazy worker returning zeros, or one that perturbs by 1%: rejected.
    expect(tensorsAgree(p, f32(truth), f32(truth.map(() => 0)))).toBe(false);
    expect(tensorsAgree(p, f32(truth), f32(truth.map((x, i) => (i === 100 ? x * 1.01 + 0.01 : x))))).toBe(false);
  });
  it('exact compares bytes', () => {
    expect(tensorsAgree({ kind: 'exact' }, f32([1, 2]), f32([1, 2]))).toBe(true);
    expect(tensorsAgree({ kind: 'exact' }, f32([1, 2]), f32([1, 2.0000002]))).toBe(false);
  });
  it('argmax compares the decision per row', () => {
    const a = f32([0.1, 0.7, 0.2, 0.9, 0.05, 0.05], [2, 3]);
    const b = f32([0.2, 0.5, 0.3, 0.6, 0.3, 0.1], [2, 3]);
    const c = f32([0.6, 0.3, 0.1, 0.6, 0.3, 0.1], [2, 3]);
    expect(tensorsAgree({ kind: 'argmax' }, a, b)).toBe(true);
    expect(tensorsAgree({ kind: 'argmax' }, a, c)).toBe(false);
  });
  it('never agrees across shapes or dtypes; NaN matches NaN, Inf only Inf', () => {
    expect(tensorsAgree(p, f32([1, 2], [2]), f32([1, 2], [1, 2]))).toBe(false);
    expect(tensorsAgree(p, f32([1]), { dtype: 'float64', dims: [1], data: Float64Array.from([1]) })).toBe(false);
    expect(tensorsAgree(p, f32([NaN, 1]), f32([NaN, 1]))).toBe(true);
    expect(tensorsAgree(p, f32([NaN]), f32([0]))).toBe(false);
    expect(tensorsAgree(p, f32([Infinity]), f32([3e38]))).toBe(false);
  });
  it('results must have the same output names', () => {
    expect(resultsAgree(p, { y: f32([1]) }, { z: f32([1]) })).toBe(false);
    expect(resultsAgree(p, { y: f32([1]), z: f32([2]) }, { z: f32([2]), y: f32([1]) })).toBe(true);
  });
});

describe('every dtype', () => {
  const allclose = parsePolicy(DEFAULT_POLICY);
  const argmax = parsePolicy('argmax');
  const half = (v: number[], dims = [v.length]): HostTensor => ({ dtype: 'float16', dims, data: Uint16Array.from(v.map(floatToHalf)) });

  it('float16 compares by value after decoding the halves, not by bits', () => {
    // 1.0 and the next half up (1 + 2^-10) differ by ~1e-3 relative: within rtol 1e-3 + atol 1e-4.
    expect(tensorsAgree(allclose, half([1, -2, 0.5]), { dtype: 'float16', dims: [3], data: Uint16Array.from([floatToHalf(1) + 1, floatToHalf(-2), floatToHalf(0.5)]) })).toBe(true);
    expect(tensorsAgree(allclose, half([1, -2, 0.5]), half([1, 2, 0.5]))).toBe(false); // sign bit: a huge bit distance, a wrong value
    expect(tensorsAgree(allclose, half([1, 2]), half([1.01, 2]))).toBe(false);
    expect(tensorsAgree(allclose, half([Number.NaN, Infinity]), half([Number.NaN, Infinity]))).toBe(true);
    expect(tensorsAgree(allclose, half([Infinity]), half([65504]))).toBe(false);
  });

  it('integer and bool outputs must be equal exactly under allclose', () => {
    const cases: [HostTensor, HostTensor][] = [
      [{ dtype: 'int8', dims: [2], data: Int8Array.from([1, -2]) }, { dtype: 'int8', dims: [2], data: Int8Array.from([1, -3]) }],
      [{ dtype: 'uint8', dims: [2], data: Uint8Array.from([200, 3]) }, { dtype: 'uint8', dims: [2], data: Uint8Array.from([201, 3]) }],
      [{ dtype: 'int16', dims: [1], data: Int16Array.from([1000]) }, { dtype: 'int16', dims: [1], data: Int16Array.from([1001]) }],
      [{ dtype: 'uint16', dims: [1], data: Uint16Array.from([1000]) }, { dtype: 'uint16', dims: [1], data: Uint16Array.from([1001]) }],
      [{ dtype: 'int32', dims: [1], data: Int32Array.from([1e9]) }, { dtype: 'int32', dims: [1], data: Int32Array.from([1e9 + 1]) }],
      [{ dtype: 'uint32', dims: [1], data: Uint32Array.from([4e9]) }, { dtype: 'uint32', dims: [1], data: Uint32Array.from([4e9 + 1]) }],
      [{ dtype: 'int64', dims: [1], data: BigInt64Array.from([2n ** 60n]) }, { dtype: 'int64', dims: [1], data: BigInt64Array.from([2n ** 60n + 1n]) }],
      [{ dtype: 'uint64', dims: [1], data: BigUint64Array.from([2n ** 63n]) }, { dtype: 'uint64', dims: [1], data: BigUint64Array.from([2n ** 63n + 1n]) }],
      [{ dtype: 'bool', dims: [2], data: Uint8Array.from([1, 0]) }, { dtype: 'bool', dims: [2], data: Uint8Array.from([1, 1]) }],
    ];
    for (const [a, b] of cases) {
      expect(tensorsAgree(allclose, a, { ...a, data: a.data.slice() as HostTensor['data'] }), a.dtype).toBe(true);
      expect(tensorsAgree(allclose, a, b), a.dtype).toBe(false); // off by one: rtol would have let a float through
    }
  });

  it('argmax works on every numeric dtype: halves by value, 64-bit integers exactly, bool as 0/1', () => {
    // Bits order a negative half above every positive one; values do not.
    expect(tensorsAgree(argmax, half([-3, 1, 2], [1, 3]), half([-1, 0.5, 7], [1, 3]))).toBe(true);
    expect(tensorsAgree(argmax, half([-3, 1, 2], [1, 3]), half([3, 1, 2], [1, 3]))).toBe(false);
    // 2^60 and 2^60 + 1 are the same double: compared as bigints they differ.
    const i64 = (v: bigint[]): HostTensor => ({ dtype: 'int64', dims: [1, v.length], data: BigInt64Array.from(v) });
    expect(tensorsAgree(argmax, i64([2n ** 60n, 2n ** 60n + 1n]), i64([0n, 1n]))).toBe(true);
    expect(tensorsAgree(argmax, i64([2n ** 60n + 1n, 2n ** 60n]), i64([0n, 1n]))).toBe(false);
    const u8 = (v: number[]): HostTensor => ({ dtype: 'uint8', dims: [1, v.length], data: Uint8Array.from(v) });
    expect(tensorsAgree(argmax, u8([250, 3]), u8([9, 1]))).toBe(true);
    const b = (v: number[]): HostTensor => ({ dtype: 'bool', dims: [1, v.length], data: Uint8Array.from(v) });
    expect(tensorsAgree(argmax, b([0, 1, 0]), b([0, 1, 1]))).toBe(true); // first maximum wins
    expect(tensorsAgree(argmax, b([1, 0]), b([0, 1]))).toBe(false);
  });
});
