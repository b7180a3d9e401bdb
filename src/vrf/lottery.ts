/**
 * The hashrate-weighted VRF lottery (the BABE / Ouroboros Praos rule).
 *
 * In each slot every worker i evaluates its VRF on `lotteryAlpha(epochRandomness, slot)` and
 * wins — may produce the slot's block — when its ticket (the first 32 bytes of the VRF output
 * beta, big-endian) is below
 *
 *     T(w_i) = floor( 2^256 · (1 − (1 − c)^(w_i / W)) )
 *
 * where w_i is its credited hashrate at the epoch's start and W the total. The function
 * 1 − (1 − c)^x is the one that makes the lottery *independent of how weight is split*:
 * P(nobody wins) = Π (1 − c)^(w_i/W) = 1 − c whatever the split, so a worker gains nothing by
 * splitting its credit over many keys, nor by merging keys.
 *
 * Consensus needs every node to compute the *same* threshold, so `lotteryThreshold` uses no
 * floating point: c (an IEEE double) is turned into its exact dyadic rational num/2^k, then
 * ln(1 − c) (by the atanh series after a power-of-two reduction) and exp (Taylor after a
 * ln 2 reduction) are evaluated in 384-bit fixed point with bigints. The 128 guard bits beyond
 * the 256-bit result make the floor exact unless the true value lies within ~2^-110 of an
 * integer; whatever happens, all nodes get the identical bigint. `winProbability` is a float
 * approximation for the simulator's fast mode and is NOT used for consensus.
 */
import { vrfError, VrfErrorCode } from './errors.ts';
import { utf8ToBytes } from '../util/bytes.ts';

/** Lottery parameters carried by the chain's genesis / epoch configuration. */
export interface LotteryParams {
  /**
   * The per-slot probability that at least one leader exists when all weight participates,
   * in (0, 1]. Also the expected fraction of non-empty slots.
   */
  c: number;
}

/**
 * Default c = 1/4, the value Polkadot's BABE runs with (`PRIMARY_PROBABILITY = (1, 4)`).
 * With many small workers the number of winners per slot is ≈ Poisson(−ln(1 − c)); at c = 1/4
 * P(≥1 leader) = 0.25, P(exactly 1) ≈ 0.216, P(≥2) ≈ 0.034, so 86% of non-empty slots have a
 * single producer (c = 1/2 gives only 69%: 0.347 vs 0.153 of slots). Fewer concurrent leaders
 * mean fewer forks and orphaned credit records, at the price of an expected block interval of
 * 4 slots (8 s with DEFAULT_SLOT_MS) — ample for a chain that only carries credit records.
 */
export const DEFAULT_C = 0.25;

/**
 * Default slot length 2 s. A slot must cover a block's propagation plus its validation by the
 * next producer, or honest leaders of consecutive slots fork each other. Gossipsub on a WAN
 * reaches a 1,000-node mesh (degree 6) in about log6(1000) ≈ 4 hops of ~100 ms each ≈ 0.4 s;
 * validation is one VRF verify (1–2 ms in JavaScript, see bench/vrf.bench.ts) plus one Ed25519 verify per
 * credit record (a few hundred records ≈ 0.3–0.5 s in JavaScript). 2 s leaves a margin of
 * ~2× for slow peers and clock skew; loopback devnets may use much shorter slots.
 */
export const DEFAULT_SLOT_MS = 2000;

/** The default lottery parameters. */
export const defaultLotteryParams: Readonly<LotteryParams> = Object.freeze({ c: DEFAULT_C });

/**
 * Largest accepted total weight, 2^128 − 1. Weights are credited FLOPs (a decade of an
 * exaFLOP/s grid is ~2^88), so this never binds in practice; it keeps the exponent w/W at
 * least 2^-128 apart for weights one apart, far above the 2^-370 arithmetic error, so the
 * threshold stays monotone in the weight.
 */
export const MAX_TOTAL_WEIGHT = (1n << 128n) - 1n;

/** Tickets are 256-bit integers: 2^256. A threshold of TICKET_SPACE always wins. */
export const TICKET_SPACE = 1n << 256n;

/** Domain tag of the lottery's VRF input, so lottery proofs can never serve another purpose. */
export const LOTTERY_ALPHA_TAG = utf8ToBytes('matrix-drill/lottery/v1');

/** Epoch randomness is a 32-byte hash; a fixed length keeps alpha's encoding unambiguous. */
export const EPOCH_RANDOMNESS_BYTES = 32;

