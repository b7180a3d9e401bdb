/**
 * PoD comparison policies: when do two replicas' results count as "the same answer"?
 *
 * Floating point differs in the last bits across thread counts, SIMD widths, optimisation
 * levels, CPUs and execution providers, so byte equality would penalise honest workers.
 * A workload chooses its policy:
 *  - `exact`            byte-identical tensors (integer models, or one fixed execution profile)
 *  - `allclose:RTOL,ATOL`  |a − b| ≤ ATOL + RTOL·|b| element-wise, NaN equal to NaN, ±Inf exact
 *                       — for float16, float32 and float64 tensors (halves are decoded and
 *                       compared by value); integer and bool tensors must be equal exactly
 *  - `argmax`           the index of the maximum along the last axis agrees for every row
 *                       (classifiers: the decision must match, not the logits); any numeric
 *                       dtype (halves by value, 64-bit integers exactly, bool as 0/1; the
 *                       first maximum wins a tie; NaN is never a maximum)
 *
 * Default `allclose:1e-3,1e-4` — why: float32 results of one model re-associated by a different
 * thread count or CPU differ by ~1e-6 relative; CUDA kernels (TF32 matmul, fused attention)
 * differ by up to ~5e-4 relative on activations of order 1. rtol 1e-3 covers both with margin;
 * atol 1e-4 covers values that should be 0 (post-ReLU, small softmax probabilities) where
 * relative error is meaningless. A worker that skips or fakes the compute is off by O(1),
 * three orders of magnitude above the tolerance (see test/unit/pod-policy.test.ts).
 */
import { UserError } from '../util/errors.ts';
import type { HostTensor } from '../util/tensor.ts';
import { tensorBytes, halfToFloat, isFloat } from '../util/tensor.ts';
import { equalBytes } from '../util/bytes.ts';

export type Policy =
  | { kind: 'exact' }
  | { kind: 'allclose'; rtol: number; atol: number }
  | { kind: 'argmax' };

export const DEFAULT_POLICY = 'allclose:1e-3,1e-4';

/**
 * Parse a policy string as a user writes it (`--compare`, job manifest `policy`).
 * @throws UserError naming `field` on anything else.
 */
export function parsePolicy(s: string, field = 'policy'): Policy {
  const text = s.trim();
  if (text === 'exact') return { kind: 'exact' };
  if (text === 'argmax') return { kind: 'argmax' };
  const m = /^allclose(?::([^,]+),([^,]+))?$/.exec(text);
  if (m) {
    if (m[1] === undefined) return parsePolicy(DEFAULT_POLICY, field);
    const rtol = Number(m[1]);
    const atol = Number(m[2]);
    if (!Number.isFinite(rtol) || !Number.isFinite(atol) || rtol < 0 || atol < 0 || m[1].trim() === '' || m[2]!.trim() === '') {
      throw new UserError(field, 'allclose:RTOL,ATOL with two non-negative numbers', s);
    }
    return { kind: 'allclose', rtol, atol };
  }
  throw new UserError(field, `one of exact, argmax, allclose:RTOL,ATOL (default ${DEFAULT_POLICY})`, s);
}

export function formatPolicy(p: Policy): string {
  return p.kind === 'allclose' ? `allclose:${p.rtol},${p.atol}` : p.kind;
}

/** Do two tensors agree under the policy? Shapes and dtypes must match exactly under every policy. */
export function tensorsAgree(p: Policy, a: HostTensor, b: HostTensor): boolean {
  if (a.dtype !== b.dtype || a.dims.length !== b.dims.length) return false;
  for (let i = 0; i < a.dims.length; i++) if (a.dims[i] !== b.dims[i]) return false;
  if (a.data.length !== b.data.length) return false;
  if (p.kind === 'exact') return equalBytes(tensorBytes(a), tensorBytes(b));
  if (p.kind === 'argmax') return argmaxAgree(a, b);
  if (!isFloat(a.dtype)) return equalBytes(tensorBytes(a), tensorBytes(b));
  const half = a.dtype === 'float16';
  const x = a.data as Float32Array | Float64Array | Uint16Array;
  const y = b.data as Float32Array | Float64Array | Uint16Array;
  const { rtol, atol } = p;
  for (let i = 0; i < x.length; i++) {
    const u = half ? halfToFloat(x[i]!) : x[i]!;
    const v = half ? halfToFloat(y[i]!) : y[i]!;
    if (u === v) continue; // also equal infinities
    if (Number.isNaN(u) || Number.isNaN(v)) {
      if (Number.isNaN(u) && Number.isNaN(v)) continue;
      return false;
    }
    if (!Number.isFinite(u) || !Number.isFinite(v)) return false;
    if (Math.abs(u - v) > atol + rtol * Math.abs(v)) return false;
  }
  return true;
}

function argmaxAgree(a: HostTensor, b: HostTensor): boolean {
  const last = a.dims.length ? a.dims[a.dims.length - 1]! : 1;
  if (last === 0) return true;
  const rows = a.data.length / last;
  for (let r = 0; r < rows; r++) {
    if (argmaxAt(a, r * last, last) !== argmaxAt(b, r * last, last)) return false;
  }
  return true;
}

/** Index of the first maximum of `n` elements from `off` (NaNs skipped; -1 when all are NaN). */
function argmaxAt(t: HostTensor, off: number, n: number): number {
  const d = t.data;
  const half = t.dtype === 'float16';
  let best = -1;
  let bv: number | bigint = 0;
  for (let i = 0; i < n; i++) {
    const raw = d[off + i]!;
    const v = half ? halfToFloat(raw as number) : raw;
    if (typeof v === 'number' && Number.isNaN(v)) continue;
    if (best < 0 || v > bv) {
      bv = v;
      best = i;
    }
  }
  return best;
}

/** Results are maps output-name → tensor; they agree when they have the same names and every tensor agrees. */
export function resultsAgree(p: Policy, a: Record<string, HostTensor>, b: Record<string, HostTensor>): boolean {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  if (ka.length !== kb.length) return false;
  for (let i = 0; i < ka.length; i++) {
    if (ka[i] !== kb[i]) return false;
    if (!tensorsAgree(p, a[ka[i]!]!, b[kb[i]!]!)) return false;
  }
  return true;
}
