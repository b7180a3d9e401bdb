/**
 * The credit ledger: verified FLOPs per worker, bucketed (by epoch in the chain, by job in a
 * coordinator) so that a window of recent buckets gives the decaying "credited hashrate"
 * and so that applying and reverting records (chain reorgs) are exact inverses.
 * Pure and in memory; persistence belongs to the owner (job store, block store).
 *
 * Faults. A fault against (worker, job) forfeits everything the worker was credited for that
 * job: the amount is booked as a negative entry in the fault's bucket (past buckets never
 * change, so an old epoch's snapshot stays what it was), and later credit records of that job
 * give the worker nothing. A fault also bans the worker's lottery weight for the snapshot
 * buckets [bucket, bucket + banBuckets − 1]. Window sums are clamped at zero per worker (a
 * forfeit may outlive the credit it cancels once that credit leaves the window).
 *
 * Reverts must come in reverse order of applies (the chain reverts a branch newest first): the
 * state a revert sees is then exactly the state its apply left, which is what makes skipped
 * credit and forfeited amounts recomputable rather than stored.
 */
import type { CreditBody } from './credit.ts';

export interface WorkerCredit {
  credit: bigint;
  unitsAgreed: number;
  unitsFaulty: number;
  /** Fault records applied against the worker. */
  faults: number;
}

/** What the ledger needs of a credit record. */
export type CreditEntry = Pick<CreditBody, 'credited' | 'faulty' | 'flops'> & { job?: string };

/** What the ledger needs of a fault: the worker, the job whose credit it forfeits (none for a chain-level fault). */
export interface FaultEntry {
  worker: string;
  job?: string;
}

const pairKey = (worker: string, job: string): string => `${worker}\u0000${job}`;

export class CreditLedger {
  readonly #buckets = new Map<number, Map<string, WorkerCredit>>();
  /** Credit counted per (worker, job) — what a fault on that job forfeits. */
  readonly #jobCredit = new Map<string, bigint>();
  /** Fault records applied per (worker, job); > 0 means the pair's credit is forfeited. */
  readonly #faulted = new Map<string, number>();
  /** Lottery bans per worker: snapshot bucket ranges [from, to], a multiset (one per fault). */
  readonly #bans = new Map<string, Array<[number, number]>>();

  /** Apply a record's credit to bucket `bucket`. */
  apply(r: CreditEntry, bucket = 0): void {
    this.#update(r, bucket, 1);
  }

  /** Exactly undo apply(r, bucket) (the last apply not yet reverted). */
  revert(r: CreditEntry, bucket = 0): void {
    this.#update(r, bucket, -1);
  }

  #entry(bucket: number, w: string): WorkerCredit {
    let m = this.#buckets.get(bucket);
    if (!m) this.#buckets.set(bucket, (m = new Map()));
    let e = m.get(w);
    if (!e) m.set(w, (e = { credit: 0n, unitsAgreed: 0, unitsFaulty: 0, faults: 0 }));
    return e;
  }

  #update(r: CreditEntry, bucket: number, sign: 1 | -1): void {
    const f = BigInt(r.flops) * BigInt(sign);
    for (const w of r.credited) {
      const e = this.#entry(bucket, w);
      if (r.job !== undefined) {
        const k = pairKey(w, r.job);
        // Credit of a job the worker was found faulty in is forfeited: it earns nothing.
        if ((this.#faulted.get(k) ?? 0) > 0) continue;
        this.#jobCredit.set(k, (this.#jobCredit.get(k) ?? 0n) + f);
      }
      e.credit += f;
      e.unitsAgreed += sign;
    }
    for (const w of r.faulty) this.#entry(bucket, w).unitsFaulty += sign;
  }

  /**
   * Apply a fault in bucket `bucket`: forfeit the worker's credit for the fault's job (first
   * fault for that pair only) and ban its lottery weight for `banBuckets` snapshot buckets.
   */
  applyFault(f: FaultEntry, bucket: number, banBuckets: number): void {
    const e = this.#entry(bucket, f.worker);
    e.faults++;
    if (f.job !== undefined) {
      const k = pairKey(f.worker, f.job);
      const n = this.#faulted.get(k) ?? 0;
      if (n === 0) e.credit -= this.#jobCredit.get(k) ?? 0n;
      this.#faulted.set(k, n + 1);
    }
    if (banBuckets > 0) {
      let b = this.#bans.get(f.worker);
      if (!b) this.#bans.set(f.worker, (b = []));
      b.push([bucket, bucket + banBuckets - 1]);
    }
  }

  /** Exactly undo applyFault(f, bucket, banBuckets) (the last fault applied, not yet reverted). */
  revertFault(f: FaultEntry, bucket: number, banBuckets: number): void {
    const e = this.#entry(bucket, f.worker);
    e.faults--;
    if (f.job !== undefined) {
      const k = pairKey(f.worker, f.job);
      const n = (this.#faulted.get(k) ?? 0) - 1;
      if (n <= 0) {
        this.#faulted.delete(k);
        e.credit += this.#jobCredit.get(k) ?? 0n;
      } else this.#faulted.set(k, n);
    }
    if (banBuckets > 0) {
      const b = this.#bans.get(f.worker);
      const i = b ? b.findLastIndex(([from, to]) => from === bucket && to === bucket + banBuckets - 1) : -1;
      if (b && i >= 0) {
        b.splice(i, 1);
        if (b.length === 0) this.#bans.delete(f.worker);
      }
    }
  }

  /** Is the worker's lottery weight banned for the snapshot taken at `bucket`? */
  isBanned(worker: string, bucket: number): boolean {
    return this.#bans.get(worker)?.some(([from, to]) => bucket >= from && bucket <= to) ?? false;
  }

  /** Workers whose weight is banned at `bucket`. */
  bannedAt(bucket: number): Set<string> {
    const out = new Set<string>();
    for (const [w, b] of this.#bans) if (b.some(([from, to]) => bucket >= from && bucket <= to)) out.add(w);
    return out;
  }

  /** Is the worker's credit for `job` forfeited by a fault? */
  isForfeited(worker: string, job: string): boolean {
    return (this.#faulted.get(pairKey(worker, job)) ?? 0) > 0;
  }

  /** Per-worker credit summed over buckets in [from, to] (inclusive); workers with zero everywhere omitted. */
  window(from = -Infinity, to = Infinity): Map<string, WorkerCredit> {
    const out = new Map<string, WorkerCredit>();
    const keys = [...this.#buckets.keys()].filter((b) => b >= from && b <= to).sort((a, b) => a - b);
    for (const b of keys) {
      for (const [w, e] of this.#buckets.get(b)!) {
        const o = out.get(w) ?? { credit: 0n, unitsAgreed: 0, unitsFaulty: 0, faults: 0 };
        o.credit += e.credit;
        o.unitsAgreed += e.unitsAgreed;
        o.unitsFaulty += e.unitsFaulty;
        o.faults += e.faults;
        out.set(w, o);
      }
    }
    for (const [w, e] of out) if (e.credit === 0n && e.unitsAgreed === 0 && e.unitsFaulty === 0 && e.faults === 0) out.delete(w);
    return out;
  }

  /**
   * Credited FLOPs per worker over the window — the lottery weights, before bans (the chain
   * removes workers banned at its snapshot bucket). Negative sums (a forfeit whose credit left
   * the window) count as zero.
   */
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