// Working precision: 384 fractional bits = the 256 output bits + 128 guard bits.
const P = 384n;
const ONE = 1n << P;

function bitLength(n: bigint): bigint {
  return BigInt(n.toString(2).length);
}

/** atanh(z) for fixed-point z with |z| ≤ 1/3 (≥ 3.17 bits per term). */
function atanhFixed(z: bigint): bigint {
  const z2 = (z * z) >> P;
  let term = z;
  let sum = z;
  for (let n = 3n; ; n += 2n) {
    term = (term * z2) >> P;
    const t = term / n;
    if (t === 0n) break;
    sum += t;
  }
  return sum;
}

const LN2 = 2n * atanhFixed(ONE / 3n); // ln 2 = 2·atanh(1/3)

/** ln(p/q) in fixed point for integers 0 < p ≤ q (so the result is ≤ 0). */
function lnRatioFixed(p: bigint, q: bigint): bigint {
  // p/q = m · 2^-e with m in (1/2, 2): then |(m − 1)/(m + 1)| < 1/3.
  const e = bitLength(q) - bitLength(p);
  const m = ((p << (e + P)) / q);
  const z = ((m - ONE) << P) / (m + ONE);
  return 2n * atanhFixed(z) - e * LN2;
}

/** e^(−x) in fixed point for fixed-point x ≥ 0. */
function expNegFixed(x: bigint): bigint {
  const k = x / LN2; // e^-x = 2^-k · e^-r, r in [0, ln 2)
  const r = x - k * LN2;
  if (k > P) return 0n;
  let term = ONE;
  let sum = ONE;
  for (let n = 1n; ; n++) {
    term = (term * r) >> P;
    term /= n;
    if (term === 0n) break;
    sum += n % 2n === 1n ? -term : term;
  }
  return sum >> k;
}

/** The exact rational value num/den of a double c in (0, 1] (den a power of two). */
function exactRational(c: number): { num: bigint; den: bigint } {
  let x = c;
  let den = 1n;
  while (!Number.isInteger(x)) {
    x *= 2; // exact for doubles: only the exponent changes
    den *= 2n;
  }
  return { num: BigInt(x), den };
}

function checkC(c: number): void {
  if (typeof c !== 'number' || !(c > 0 && c <= 1)) {
    throw vrfError(VrfErrorCode.BAD_LOTTERY_PARAM, 'c', `expected a number in (0, 1], received ${String(c)}`);
  }
}

// −ln(1 − c) depends only on c; one chain uses one or a few values of c.
const negLnCache = new Map<number, bigint>();
const NEG_LN_CACHE_MAX = 64; // bounds memory if a simulator sweeps many c values

function negLn1MinusC(c: number): bigint {
  let a = negLnCache.get(c);
  if (a === undefined) {
    const { num, den } = exactRational(c);
    a = -lnRatioFixed(den - num, den);
    if (negLnCache.size >= NEG_LN_CACHE_MAX) negLnCache.clear();
    negLnCache.set(c, a);
  }
  return a;
}

/**
 * The lottery threshold T = floor(2^256 · (1 − (1 − c)^(weight/total))), computed with bigint
 * fixed-point arithmetic (no floating point), identical on every platform.
 *
 * Edges: weight 0 → 0 (never wins); weight == total → floor(2^256 · c) exactly (c's exact
 * binary value); c = 1 and weight > 0 → 2^256 (always wins). The result is in [0, 2^256] and
 * non-decreasing in weight.
 *
 * @throws DrillError VRF_BAD_LOTTERY_PARAM if c is not in (0, 1], weight or total is not a
 *   bigint, weight < 0, weight > total, or total > MAX_TOTAL_WEIGHT.
 */
export function lotteryThreshold(c: number, weight: bigint, total: bigint): bigint {
  checkC(c);
  if (typeof weight !== 'bigint' || weight < 0n) {
    throw vrfError(VrfErrorCode.BAD_LOTTERY_PARAM, 'weight', `expected a bigint ≥ 0, received ${String(weight)}`);
  }
  if (typeof total !== 'bigint' || total < weight) {
    throw vrfError(VrfErrorCode.BAD_LOTTERY_PARAM, 'total', `expected a bigint ≥ weight (${weight}), received ${String(total)}`);
  }
  if (total > MAX_TOTAL_WEIGHT) {
    throw vrfError(VrfErrorCode.BAD_LOTTERY_PARAM, 'total', `expected at most 2^128 − 1, received ${total}`);
  }
  if (weight === 0n) return 0n;
  if (c === 1) return TICKET_SPACE;
  if (weight === total) {
    const { num, den } = exactRational(c);
    return (num << 256n) / den;
  }
  const x = (negLn1MinusC(c) * weight) / total; // −ln(1 − c) · w/W ≥ 0
  const t = (ONE - expNegFixed(x)) >> (P - 256n);
  return t < 0n ? 0n : t;
}

