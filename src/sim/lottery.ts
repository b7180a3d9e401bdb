/**
 * The slot lottery in the simulator: an exact-in-distribution fast mode, and the real thing
 * (RFC 9381 ECVRF proofs against the exact bigint threshold) for small runs. Pure apart from
 * the RNG passed in.
 *
 * ## Fast mode: Poisson splitting
 * The chain's rule: trainer i wins a slot, independently of the others, with probability
 *     p_i = 1 − (1 − c)^(w_i/W) = 1 − e^(−λ_i),   λ_i = Λ · w_i/W,   Λ = −ln(1 − c).
 * That is exactly the law of "trainer i receives at least one point" when trainer i receives
 * N_i ~ Poisson(λ_i) points, independently. By the splitting property of the Poisson
 * distribution, independent N_i ~ Poisson(λ_i) are the same as: draw N ~ Poisson(Λ) points in
 * all, then give each point to trainer i with probability λ_i/Λ = w_i/W. So one slot costs one
 * Poisson draw (mean Λ ≈ 0.29 at c = 1/4) plus one weighted draw per point from a Fenwick tree
 * (O(log n)); the winners are the distinct trainers hit. This is not an approximation: the
 * joint law of the winner set is identical to independent Bernoulli(p_i) draws, P(no leader)
 * = e^(−Λ) = 1 − c however the weight is split, and trainers that cannot win (w_i = 0, or who
 * receive no point) are never touched. The only difference from the chain is arithmetic:
 * float64 weights instead of the 256-bit threshold (relative error ~1e-15).
 * c = 1 (Λ = ∞) is the degenerate case where every trainer with weight wins every slot.
 *
 * ## ECVRF mode
 * Every trainer with weight evaluates `vrfProve(suite, sk, lotteryAlpha(r_e, slot))`, hashes
 * it to beta and wins if `isWinner(beta, lotteryThreshold(c, w, W))` — the code path of a real
 * node. Epoch randomness follows src/chain/epoch.ts (`nextEpochRandomness` over the VRF
 * outputs of epoch e − 2; here the lowest-ticket winner of each slot stands for the block on
 * the branch). Cost ~1 ms per trainer per slot, so only for small runs.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { betaToTicket, lotteryAlpha, lotteryThreshold } from '../vrf/lottery.ts';
import { nextEpochRandomness } from '../chain/epoch.ts';
import { concatBytes, utf8ToBytes } from '../util/bytes.ts';
import type { FenwickSampler } from './sampling.ts';
import type { Rng } from './rng.ts';

/**
 * Fast draw of one slot's winners into `out` (cleared first): distinct trainer indices.
 * @param lambda −ln(1 − c) (Infinity when c = 1)
 */
export function drawWinnersFast(weights: FenwickSampler, lambda: number, rng: Rng, out: number[]): number[] {
  out.length = 0;
  if (!(weights.total > 0)) return out;
  if (lambda === Infinity) {
    for (let i = 0; i < weights.n; i++) if (weights.get(i) > 0) out.push(i);
    return out;
  }
  const k = rng.poisson(lambda);
  for (let j = 0; j < k; j++) {
    const i = weights.sample(rng.next());
    if (!out.includes(i)) out.push(i);
  }
  return out;
}

/** The Poisson mean Λ = −ln(1 − c) of the fast mode. */
export function lotteryLambda(c: number): number {
  return c === 1 ? Infinity : -Math.log1p(-c);
}

/** A trainer's deterministic VRF secret key in a simulation: SHA-256("matrix-drill/sim/vrf-key" ‖ seed ‖ i). */
export function simVrfKey(seed: number | string, i: number): Uint8Array {
  return sha256(concatBytes(utf8ToBytes('matrix-drill/sim/vrf-key'), utf8ToBytes(String(seed)), utf8ToBytes(`/${i}`)));
}

/**
 * The ECVRF functions the ECVRF mode calls — src/vrf/ecvrf.ts's `vrfProve` and `vrfProofToHash`.
 * Passed in rather than imported, so the simulator's fast paths never load the curve code and
 * tests can count or replace the calls.
 */
export interface VrfImpl {
  prove(suite: 'tai' | 'ell2', sk: Uint8Array, alpha: Uint8Array): Uint8Array;
  proofToHash(suite: 'tai' | 'ell2', pi: Uint8Array): Uint8Array;
}

