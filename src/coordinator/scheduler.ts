/**
 * The per-job unit scheduler: a pure state machine (clock, randomness and the pool of
 * connected workers passed in, no I/O) that the coordinator drives from network events, and
 * that holds Proof of Drilling's defences against cheaters who agree with each other.
 *
 * Assignment — random replica sets. A claiming worker gets, in this order: a replica the
 * scheduler drew for it earlier (its reservations, oldest first); a replica still waiting for
 * a draw, decided by a draw among all eligible workers (the claimer wins it only by luck);
 * else the first replica of a fresh unit, whose other R − 1 replicas are then drawn at once.
 * Every draw is weighted by the workers' declared threads and excludes workers that already
 * took part in the unit, workers quarantined in the job, and (on a public coordinator) workers
 * behind the same IP address as a participant. So two identities that connect and claim
 * together are no more likely to share a unit than any other pair: who runs a unit with whom is
 * the coordinator's draw, not the order of claims. A drawn replica waits `reserveMs` for its
 * worker to claim it, then is drawn again elsewhere.
 *
 * Life of a unit:
 *   open ──leases──▶ every outstanding replica commits (commit–reveal: nobody's result is
 *        pulled before every replica of the round is bound to its own)
 *        ──reveals──▶ decideUnit over the results of non-quarantined workers:
 *          agreed / resolved  → done (the minority of a resolved unit is quarantined);
 *          pending            → more replicas drawn until a strict majority;
 *          failed (no majority within maxReplicas) → settled as failed;
 *          an accepted *error* (a strict majority of distinct workers reported the same
 *          error) → settled as errored.
 *   A worker's error report is one replica's result, like a tensor result.
 *
 * Spot-check audits (replicas 1, `audit` P > 0): a unit is run once; after its result is
 * committed it is chosen for an audit with probability P — a second replica drawn at random,
 * and the first result is revealed only once the auditor has committed. Agreement credits
 * both; disagreement grows the unit to a strict majority. An unaudited unit is accepted and
 * credited to its worker (`unaudited`); the forfeit on being caught later is the deterrent.
 *
 * Quarantine and re-verification. A worker found faulty in the job — in the minority of a
 * decided unit, or a hard fault the coordinator reports (a reveal that does not open its
 * commitment, outputs that do not match the model) — is quarantined: it gets no more units of
 * the job, its pending results are ignored, and every unit whose standing decision it took part
 * in is reopened and decided again from scratch without it. An honest worker that was in the
 * minority only because a faulty majority outvoted it is released when that unit's new decision
 * agrees with its result. Failed and errored units are tentative until the job ends: the job
 * settles only when every unit is settled and no decision rests on a quarantined worker; it
 * then fails if any unit failed or errored.
 */
import type { AgreeFn, UnitOutcome } from '../pod/quorum.ts';
import { decideUnit } from '../pod/quorum.ts';
import type { HostTensor } from '../util/tensor.ts';

export type Result = Record<string, HostTensor>;

/** One replica's answer: output tensors, or the error it reported running the unit. */
export type Outcome = { kind: 'ok'; result: Result } | { kind: 'error'; message: string };

/** A worker the scheduler may draw. */
export interface Candidate {
  peer: string;
  /** Draw weight (declared threads, capped by the coordinator). */
  weight: number;
  /** Network group (IP address) — two members of one group never share a unit; null = exempt. */
  group: string | null;
}

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

type UnitStatus = 'open' | 'done' | 'failed' | 'errored';

interface UnitState {
  index: number;
  start: number;
  end: number;
  status: UnitStatus;
  /** Results wanted for the current decision. */
  wanted: number;
  /** Replicas of this round: 1 for an unaudited spot-check unit, 2 once audited, else R. */
  roundReplicas: number;
  /** Spot-check: null until the first result is committed and the audit coin is tossed. */
  audited: boolean | null;
  /** Replicas needed but not yet drawn (no eligible worker at the time). */
  undrawn: number;
  leases: Map<string, Lease>;
  /** Drawn replicas awaiting their worker's claim: worker → drawn at (ms). */
  reserved: Map<string, number>;
  /** Results of this round set, in arrival order (non-quarantined workers only). */
  results: { worker: string; outcome: Outcome }[];
  /** Workers that leased, were drawn for, or ran the unit since it was (re)opened. */
  participants: Set<string>;
  /** Workers whose results the standing decision rests on (majority and minority). */
  decidedBy: string[];
  disputed: boolean;
  reissued: number;
  reopens: number;
  /** Workers ever credited for this unit (a re-decision credits only new ones). */
  credited: Set<string>;
  /** Results of workers quarantined for being in this unit's minority (to release them). */
  minority: Map<string, Outcome>;
  /** Why a failed/errored unit failed (tentative until the job settles). */
  failure?: string;
  /** The worker that took the round's first replica (the one a spot check audits). */
  primary?: string;
}