/**
 * Threshold for the given parameters (convenience over `lotteryThreshold`).
 * @throws DrillError VRF_BAD_LOTTERY_PARAM as lotteryThreshold.
 */
export function thresholdFor(params: LotteryParams, weight: bigint, total: bigint): bigint {
  return lotteryThreshold(params.c, weight, total);
}

/**
 * The lottery ticket of a VRF output: the first 32 bytes of the 64-byte beta as a big-endian
 * integer in [0, 2^256).
 * @throws DrillError VRF_BAD_ARGUMENT if beta is not a 64-byte Uint8Array.
 */
export function betaToTicket(beta: Uint8Array): bigint {
  if (!(beta instanceof Uint8Array) || beta.length !== 64) {
    throw vrfError(VrfErrorCode.BAD_ARGUMENT, 'beta', `expected a 64-byte Uint8Array, received ${beta instanceof Uint8Array ? `${beta.length} bytes` : typeof beta}`);
  }
  let t = 0n;
  for (let i = 0; i < 32; i++) t = (t << 8n) | BigInt(beta[i]!);
  return t;
}

/**
 * Whether the VRF output wins against the threshold: ticket < threshold.
 * @throws DrillError VRF_BAD_ARGUMENT if beta is not 64 bytes.
 */
export function isWinner(beta: Uint8Array, threshold: bigint): boolean {
  return betaToTicket(beta) < threshold;
}

/**
 * The VRF input of the lottery for a slot:
 * `"matrix-drill/lottery/v1" ‖ epochRandomness (32 bytes) ‖ slot (u64 big-endian)`.
 * @throws DrillError VRF_BAD_LOTTERY_PARAM if epochRandomness is not 32 bytes or slot is not a
 *   safe integer ≥ 0.
 */
export function lotteryAlpha(epochRandomness: Uint8Array, slot: number): Uint8Array {
  if (!(epochRandomness instanceof Uint8Array) || epochRandomness.length !== EPOCH_RANDOMNESS_BYTES) {
    throw vrfError(VrfErrorCode.BAD_LOTTERY_PARAM, 'epochRandomness', `expected ${EPOCH_RANDOMNESS_BYTES} bytes, received ${epochRandomness instanceof Uint8Array ? `${epochRandomness.length} bytes` : typeof epochRandomness}`);
  }
  if (!Number.isSafeInteger(slot) || slot < 0) {
    throw vrfError(VrfErrorCode.BAD_LOTTERY_PARAM, 'slot', `expected a safe integer ≥ 0, received ${String(slot)}`);
  }
  const out = new Uint8Array(LOTTERY_ALPHA_TAG.length + EPOCH_RANDOMNESS_BYTES + 8);
  out.set(LOTTERY_ALPHA_TAG, 0);
  out.set(epochRandomness, LOTTERY_ALPHA_TAG.length);
  new DataView(out.buffer).setBigUint64(LOTTERY_ALPHA_TAG.length + EPOCH_RANDOMNESS_BYTES, BigInt(slot), false);
  return out;
}

/**
 * Float approximation of the win probability 1 − (1 − c)^(w/W), for the simulator's fast
 * mode. NOT used for consensus (use lotteryThreshold). Relative error ~1e-15.
 * @throws DrillError VRF_BAD_LOTTERY_PARAM if c is not in (0, 1] or not 0 ≤ w ≤ W.
 */
export function winProbability(c: number, w: number | bigint, W: number | bigint): number {
  checkC(c);
  const wn = Number(w);
  const Wn = Number(W);
  if (!(wn >= 0 && wn <= Wn && Number.isFinite(Wn))) {
    throw vrfError(VrfErrorCode.BAD_LOTTERY_PARAM, 'weight', `expected 0 ≤ w ≤ W, received w=${String(w)}, W=${String(W)}`);
  }
  if (wn === 0) return 0;
  if (c === 1) return 1;
  return -Math.expm1((wn / Wn) * Math.log1p(-c));
}
