/**
 * The credit ledger: verified FLOPs per worker, bucketed (by epoch in the chain, by job in a
 * coordinator) so that a window of recent buckets gives the decaying "credited hashrate"
 * and so that applying and reverting records (chain reorgs) are exact inverses.
 * Pure and in memory; persistence belongs to the owner (job store, block store).
 */
import type { CreditBody } from './credit.ts';

export interface WorkerCredit {
  credit: bigint;
  unitsAgreed: number;
  unitsFaulty: number;
}

export class CreditLedger {
  readonly #buckets = new Map<number, Map<string, WorkerCredit>>();

  /** Apply a record's credit to bucket `bucket`. */
  apply(r: Pick<CreditBody, 'credited' | 'faulty' | 'flops'>, bucket = 0): void {
    this.#update(r, bucket, 1);
  }

  /** Exactly undo apply(r, bucket). */
  revert(r: Pick<CreditBody, 'credited' | 'faulty' | 'flops'>, bucket = 0): void {
    this.#update(r, bucket, -1);
  }

  #update(r: Pick<CreditBody, 'credited' | 'faulty' | 'flops'>, bucket: number, sign: 1 | -1): void {
    let m = this.#buckets.get(bucket);
    if (!m) this.#buckets.set(bucket, (m = new Map()));
    const get = (w: string): WorkerCredit => {
      let e = m.get(w);
      if (!e) m.set(w, (e = { credit: 0n, unitsAgreed: 0, unitsFaulty: 0 }));
      return e;
    };
    const f = BigInt(r.flops) * BigInt(sign);
    for (const w of r.credited) {
      const e = get(w);
      e.credit += f;
      e.unitsAgreed += sign;
    }
    for (const w of r.faulty) get(w).unitsFaulty += sign;
  }

  /** Per-worker credit summed over buckets in [from, to] (inclusive); workers with zero everywhere omitted. */
  window(from = -Infinity, to = Infinity): Map<string, WorkerCredit> {
    const out = new Map<string, WorkerCredit>();
    const keys = [...this.#buckets.keys()].filter((b) => b >= from && b <= to).sort((a, b) => a - b);
    for (const b of keys) {
      for (const [w, e] of this.#buckets.get(b)!) {
        const o = out.get(w) ?? { credit: 0n, unitsAgreed: 0, unitsFaulty: 0 };
        o.credit += e.credit;
        o.unitsAgreed += e.unitsAgreed;
        o.unitsFaulty += e.unitsFaulty;
        out.set(w, o);
      }
    }
    for (const [w, e] of out) if (e.credit === 0n && e.unitsAgreed === 0 && e.unitsFaulty === 0) out.delete(w);
    return out;
  }

  /** Credited FLOPs per worker over the window — the lottery weights. */
  weights(from = -Infinity, to = Infinity): Map<string, bigint> {
    const out = new Map<string, bigint>();
    for (const [w, e] of this.window(from, to)) if (e.credit > 0n) out.set(w, e.credit);
    return out;
  }

  /** Drop buckets older than `before` (they can no longer be reverted). */
  prune(before: number): void {
    for (const b of [...this.#buckets.keys()]) if (b < before) this.#buckets.delete(b);
  }
}
