/**
 * The per-job unit scheduler: a pure state machine (clock passed in, no I/O) that the
 * coordinator service drives from network events.
 *
 * Life of a unit:
 *   open ──claim──▶ leased to R distinct workers (never two replicas to one peer)
 *        ──commit──▶ when every outstanding replica of the round has committed, their results
 *                    are revealed (pulled by the coordinator) — nobody sees a result before
 *                    every replica of the round is bound to its own
 *        ──reveal──▶ all revealed → decideUnit: agreed / resolved → done;
 *                    pending → `wanted` grows by needMore and the unit reopens for new workers;
 *                    failed → the job fails ("results do not agree ...").
 * A lease whose worker misses its deadline before committing, or whose worker leaves, is
 * dropped and the unit reopens (re-issue); the worker stays excluded from that unit.
 */
import type { AgreeFn, UnitOutcome } from '../pod/quorum.ts';
import { decideUnit } from '../pod/quorum.ts';
import type { HostTensor } from '../util/tensor.ts';

export type Result = Record<string, HostTensor>;

export interface Lease {
  id: string;
  unit: number;
  worker: string;
  start: number;
  end: number;
  issuedAt: number;
  deadline: number;
  commitment?: string;
  revealRequested?: boolean;
}

interface UnitState {
  index: number;
  start: number;
  end: number;
  status: 'open' | 'done' | 'failed';
  wanted: number;
  leases: Map<string, Lease>;
  results: { worker: string; result: Result }[];
  participants: Set<string>;
  disputed: boolean;
  errors: string[];
  reissued: number;
}

export interface SchedulerOptions {
  replicas: number;
  maxReplicas: number;
  /** How long a worker has to commit a result after leasing a unit. */
  leaseMs: number;
  /** Distinct workers whose run of a unit must fail with an error before the job fails. */
  maxUnitErrors?: number;
  /**
   * Tag in every lease id (e.g. random per coordinator start), so a lease issued before a
   * restart can never be mistaken for one issued after it.
   */
  leaseTag?: string;
}

export interface UnitDone {
  unit: number;
  start: number;
  end: number;
  outcome: UnitOutcome;
  /** The accepted result (agreed, resolved or unverified). */
  result: Result;
  /** Per-worker digests are the caller's business; here: which workers ran it. */
  workers: string[];
  disputed: boolean;
}

export interface UnitFailed {
  unit: number;
  reason: 'disagree' | 'error';
  message: string;
}

export interface Progress {
  total: number;
  done: number;
  agreed: number;
  disputed: number;
  failed: number;
  unverified: number;
  inflight: number;
  reissued: number;
  rowsDone: number;
}

let leaseSeq = 0;

export class JobScheduler {
  readonly #units: UnitState[];
  readonly #leases = new Map<string, Lease>();
  readonly #agree: AgreeFn<Result>;
  readonly #opts: Required<SchedulerOptions>;
  readonly #jobId: string;
  #progress: Progress;