/** A resumed job's scheduler state (from the coordinator's store). */
export interface ResumedState {
  units: ReadonlyMap<number, { status: string; workers: string[]; credited: string[] }>;
  quarantined: ReadonlyMap<string, string[]>;
}

export interface SchedulerOptions {
  replicas: number;
  maxReplicas: number;
  /** How long a worker has to commit a result after leasing a unit. */
  leaseMs: number;
  /** Tag in every lease id (random per coordinator start), so a lease issued before a restart never matches one issued after it. */
  leaseTag?: string;
  /** Spot-check probability P in [0, 1] (replicas 1 only). */
  audit?: number;
  /** Uniform random numbers in [0, 1) for draws and audit coins: seeded in tests, crypto-random in the grid. */
  random?: () => number;
  /** The workers that may be drawn now (connected, registered). */
  pool?: () => readonly Candidate[];
  /** A drawn replica waits this long for its worker to claim it before it is drawn again. */
  reserveMs?: number;
  /** A unit reopened more often than this (a quarantine cascade that does not settle) fails. */
  maxReopens?: number;
  /** Smaller units at the end of the job (`planUnits`): a job whose unit size was not chosen by its partner. */
  taper?: boolean;
}

/** What a decided unit means for output and credit (the coordinator writes and signs it). */
export interface UnitDone {
  unit: number;
  start: number;
  end: number;
  outcome: UnitOutcome;
  /** The accepted result (agreed, resolved, unaudited or unverified). */
  result: Result;
  /** Workers whose results were compared (majority and minority). */
  workers: string[];
  /** Workers the decision rests on (the accepted class). */
  decidedBy: string[];
  /** Workers credited by this decision who were not credited for the unit before. */
  newlyCredited: string[];
  /** Every worker credited for the unit so far (this decision and earlier ones). */
  allCredited: string[];
  disputed: boolean;
  /** Spot-check mode: the unit was audited by a second worker. */
  audited: boolean;
  /** This is a re-decision of a reopened unit. */
  redecided: boolean;
  /** The worker that took the round's first replica (spot checks: the one audited). */
  primary: string | null;
}

/** What happened inside the scheduler; the coordinator drains these after each call. */
export type SchedulerEvent =
  | { kind: 'done'; done: UnitDone }
  | { kind: 'disputed'; unit: number }
  | { kind: 'reopened'; unit: number; because: string }
  | { kind: 'quarantined'; worker: string; reason: string; reopened: number[] }
  | { kind: 'released'; worker: string; unit: number }
  | { kind: 'settled-failure'; unit: number; message: string }
  /** A committed result to pull now (its round became complete inside a quarantine). */
  | { kind: 'reveal'; lease: Lease }
  /** Spot checks: the audit coin was tossed for a unit's first result, committed by `worker`. */
  | { kind: 'audit'; unit: number; worker: string; audited: boolean };

export interface Progress {
  total: number;
  done: number;
  agreed: number;
  disputed: number;
  failed: number;
  unverified: number;
  /** Spot-check: units accepted without a second worker. */
  unaudited: number;
  /** Spot-check: units re-run by a second worker. */
  audited: number;
  inflight: number;
  reissued: number;
  reopened: number;
  rowsDone: number;
  /** Rows of done units that no second worker checked (unaudited or unverified). */
  rowsUnchecked: number;
  quarantined: number;
}

let leaseSeq = 0;

/** Reasons a hard fault (not a minority vote) quarantines a worker; never released. */
export type HardFault = 'reveal-mismatch' | 'reveal-refused' | 'bad-outputs';

export const defaultSchedulerOptions = {
  /**
   * 30 s: a drawn worker claims its replica as soon as it has a free slot (units are ~0.4 s
   * by default, a worker queues two per thread), so a replica still unclaimed after 30 s sits
   * with a worker that is gone, stuck or refusing work; another worker is drawn.
   */
  reserveMs: 30_000,
  /** 8 reopenings: an honest grid never reopens a unit; each reopening needs a new quarantine. */
  maxReopens: 8,
} as const;

export class JobScheduler {
  readonly #units: UnitState[];
  readonly #leases = new Map<string, Lease>();
  readonly #agree: AgreeFn<Result>;
  readonly #opts: Required<Omit<SchedulerOptions, 'audit'>> & { audit: number };
  readonly #jobId: string;
  /** Quarantined workers → why (hard faults, and `minority:<unit>` marks). */
  readonly #quarantine = new Map<string, Set<string>>();
  /** Units whose standing decision each worker took part in. */
  readonly #decidedIn = new Map<string, Set<number>>();
  /** Per worker, units drawn for it, oldest first. */
  readonly #queue = new Map<string, number[]>();
  #events: SchedulerEvent[] = [];
  #reopenedTotal = 0;
  #reissuedTotal = 0;

