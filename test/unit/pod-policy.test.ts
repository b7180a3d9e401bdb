import { describe, it, expect } from 'vitest';
import { parsePolicy, tensorsAgree, resultsAgree, DEFAULT_POLICY, formatPolicy } from '../../src/pod/index.ts';
import type { HostTensor } from '../../src/util/tensor.ts';

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