  /**
   * @param doneUnits units already finished (a resumed job), with the outcome they had, so the
   *   progress counters (agreed / disputed / unverified) stay right across a restart.
   */
  constructor(jobId: string, rows: number, unitRows: number, agree: AgreeFn<Result>, opts: SchedulerOptions, doneUnits: ReadonlyMap<number, string> = new Map()) {
    this.#jobId = jobId;
    this.#agree = agree;
    this.#opts = { maxUnitErrors: 2, leaseTag: '', ...opts };
    this.#units = splitRows(rows, unitRows).map(([start, end], index) => ({
      index,
      start,
      end,
      status: doneUnits.has(index) ? 'done' : 'open',
      wanted: opts.replicas,
      leases: new Map(),
      results: [],
      participants: new Set(),
      disputed: false,
      errors: [],
      reissued: 0,
    }));
    this.#progress = { total: this.#units.length, done: 0, agreed: 0, disputed: 0, failed: 0, unverified: 0, inflight: 0, reissued: 0, rowsDone: 0 };
    for (const u of this.#units) if (u.status === 'done') {
      const p = this.#progress;
      p.done++;
      p.rowsDone += u.end - u.start;
      const outcome = doneUnits.get(u.index);
      if (outcome === 'agreed') p.agreed++;
      else if (outcome === 'resolved') p.disputed++;
      else if (outcome === 'unverified') p.unverified++;
    }
  }

  get jobId(): string {
    return this.#jobId;
  }

  progress(): Progress {
    return { ...this.#progress, inflight: this.#leases.size };
  }

  isFinished(): boolean {
    return this.#progress.done === this.#progress.total;
  }

  lease(id: string): Lease | undefined {
    return this.#leases.get(id);
  }

  /** Units that still need a worker (for announcements), lowest index first. */
  *openUnits(): Generator<{ unit: number; start: number; end: number; need: number }> {
    for (const u of this.#units) {
      if (u.status !== 'open') continue;
      const need = u.wanted - u.results.length - u.leases.size;
      if (need > 0) yield { unit: u.index, start: u.start, end: u.end, need };
    }
  }

  /** Open units needing a replica that none of `workers` may run (all already took part). */
  stalledUnits(workers: Iterable<string>): number[] {
    const ws = [...workers];
    const out: number[] = [];
    for (const o of this.openUnits()) {
      const u = this.#units[o.unit]!;
      if (!ws.some((w) => !u.participants.has(w))) out.push(o.unit);
    }
    return out;
  }

  /**
   * Lease a unit to `worker`: `prefer` if it is open and eligible, else the lowest open unit
   * this worker has not run. Null when there is nothing for it.
   */
  claim(worker: string, now: number, prefer?: number): Lease | null {
    const eligible = (u: UnitState | undefined): u is UnitState =>
      u !== undefined && u.status === 'open' && !u.participants.has(worker) && u.wanted - u.results.length - u.leases.size > 0;
    let unit = prefer !== undefined ? this.#units[prefer] : undefined;
    if (!eligible(unit)) {
      unit = undefined;
      for (const u of this.#units) {
        if (eligible(u)) {
          unit = u;
          break;
        }
      }
    }
    if (!unit) return null;
    const lease: Lease = {
      id: `${this.#jobId}/${unit.index}/${this.#opts.leaseTag}${(++leaseSeq).toString(36)}`,
      unit: unit.index,
      worker,
      start: unit.start,
      end: unit.end,
      issuedAt: now,
      deadline: now + this.#opts.leaseMs,
    };
    unit.participants.add(worker);
    unit.leases.set(lease.id, lease);
    this.#leases.set(lease.id, lease);
    return lease;
  }

  /**
   * Record a worker's commitment. Returns the leases whose results may now be revealed: all
   * outstanding replicas of the unit once every one of them has committed and the round is full.
   * @returns null when the lease is unknown or not this worker's (stale or forged).
   */
  commit(leaseId: string, worker: string, commitmentHex: string): Lease[] | null {
    const l = this.#leases.get(leaseId);
    if (!l || l.worker !== worker || l.commitment !== undefined) return null;
    l.commitment = commitmentHex;
    return this.#revealable(this.#units[l.unit]!);
  }

  #revealable(u: UnitState): Lease[] {
    if (u.status !== 'open') return [];
    const outstanding = [...u.leases.values()];
    if (u.results.length + outstanding.length < u.wanted) return [];
    if (!outstanding.every((x) => x.commitment !== undefined)) return [];
    const out = outstanding.filter((x) => !x.revealRequested);
    for (const x of out) x.revealRequested = true;
    return out;
  }

  /**
   * Accept a revealed result (already checked against the commitment by the caller).
   * Returns what happened to the unit, if it was decided.
   */
  reveal(leaseId: string, result: Result): { done?: UnitDone; failed?: UnitFailed; reopened?: boolean } {
    const l = this.#leases.get(leaseId);
    if (!l) return {};
    const u = this.#units[l.unit]!;
    this.#dropLease(l);
    if (u.status !== 'open') return {};
    u.results.push({ worker: l.worker, result });
    if (u.leases.size > 0 || u.results.length < u.wanted) return {};
    const outcome = decideUnit(u.results, this.#agree, { replicas: this.#opts.replicas, maxReplicas: this.#opts.maxReplicas });
    switch (outcome.status) {
      case 'agreed':
      case 'resolved':
      case 'unverified': {
        u.status = 'done';
        const p = this.#progress;
        p.done++;
        p.rowsDone += u.end - u.start;
        if (outcome.status === 'agreed') p.agreed++;
        else if (outcome.status === 'resolved') p.disputed++;
        else p.unverified++;
        const done: UnitDone = {
          unit: u.index,
          start: u.start,
          end: u.end,
          outcome,
          result: u.results[outcome.accepted]!.result,
          workers: u.results.map((r) => r.worker),
          disputed: u.disputed || outcome.status === 'resolved',
        };
        u.results = [];
        return { done };
      }
      case 'failed':
        u.status = 'failed';
        this.#progress.failed++;
        return {
          failed: {
            unit: u.index,
            reason: 'disagree',
            message: `results do not agree: the model may be nondeterministic under this policy (unit ${u.index}, rows ${u.start}-${u.end - 1}: ${u.results.length} results fell into ${outcome.classes.length} groups of sizes ${outcome.classes.join('/')}, no strict majority)`,
          },
        };
      case 'pending':
        u.disputed = true;
        u.wanted = u.results.length + outcome.needMore;
        return { reopened: true };
    }
  }

  /** A worker reports it could not run the unit. Fails the unit after maxUnitErrors distinct workers. */
  error(leaseId: string, worker: string, message: string): UnitFailed | null {
    const l = this.#leases.get(leaseId);
    if (!l || l.worker !== worker) return null;
    const u = this.#units[l.unit]!;
    this.#dropLease(l);
    u.errors.push(message);
    if (u.status === 'open' && u.errors.length >= this.#opts.maxUnitErrors) {
      u.status = 'failed';
      this.#progress.failed++;
      return { unit: u.index, reason: 'error', message: `unit ${u.index} failed on ${u.errors.length} workers: ${u.errors[0]}` };
    }
    return null;
  }

  /** Drop every lease of a worker that left; its units reopen. Returns the dropped leases. */
  workerGone(worker: string): Lease[] {
    const gone = [...this.#leases.values()].filter((l) => l.worker === worker);
    for (const l of gone) this.#reissue(l);
    return gone;
  }

  /** Drop leases past their deadline that never committed. Returns them. */
  expire(now: number): Lease[] {
    const late = [...this.#leases.values()].filter((l) => l.commitment === undefined && l.deadline <= now);
    for (const l of late) this.#reissue(l);
    return late;
  }

  /** A reveal could not be fetched (worker unreachable): drop that lease, reopen the unit. */
  revealFailed(leaseId: string): void {
    const l = this.#leases.get(leaseId);
    if (l) this.#reissue(l);
  }

  #reissue(l: Lease): void {
    this.#dropLease(l);
    const u = this.#units[l.unit]!;
    if (u.status === 'open') {
      u.reissued++;
      this.#progress.reissued++;
      // The other replicas' commitments stay: their reveal waits until a new replica commits.
    }
  }

  #dropLease(l: Lease): void {
    this.#leases.delete(l.id);
    this.#units[l.unit]!.leases.delete(l.id);
  }

  /** Workers that hold a lease right now, with their lease counts (backpressure). */
  inflightOf(worker: string): number {
    let n = 0;
    for (const l of this.#leases.values()) if (l.worker === worker && l.commitment === undefined) n++;
    return n;
  }
}

/** Split `rows` into consecutive [start, end) ranges of at most `unitRows` rows. */
export function splitRows(rows: number, unitRows: number): [number, number][] {
  if (!Number.isSafeInteger(rows) || rows < 0) throw new RangeError(`rows must be a non-negative integer, got ${rows}`);
  if (!Number.isSafeInteger(unitRows) || unitRows < 1) throw new RangeError(`unitRows must be a positive integer, got ${unitRows}`);
  const out: [number, number][] = [];
  for (let s = 0; s < rows; s += unitRows) out.push([s, Math.min(rows, s + unitRows)]);
  return out;
}