  /**
   * @param resumed a resumed job's state from the store: units already finished (outcome, the
   *   workers their decision rests on, who was credited) and the workers quarantined, so
   *   progress, re-verification and credit stay right across a restart.
   */
  constructor(jobId: string, rows: number, unitRows: number, agree: AgreeFn<Result>, opts: SchedulerOptions, resumed: ResumedState = { units: new Map(), quarantined: new Map() }) {
    if (!Number.isInteger(opts.replicas) || opts.replicas < 1) throw new RangeError(`replicas must be an integer ≥ 1, got ${opts.replicas}`);
    const audit = opts.audit ?? 0;
    if (!(audit >= 0 && audit <= 1)) throw new RangeError(`audit must be in [0, 1], got ${audit}`);
    if (audit > 0 && opts.replicas !== 1) throw new RangeError(`audit is for replicas 1 (spot checks), got replicas ${opts.replicas}`);
    this.#jobId = jobId;
    this.#agree = agree;
    this.#opts = {
      leaseTag: '',
      random: Math.random,
      pool: () => [],
      ...defaultSchedulerOptions,
      ...opts,
      taper: opts.taper === true,
      audit,
    };
    this.#units = planUnits(rows, unitRows, this.#opts.taper).map(([start, end], index) => ({
      index,
      start,
      end,
      status: 'open' as UnitStatus,
      wanted: opts.replicas,
      roundReplicas: opts.replicas,
      audited: null,
      undrawn: 0,
      leases: new Map(),
      reserved: new Map(),
      results: [],
      participants: new Set(),
      decidedBy: [],
      disputed: false,
      reissued: 0,
      reopens: 0,
      credited: new Set(),
      minority: new Map(),
    }));
    this.#counts.total = this.#units.length;
    for (const [w, reasons] of resumed.quarantined) this.#quarantine.set(w, new Set(reasons));
    for (const [i, r] of resumed.units) {
      const u = this.#units[i];
      if (!u) continue;
      for (const w of r.credited) u.credited.add(w);
      this.#setDecidedBy(u, r.workers);
      this.#setStatus(u, 'done', r.status);
    }
  }

  /** Progress counters, kept as units change state (progress() is called per event). */
  readonly #counts = { total: 0, done: 0, agreed: 0, disputed: 0, failed: 0, unverified: 0, unaudited: 0, audited: 0, rowsDone: 0, rowsUnchecked: 0 };
  /** Outcome of each done unit (agreed / resolved / unaudited / unverified), for progress. */
  readonly #doneOutcome = new Map<number, string>();

  /** Move `u` to `status` (with its PoD outcome when done), keeping the counters exact. */
  #setStatus(u: UnitState, status: UnitStatus, outcome?: string): void {
    const c = this.#counts;
    const rows = u.end - u.start;
    const bump = (sign: 1 | -1, st: UnitStatus, o: string | undefined): void => {
      if (st === 'failed' || st === 'errored') c.failed += sign;
      if (st !== 'done') return;
      c.done += sign;
      c.rowsDone += sign * rows;
      if (o === 'agreed') c.agreed += sign;
      else if (o === 'resolved') c.disputed += sign;
      else if (o === 'unaudited') c.unaudited += sign;
      else if (o === 'unverified') c.unverified += sign;
      if (o === 'unaudited' || o === 'unverified') c.rowsUnchecked += sign * rows;
    };
    bump(-1, u.status, this.#doneOutcome.get(u.index));
    u.status = status;
    if (status === 'done' && outcome !== undefined) this.#doneOutcome.set(u.index, outcome);
    else this.#doneOutcome.delete(u.index);
    bump(1, status, this.#doneOutcome.get(u.index));
    if (status === 'open' && this.#isFresh(u)) this.#freshFrom = Math.min(this.#freshFrom, u.index);
  }

  /** No unit below this index is fresh (the search for a fresh unit starts here). */
  #freshFrom = 0;

  get jobId(): string {
    return this.#jobId;
  }

  /** Events since the last drain, in order. */
  drainEvents(): SchedulerEvent[] {
    const e = this.#events;
    this.#events = [];
    return e;
  }

  progress(): Progress {
    return { ...this.#counts, inflight: this.#leases.size, reissued: this.#reissuedTotal, reopened: this.#reopenedTotal, quarantined: this.#quarantine.size };
  }

  /** Every unit done: the job's outputs are complete. */
  isFinished(): boolean {
    return this.#counts.done === this.#counts.total;
  }

  /**
   * Every unit is settled (done, failed or errored) and no decision rests on a quarantined
   * worker (quarantine reopens such units at once). Returns the failure of the first unit
   * that failed, or null when the job is done.
   */
  settled(): { failed: string | null } | null {
    let failure: string | null = null;
    for (const u of this.#units) {
      if (u.status === 'open') return null;
      if (u.status !== 'done' && failure === null) failure = u.failure ?? `unit ${u.index} failed`;
    }
    return { failed: failure };
  }

  lease(id: string): Lease | undefined {
    return this.#leases.get(id);
  }

  isQuarantined(worker: string): boolean {
    return this.#quarantine.has(worker);
  }

  /** Quarantined workers with their reasons. */
  quarantined(): Map<string, string[]> {
    return new Map([...this.#quarantine].map(([w, r]) => [w, [...r].sort()]));
  }

  /** What each open unit is waiting for (diagnostics: logs, API, tests). */
  openUnitStates(): { unit: number; wanted: number; results: string[]; leases: { worker: string; committed: boolean; revealRequested: boolean }[]; reserved: string[]; undrawn: number; participants: string[]; disputed: boolean }[] {
    return this.#units.filter((u) => u.status === 'open' && !this.#isFresh(u)).map((u) => ({
      unit: u.index,
      wanted: u.wanted,
      results: u.results.map((r) => r.worker),
      leases: [...u.leases.values()].map((l) => ({ worker: l.worker, committed: l.commitment !== undefined, revealRequested: l.revealRequested === true })),
      reserved: [...u.reserved.keys()],
      undrawn: u.undrawn,
      participants: [...u.participants],
      disputed: u.disputed,
    }));
  }

  /** Units that still need a worker (for announcements), lowest index first. */
  *openUnits(): Generator<{ unit: number; start: number; end: number; need: number }> {
    for (const u of this.#units) {
      if (u.status !== 'open') continue;
      const need = u.undrawn + u.reserved.size + (this.#isFresh(u) ? u.wanted : 0);
      if (need > 0) yield { unit: u.index, start: u.start, end: u.end, need };
    }
  }

  /**
   * Open units needing a replica that no connected worker may run (all took part, are
   * quarantined, or share an address with one that did) — reported only when the job can make no
   * other progress: while any other unit is leased, drawn or fresh, a quarantine there may still
   * drop a participant here and unblock it.
   */
  stalledUnits(): number[] {
    const out: number[] = [];
    for (const u of this.#units) {
      if (u.status !== 'open') continue;
      if (u.undrawn > 0 && this.#eligible(u).length === 0) {
        out.push(u.index);
        continue;
      }
      if (u.leases.size > 0 || u.reserved.size > 0 || u.undrawn > 0 || this.#isFresh(u)) return [];
    }
    return out;
  }

  /**
   * Lease a unit to `worker`: a replica drawn for it, else a replica awaiting a draw that the
   * draw gives it, else the first replica of a fresh unit (its other replicas then drawn).
   * With `reservedOnly`, only a replica already drawn for it. Null when there is nothing for it.
   */
  claim(worker: string, now: number, opts: { reservedOnly?: boolean } = {}): Lease | null {
    if (this.#quarantine.has(worker)) return null;
    // 1. Replicas drawn for this worker, oldest first.
    const q = this.#queue.get(worker);
    while (q && q.length > 0) {
      const u = this.#units[q.shift()!]!;
      if (u.status === 'open' && u.reserved.has(worker)) {
        u.reserved.delete(worker);
        return this.#newLease(u, worker, now);
      }
    }
    if (opts.reservedOnly) return null;
    // 2. Replicas awaiting a draw: draw now (the claimer is one of the candidates).
    for (const u of this.#units) {
      if (u.status !== 'open' || u.undrawn === 0) continue;
      if (u.participants.has(worker)) continue;
      this.#drawFor(u, now);
      if (u.reserved.has(worker)) {
        u.reserved.delete(worker);
        this.#dequeue(worker, u.index);
        return this.#newLease(u, worker, now);
      }
    }
    // 3. The first replica of a fresh unit (any non-quarantined worker may take it: it has no
    // participants yet); its other replicas are drawn now.
    while (this.#freshFrom < this.#units.length) {
      const u = this.#units[this.#freshFrom]!;
      if (u.status !== 'open' || !this.#isFresh(u)) {
        this.#freshFrom++;
        continue;
      }
      const lease = this.#newLease(u, worker, now);
      u.primary = worker;
      u.undrawn += u.wanted - 1;
      this.#drawFor(u, now);
      return lease;
    }
    return null;
  }

  /**
   * Record a worker's commitment. Returns the leases whose results may now be revealed: all
   * outstanding replicas of the unit once every one of them has committed and the round is
   * full. Null when the lease is unknown or not this worker's (stale or forged).
   */
  commit(leaseId: string, worker: string, commitmentHex: string, now: number = 0): Lease[] | null {
    const l = this.#leases.get(leaseId);
    if (!l || l.worker !== worker || l.commitment !== undefined) return null;
    l.commitment = commitmentHex;
    const u = this.#units[l.unit]!;
    if (this.#opts.audit > 0 && u.audited === null) {
      // The audit coin is tossed only now that the first result is bound: the worker could not
      // know, while computing, whether a second worker would check it.
      u.audited = this.#opts.random() < this.#opts.audit;
      this.#events.push({ kind: 'audit', unit: u.index, worker, audited: u.audited });
      if (u.audited) {
        this.#counts.audited++;
        u.roundReplicas = 2;
        u.wanted = Math.max(u.wanted, 2);
        u.undrawn = Math.max(0, u.wanted - u.results.length - u.leases.size - u.reserved.size);
        this.#drawFor(u, now);
      }
    }
    return this.#revealable(u);
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
   * A revealed result (already checked against the commitment and the model's outputs by the
   * caller). Decides the unit when its round is complete; see drainEvents() for what happened.
   * Returns the leases whose results may now be revealed (none, usually).
   */
  reveal(leaseId: string, result: Result, now: number = 0): Lease[] {
    return this.#addResult(leaseId, { kind: 'ok', result }, now);
  }

  /**
   * A worker reports it could not run the unit: that is its result for the unit. Null when the
   * lease is unknown or not this worker's.
   */
  error(leaseId: string, worker: string, message: string, now: number = 0): Lease[] | null {
    const l = this.#leases.get(leaseId);
    if (!l || l.worker !== worker) return null;
    // An error ends the worker's part in the round, like a commitment followed by its reveal.
    l.commitment = 'error';
    l.revealRequested = true;
    const first = message.split('\n', 1)[0]!.slice(0, 500);
    return this.#addResult(leaseId, { kind: 'error', message: first }, now);
  }

  #addResult(leaseId: string, outcome: Outcome, now: number): Lease[] {
    const l = this.#leases.get(leaseId);
    if (!l) return [];
    const u = this.#units[l.unit]!;
    this.#dropLease(l);
    if (u.status !== 'open' || this.#quarantine.has(l.worker)) return [];
    u.results.push({ worker: l.worker, outcome });
    const more = this.#revealable(u);
    if (u.leases.size > 0 || u.results.length < u.wanted) return more;
    this.#decide(u, now);
    return more;
  }

  #agreeOutcomes = (a: Outcome, b: Outcome): boolean => {
    if (a.kind === 'error' || b.kind === 'error') return a.kind === 'error' && b.kind === 'error' && a.message === b.message;
    return this.#agree(a.result, b.result);
  };

  #decide(u: UnitState, now: number): void {
    const replicas = u.roundReplicas;
    const spotUnaudited = this.#opts.audit > 0 && u.audited === false;
    let outcome = decideUnit(u.results.map((r) => ({ worker: r.worker, result: r.outcome })), this.#agreeOutcomes, { replicas, maxReplicas: this.#opts.maxReplicas });
    // A dispute is settled by a jury, not by one tie-breaker: with colluders in the pool, a
    // single drawn tie-breaker is one of them often enough to outvote (and quarantine) honest
    // workers. So a disputed unit grows to 2·R + 1 results (5 for R = 2 and for an audited
    // spot check), and is resolved with fewer only when no eligible worker is left to draw.
    const jury = 2 * replicas + 1;
    if (outcome.status === 'resolved' && u.results.length < jury) {
      const more = Math.min(jury - u.results.length, this.#eligible(u).length);
      if (more > 0) outcome = { ...outcome, status: 'pending', credited: [], faulty: [], accepted: -1, needMore: more };
    }
    switch (outcome.status) {
      case 'pending':
        u.disputed = true;
        u.wanted = u.results.length + outcome.needMore;
        u.undrawn += outcome.needMore;
        this.#events.push({ kind: 'disputed', unit: u.index });
        this.#drawFor(u, now);
        return;
      case 'failed': {
        this.#settleFailure(u, 'failed', `results do not agree: the model may be nondeterministic under this policy (unit ${u.index}, rows ${u.start}-${u.end - 1}: ${u.results.length} results fell into ${outcome.classes.length} groups of sizes ${outcome.classes.join('/')}, no strict majority)`, u.results.map((r) => r.worker));
        return;
      }
      case 'agreed':
      case 'resolved':
      case 'unverified': {
        const accepted = u.results[outcome.accepted]!.outcome;
        // Spot-check units accepted without an audit are credited to their one worker.
        const status = spotUnaudited ? 'unaudited' : outcome.status;
        const credited = status === 'unaudited' ? [u.results[0]!.worker] : outcome.credited;
        const decided: UnitOutcome = { ...outcome, status: status as UnitOutcome['status'], credited };
        // The decision rests on the accepted class: if one of them turns out faulty, it is redone.
        const faultySet = new Set(outcome.faulty);
        const results = u.results;
        const majority = results.map((r) => r.worker).filter((w) => !faultySet.has(w));
        if (accepted.kind === 'error') {
          this.#settleFailure(u, 'errored', `unit ${u.index} failed on ${majority.length} workers: ${accepted.message}`, majority);
        } else {
          this.#setDecidedBy(u, majority);
          this.#setStatus(u, 'done', status);
          const newlyCredited = credited.filter((w) => !u.credited.has(w));
          for (const w of credited) u.credited.add(w);
          this.#events.push({
            kind: 'done',
            done: {
              unit: u.index, start: u.start, end: u.end, outcome: decided, result: accepted.result,
              workers: results.map((r) => r.worker), decidedBy: majority, newlyCredited, allCredited: [...u.credited].sort(), disputed: u.disputed || outcome.status === 'resolved',
              audited: u.audited === true, redecided: u.reopens > 0, primary: u.primary ?? null,
            },
          });
        }
        // Workers quarantined for this unit's minority whose result agrees with the new decision go free.
        for (const [w, o] of u.minority) {
          if (!this.#agreeOutcomes(o, accepted)) continue;
          u.minority.delete(w);
          this.#unmark(w, `minority:${u.index}`, u.index);
        }
        const faulty = outcome.faulty;
        u.results = [];
        for (const w of faulty) {
          const r = results.find((x) => x.worker === w)!;
          u.minority.set(w, r.outcome);
          this.quarantine(w, `minority:${u.index}`, now);
        }
        return;
      }
    }
  }

  #settleFailure(u: UnitState, status: 'failed' | 'errored', message: string, decidedBy: string[]): void {
    this.#setStatus(u, status);
    u.failure = message;
    this.#setDecidedBy(u, decidedBy);
    u.results = [];
    this.#events.push({ kind: 'settled-failure', unit: u.index, message });
  }

  #setDecidedBy(u: UnitState, workers: string[]): void {
    for (const w of u.decidedBy) this.#decidedIn.get(w)?.delete(u.index);
    u.decidedBy = workers;
    for (const w of workers) {
      let s = this.#decidedIn.get(w);
      if (!s) this.#decidedIn.set(w, (s = new Set()));
      s.add(u.index);
    }
  }

  /**
   * Quarantine `worker` in this job for `reason` (a HardFault, or `minority:<unit>`): no more
   * units, its leases, reservations and pending results dropped, and every unit whose standing
   * decision it took part in reopened. A further reason for an already quarantined worker is
   * recorded (it must be cleared too before the worker is released).
   */
  quarantine(worker: string, reason: string, now: number = 0): void {
    const marks = this.#quarantine.get(worker);
    if (marks) {
      marks.add(reason);
      return;
    }
    this.#quarantine.set(worker, new Set([reason]));
    // Its leases, drawn replicas and results in rounds not yet decided no longer count: each
    // such round is judged again on the other workers' results (a dispute's jury shrinks to
    // what is left), and replicas still missing are drawn.
    const touched = new Set<UnitState>();
    for (const l of [...this.#leases.values()]) {
      if (l.worker !== worker) continue;
      this.#dropLease(l);
      touched.add(this.#units[l.unit]!);
    }
    for (const u of this.#units) {
      if (u.reserved.delete(worker)) touched.add(u);
      if (u.status === 'open' && u.results.some((r) => r.worker === worker)) {
        u.results = u.results.filter((r) => r.worker !== worker);
        touched.add(u);
      }
    }
    this.#queue.delete(worker);
    for (const u of touched) {
      if (u.status !== 'open') continue;
      const outstanding = u.leases.size + u.reserved.size;
      u.wanted = Math.max(u.roundReplicas, u.results.length + outstanding);
      u.undrawn = u.wanted - u.results.length - outstanding;
      if (outstanding === 0 && u.undrawn === 0 && u.results.length > 0) this.#decide(u, now);
      else if (u.undrawn === 0) for (const l of this.#revealable(u)) this.#events.push({ kind: 'reveal', lease: l });
      else if (outstanding + u.results.length === 0) {
        u.undrawn = 0;
        u.participants.delete(worker);
        this.#freshFrom = Math.min(this.#freshFrom, u.index); // nobody else started it: fresh again
        if (!this.#isFresh(u)) {
          u.undrawn = u.wanted;
          this.#drawFor(u, now);
        }
      } else this.#drawFor(u, now);
    }
    const reopened: number[] = [];
    for (const i of [...(this.#decidedIn.get(worker) ?? [])]) {
      const u = this.#units[i]!;
      if (u.status === 'open') continue;
      this.#reopen(u, `worker ${worker} quarantined (${reason})`);
      reopened.push(i);
    }
    this.#events.push({ kind: 'quarantined', worker, reason, reopened });
  }

  #unmark(worker: string, reason: string, unit: number): void {
    const marks = this.#quarantine.get(worker);
    if (!marks?.delete(reason)) return;
    if (marks.size > 0) return;
    this.#quarantine.delete(worker);
    this.#events.push({ kind: 'released', worker, unit });
  }

  /** Reopen a settled unit: decided again from scratch by freshly drawn, non-quarantined workers. */
  #reopen(u: UnitState, because: string): void {
    u.reopens++;
    this.#reopenedTotal++;
    this.#setDecidedBy(u, []);
    if (u.reopens > this.#opts.maxReopens) {
      this.#setStatus(u, 'failed');
      u.failure = `unit ${u.index} was reopened ${u.reopens} times (workers kept being found faulty): Proof of Drilling could not settle it; start more honest workers`;
      this.#events.push({ kind: 'settled-failure', unit: u.index, message: u.failure });
      return;
    }
    u.failure = undefined;
    u.primary = undefined;
    u.results = [];
    u.participants = new Set();
    u.roundReplicas = this.#opts.replicas;
    u.wanted = this.#opts.replicas;
    u.audited = null;
    u.disputed = false;
    u.undrawn = 0;
    this.#setStatus(u, 'open');
    this.#events.push({ kind: 'reopened', unit: u.index, because });
  }

  /** A replica of `u` went away (lease or reservation dropped): draw a replacement. */
  #replace(u: UnitState, now: number): void {
    if (u.status !== 'open') return;
    const have = u.results.length + u.leases.size + u.reserved.size + u.undrawn;
    if (this.#isFresh(u) && have === 0) {
      this.#freshFrom = Math.min(this.#freshFrom, u.index); // nobody started it: it is simply fresh again
      return;
    }
    if (have < u.wanted) {
      u.undrawn += u.wanted - have;
      this.#drawFor(u, now);
    }
  }

  /** A fresh unit: open, nothing leased, drawn or returned in this round set. */
  #isFresh(u: UnitState): boolean {
    return u.results.length === 0 && u.leases.size === 0 && u.reserved.size === 0 && u.undrawn === 0 && u.participants.size === 0;
  }

  #groupsOf(u: UnitState): Set<string> {
    const groups = new Set<string>();
    const byPeer = new Map(this.#opts.pool().map((c) => [c.peer, c.group]));
    for (const p of u.participants) {
      const g = byPeer.get(p);
      if (g) groups.add(g);
    }
    return groups;
  }

  #eligible(u: UnitState): Candidate[] {
    const groups = this.#groupsOf(u);
    return this.#opts.pool().filter((c) => c.weight > 0 && !u.participants.has(c.peer) && !this.#quarantine.has(c.peer) && (c.group === null || !groups.has(c.group)));
  }

  /** Draw `u.undrawn` replicas at random (weighted, without replacement) among eligible workers. */
  #drawFor(u: UnitState, now: number): void {
    while (u.undrawn > 0) {
      const pool = this.#eligible(u);
      if (pool.length === 0) return;
      let total = 0;
      for (const c of pool) total += c.weight;
      let x = this.#opts.random() * total;
      let pick = pool[pool.length - 1]!;
      for (const c of pool) {
        x -= c.weight;
        if (x < 0) {
          pick = c;
          break;
        }
      }
      u.undrawn--;
      u.participants.add(pick.peer);
      u.reserved.set(pick.peer, now);
      let q = this.#queue.get(pick.peer);
      if (!q) this.#queue.set(pick.peer, (q = []));
      q.push(u.index);
    }
  }

  #dequeue(worker: string, unit: number): void {
    const q = this.#queue.get(worker);
    if (!q) return;
    const i = q.indexOf(unit);
    if (i >= 0) q.splice(i, 1);
  }

  #newLease(u: UnitState, worker: string, now: number): Lease {
    const lease: Lease = {
      id: `${this.#jobId}/${u.index}/${this.#opts.leaseTag}${(++leaseSeq).toString(36)}`,
      unit: u.index,
      worker,
      start: u.start,
      end: u.end,
      issuedAt: now,
      deadline: now + this.#opts.leaseMs,
    };
    u.participants.add(worker);
    u.leases.set(lease.id, lease);
    this.#leases.set(lease.id, lease);
    return lease;
  }

  /** Drop every lease and reservation of a worker that left; replacements are drawn. Returns the dropped leases. */
  workerGone(worker: string, now: number = 0): Lease[] {
    const gone = [...this.#leases.values()].filter((l) => l.worker === worker);
    for (const l of gone) this.#reissue(l, now);
    for (const u of this.#units) if (u.reserved.delete(worker)) this.#replace(u, now);
    this.#queue.delete(worker);
    return gone;
  }

  /**
   * Drop leases past their deadline that never committed, and reservations their worker did
   * not claim within reserveMs; replacements are drawn. Also retries draws that found no
   * eligible worker earlier (workers may have joined). Returns the expired leases.
   */
  expire(now: number): Lease[] {
    const late = [...this.#leases.values()].filter((l) => l.commitment === undefined && l.deadline <= now);
    for (const l of late) this.#reissue(l, now);
    for (const u of this.#units) {
      if (u.status !== 'open') continue;
      for (const [w, at] of [...u.reserved]) {
        if (now - at < this.#opts.reserveMs) continue;
        u.reserved.delete(w);
        // It gave no result, so it may be drawn again (in a small grid it may be the only one left).
        u.participants.delete(w);
        this.#dequeue(w, u.index);
        u.reissued++;
        this.#reissuedTotal++;
        this.#replace(u, now);
      }
      if (u.undrawn > 0) this.#drawFor(u, now);
    }
    return late;
  }

  /** A reveal could not be fetched (worker unreachable): drop that lease, draw a replacement. */
  revealFailed(leaseId: string, now: number = 0): void {
    const l = this.#leases.get(leaseId);
    if (l) this.#reissue(l, now);
  }

  #reissue(l: Lease, now: number): void {
    this.#dropLease(l);
    const u = this.#units[l.unit]!;
    if (u.status !== 'open') return;
    // A worker whose lease lapsed without a result did not take part: it may be drawn again.
    if (!u.results.some((r) => r.worker === l.worker)) u.participants.delete(l.worker);
    u.reissued++;
    this.#reissuedTotal++;
    // The other replicas' commitments stay: their reveal waits until the new replica commits.
    this.#replace(u, now);
  }

  #dropLease(l: Lease): void {
    this.#leases.delete(l.id);
    this.#units[l.unit]!.leases.delete(l.id);
  }

  /** Un-committed leases a worker holds right now (backpressure). */
  inflightOf(worker: string): number {
    let n = 0;
    for (const l of this.#leases.values()) if (l.worker === worker && l.commitment === undefined) n++;
    return n;
  }
}

/**
 * The units of a job: [start, end) row ranges of `unitRows` rows, and with `taper` (a job whose
 * unit size the coordinator chose) the last 2 · unitRows rows in smaller units — two halves, then
 * four quarters — so the job's last unit leaves the other threads idle for a quarter of a unit
 * instead of a whole one (docs/BENCHMARKS.md). At most 4 units more than `splitRows`; jobs of
 * fewer than 8 units, or units of fewer than 4 rows, are not tapered. Deterministic in its
 * arguments: a job resumed after a restart gets the same units.
 */
export function planUnits(rows: number, unitRows: number, taper: boolean): [number, number][] {
  if (!taper || unitRows < TAPER_MIN_ROWS || rows < TAPER_MIN_UNITS * unitRows) return splitRows(rows, unitRows);
  const tail = rows - 2 * unitRows;
  const out = splitRows(tail, unitRows);
  let prev = tail;
  for (const f of TAPER_BOUNDS) {
    const end = tail + Math.round(f * unitRows);
    if (end > prev) out.push([prev, end]);
    prev = end;
  }
  return out;
}
/** Cumulative ends of the tapered tail, in units of unitRows after rows − 2 · unitRows: ½, ½, ¼ × 4. */
const TAPER_BOUNDS = [0.5, 1, 1.25, 1.5, 1.75, 2];
const TAPER_MIN_UNITS = 8;
const TAPER_MIN_ROWS = 4;

/** Split `rows` into consecutive [start, end) ranges of at most `unitRows` rows. */
export function splitRows(rows: number, unitRows: number): [number, number][] {
  if (!Number.isSafeInteger(rows) || rows < 0) throw new RangeError(`rows must be a non-negative integer, got ${rows}`);
  if (!Number.isSafeInteger(unitRows) || unitRows < 1) throw new RangeError(`unitRows must be a positive integer, got ${unitRows}`);
  const out: [number, number][] = [];
  for (let s = 0; s < rows; s += unitRows) out.push([s, Math.min(rows, s + unitRows)]);
  return out;
}
