/**
 * PoD comparison policies: when do two replicas' results count as "the same answer"?
 *
 * Floating point differs in the last bits across thread counts, SIMD widths, optimisation
 * levels, CPUs and execution providers, so byte equality would penalise honest workers.
 * A workload chooses its policy:
 *  - `exact`            byte-identical tensors (integer models, or one fixed execution profile)
 *  - `allclose:RTOL,ATOL`  |a − b| ≤ ATOL + RTOL·|b| element-wise, NaN equal to NaN, ±Inf exact
 *  - `argmax`           the index of the maximum along the last axis agrees for every row
 *                       (classifiers: the decision must match, not the logits)
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
import { tensorBytes } from '../util/tensor.ts';
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
  if (a.dtype !== 'float32' && a.dtype !== 'float64') return equalBytes(tensorBytes(a), tensorBytes(b));
  const x = a.data as Float32Array | Float64Array;
  const y = b.data as Float32Array | Float64Array;
  const { rtol, atol } = p;
  for (let i = 0; i < x.length; i++) {
    const u = x[i]!;
    const v = y[i]!;
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
  const x = a.data;
  const y = b.data;
  for (let r = 0; r < rows; r++) {
    if (argmaxAt(x, r * last, last) !== argmaxAt(y, r * last, last)) return false;
  }
  return true;
}

function argmaxAt(d: HostTensor['data'], off: number, n: number): number {
  let best = 0;
  let bv = d[off]!;
  for (let i = 1; i < n; i++) {
    const v = d[off + i]!;
    if (v > bv) {
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