/** Load the project's RFC 9381 implementation (src/vrf/ecvrf.ts) as a VrfImpl. */
export async function loadEcvrf(): Promise<VrfImpl> {
  const m = await import('../vrf/ecvrf.ts');
  return { prove: m.vrfProve, proofToHash: m.vrfProofToHash };
}

/** Integer scale of ECVRF-mode weights (see startEpoch). */
const WEIGHT_SCALE = 2 ** 40;

/** Real-ECVRF lottery over a small population. */
export class EcvrfLottery {
  readonly #suite: 'tai' | 'ell2';
  readonly #c: number;
  readonly #keys: Uint8Array[];
  readonly #vrf: VrfImpl;
  #active: number[] = [];
  #thresholds: bigint[] = [];
  /** r(e) for the epochs still needed (e − 1, e). */
  readonly #randomness = new Map<number, Uint8Array>();
  /** VRF outputs of slot winners per epoch (for r(e + 2)). */
  readonly #outputs = new Map<number, Uint8Array[]>();
  #epoch = -1;

  constructor(vrf: VrfImpl, suite: 'tai' | 'ell2', c: number, seed: number | string, n: number) {
    this.#vrf = vrf;
    this.#suite = suite;
    this.#c = c;
    this.#keys = Array.from({ length: n }, (_, i) => simVrfKey(seed, i));
    const genesis = sha256(concatBytes(utf8ToBytes('matrix-drill/sim/genesis-randomness'), utf8ToBytes(String(seed))));
    this.#randomness.set(0, genesis);
    this.#randomness.set(1, genesis);
  }

  /**
   * Start epoch e with integer weights (credited FLOPs in the snapshot): computes every
   * threshold exactly with `lotteryThreshold`.
   */
  startEpoch(e: number, weights: ArrayLike<number>): void {
    this.#epoch = e;
    if (e >= 2 && !this.#randomness.has(e)) {
      this.#randomness.set(e, nextEpochRandomness(this.#randomness.get(e - 2)!, e, this.#outputs.get(e - 2) ?? []));
    }
    this.#randomness.delete(e - 2);
    this.#outputs.delete(e - 2);
    // Integer weights for the exact threshold: scaled so the total is ~2^40 (the threshold
    // depends only on w/W, and credited FLOPs are already integers; 2^-40 relative rounding
    // is far below any effect a simulation can measure, and keeps float hashrates usable).
    let ftotal = 0;
    for (let i = 0; i < weights.length; i++) ftotal += Math.max(0, weights[i]!);
    let total = 0n;
    const w: bigint[] = [];
    for (let i = 0; i < weights.length; i++) {
      w.push(ftotal > 0 ? BigInt(Math.round((Math.max(0, weights[i]!) / ftotal) * WEIGHT_SCALE)) : 0n);
      total += w[i]!;
    }
    this.#active = [];
    this.#thresholds = [];
    if (total === 0n) return;
    for (let i = 0; i < w.length; i++) {
      if (w[i]! === 0n) continue;
      this.#active.push(i);
      this.#thresholds.push(lotteryThreshold(this.#c, w[i]!, total));
    }
  }

  /** The slot's winners (distinct trainer indices, in index order) into `out`. */
  draw(slot: number, out: number[]): number[] {
    out.length = 0;
    const r = this.#randomness.get(this.#epoch);
    if (!r) throw new RangeError(`epoch ${this.#epoch} has no randomness (call startEpoch first)`);
    const alpha = lotteryAlpha(r, slot);
    let best: Uint8Array | null = null;
    let bestTicket = 0n;
    for (let k = 0; k < this.#active.length; k++) {
      const i = this.#active[k]!;
      const beta = this.#vrf.proofToHash(this.#suite, this.#vrf.prove(this.#suite, this.#keys[i]!, alpha));
      const ticket = betaToTicket(beta);
      if (ticket < this.#thresholds[k]!) {
        out.push(i);
        if (best === null || ticket < bestTicket) {
          best = beta;
          bestTicket = ticket;
        }
      }
    }
    if (best) {
      let list = this.#outputs.get(this.#epoch);
      if (!list) this.#outputs.set(this.#epoch, (list = []));
      list.push(best);
    }
    return out;
  }
}
