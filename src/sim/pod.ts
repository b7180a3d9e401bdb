/**
 * Proof-of-Drilling rounds for the simulator, driven through the project's real quorum
 * (`decideUnit`), comparison policy (`policyAgree` → `tensorsAgree`) and credit ledger
 * (`CreditLedger`), with the grid's defences against cheaters who agree with each other
 * (random replica sets, per-job quarantine, re-verification, forfeit), as the coordinator's
 * scheduler (src/coordinator/scheduler.ts) applies them. Pure apart from the RNG and ledger
 * passed in.
 *
 * Each work unit has a synthetic "true" result: `outputSize` float32 values ~ N(0, 1).
 * What a trainer returns:
 *  - honest (also flaky and Sybil identities): the truth rounded the way its hardware class
 *    rounds: every element's float32 bit pattern moved up by δ ULPs, δ uniform on the integers
 *    [0, noiseUlp], drawn per (unit, class, element) from a stateless hash — so trainers of one
 *    class return bit-identical results (same kernels) and two classes differ by ≤ noiseUlp ULPs;
 *  - lazy: fresh N(0, 1) garbage (never computed);
 *  - cheater: with probability cheatRate, truth + N(0, 1) noise (off by O(1)), else honest;
 *  - colluder: its group falsifies the same units (decided by a hash of unit and group, with
 *    probability cheatRate) with the same wrong vector (truth + a hash-derived N(0, 1) offset),
 *    so colluders in one unit agree with each other;
 *  - flaky: misses the unit's deadline with probability missRate; the coordinator then
 *    assigns the unit to another trainer (a missed deadline is not an execution).
 *
 * Random replica sets: every replica of a unit is drawn at random, in proportion to hashrate,
 * among the eligible trainers (not already in the unit, not quarantined in the job), never one
 * trainer twice for a unit. Who shares a unit with whom is the draw's, so colluders meet in a
 * unit only as often as chance puts them together (share² for two replicas).
 *
 * Jobs: units belong to jobs of `jobUnits` units, issued one after another. With `quarantine`
 * on, a trainer found faulty in a job (in the minority of a decided unit — in spot-check mode,
 * an audit disagreement whose tie-breakers go against it) is quarantined for the rest of the
 * job: it gets no more units of the job, its credit for the job is forfeited (if `forfeit`),
 * and every unit of the job whose standing decision rests on it (it was in the accepted class,
 * or the unit failed with it) is reopened and decided again from scratch by freshly drawn
 * trainers. A trainer already credited for a unit is not credited again when the unit is
 * re-decided. A trainer quarantined for being in a unit's minority is released when that
 * unit's new decision agrees with its result (an honest trainer a faulty majority outvoted),
 * and its forfeited credit is restored. A unit reopened more than MAX_REOPENS times fails.
 * Units are re-run at once (the simulator runs one unit at a time), so a job is settled when
 * its last unit has been issued and every reopening has been re-run; its units' final
 * decisions are then counted (accepted, failed, wrong results accepted).
 *
 * Modes:
 *  - replicate: R first-round replicas, then tie-breakers as `decideUnit` asks (`needMore`),
 *    until agreed / resolved / failed. R = 1 accepts unverified and credits nobody, as the grid.
 *  - spot-check (the grid's `--replicas 1 --audit P`; PoSP / BOINC adaptive replication): one
 *    trainer runs the unit; with probability p_eff, tossed after its result is in, a second
 *    trainer re-runs it and the unit is decided with R = 2 (disagreement → tie-breakers). An
 *    unaudited result is accepted and credited *optimistically*. With reputation on, p_eff = p
 *    while the trainer has fewer than `trustAfter` consecutive verified results, and
 *    max(minP, p · trustAfter / consecutive) after — BOINC's rule that a host's replication
 *    rate falls as its run of valid results grows. With quarantine off (the older model), a
 *    trainer found faulty forfeits (if `forfeit`) the unverified credit it earned since its
 *    last passed check.
 */
import { decideUnit, defaultMaxReplicas, policyAgree } from '../pod/quorum.ts';
import type { ReplicaResult, UnitOutcome } from '../pod/quorum.ts';
import { parsePolicy } from '../pod/policy.ts';
import type { CreditLedger } from '../pod/ledger.ts';
import type { HostTensor } from '../util/tensor.ts';
import { AliasTable } from './sampling.ts';
import { hash32, hashUnit, seedToInt } from './rng.ts';
import type { Rng } from './rng.ts';
import type { Population } from './population.ts';
import { KIND } from './population.ts';
import type { PodScenario } from './scenario.ts';

type Result = Record<string, HostTensor>;

/** Run-wide PoD counters. Unit outcomes count each unit's final decision (when its job settled). */
export interface PodCounters {
  units: number;
  /** Units whose final result was accepted (agreed, resolved, or unverified). */
  acceptedUnits: number;
  /** Units that failed: no strict majority within maxReplicas, or reopened too often. */
  failedUnits: number;
  /** Units that ran out of eligible trainers before a decision (tiny populations, heavy quarantine). */
  stalledUnits: number;
  /** Accepted units no second trainer checked (R = 1, or an unaudited spot-check unit). */
  unverifiedUnits: number;
  /** Spot-check mode: audits (a unit re-run for checking; a re-run unit may be audited again). */
  checkedUnits: number;
  executions: number;
  falsifiedExecutions: number;
  /** Falsified executions whose trainer was listed faulty, or whose unit failed. */
  caughtFalsified: number;
  /** Primary executions (first round of a run) that returned a falsified result, in decided rounds. */
  primaryFalsified: number;
  /** …of which the trainer was listed faulty by the round's decision (and so quarantined). */
  primaryCaught: number;
  /** Accepted units whose final accepted result was falsified (a wrong answer delivered). */
  wrongAccepted: number;
  honestExecutions: number;
  /** Honest executions listed faulty (a false accusation — outvoted, or noise beyond tolerance). */
  honestFaulty: number;
  /** Honest executions in units that failed (no majority), so not credited. */
  honestInFailed: number;
  missedDeadlines: number;
  /** Credit forfeited by trainers found faulty, net of credit restored on release (FLOPs). */
  forfeitedFlops: number;
  /** Worker-job quarantines (a trainer quarantined once per job at most). */
  quarantined: number;
  /** Quarantined trainers released because a unit's new decision agreed with their result. */
  released: number;
  /** Reopenings of decided units (a unit reopened twice counts twice). */
  reopenedUnits: number;
  jobs: number;
}

/** Per-trainer PoD state and counters (typed arrays indexed by trainer). */
export interface PodTrainerStats {
  /** Net credited FLOPs over the run (credits minus forfeits). */
  credit: Float64Array;
  executions: Int32Array;
  falsified: Int32Array;
  caught: Int32Array;
  faulty: Int32Array;
  /** Units assigned as primary (spot-check) or first-round replica (replicate), re-runs included. */
  units: Int32Array;
  /** `units` at the first time the trainer was caught in such a role; −1 if never. */
  firstCaughtAt: Int32Array;
  /** Consecutive verified (credited after comparison) results. */
  reputation: Int32Array;
  /** Optimistic unverified credit since the last passed check (spot-check). */
  unverified: Float64Array;
  /** Jobs in which the trainer was quarantined. */
  quarantined: Int32Array;
  /** Times it was released from a quarantine. */
  released: Int32Array;
}

/**
 * What happened, for tracing a run (`RunOptions.onPodEvent`). `job` counts jobs from 0, `unit`
 * is the unit's index in its job, trainers are population indices. A 'decided' event lists the
 * round's trainers in arrival order; `accepted` indexes them (−1: failed or stalled); `rerun`
 * is how often the unit had been reopened before this round.
 */
export type PodEvent =
  | { kind: 'decided'; job: number; unit: number; status: UnitOutcome['status'] | 'stalled'; trainers: number[]; accepted: number; faulty: number[]; wrong: boolean; rerun: number }
  | { kind: 'quarantined'; job: number; trainer: number; unit: number; reopened: number[] }
  | { kind: 'released'; job: number; trainer: number; unit: number }
  | { kind: 'reopened'; job: number; unit: number; because: number; failed: boolean };

export function newPodCounters(): PodCounters {
  return {
    units: 0, acceptedUnits: 0, failedUnits: 0, stalledUnits: 0, unverifiedUnits: 0, checkedUnits: 0,
    executions: 0, falsifiedExecutions: 0, caughtFalsified: 0, primaryFalsified: 0, primaryCaught: 0, wrongAccepted: 0,
    honestExecutions: 0, honestFaulty: 0, honestInFailed: 0, missedDeadlines: 0, forfeitedFlops: 0,
    quarantined: 0, released: 0, reopenedUnits: 0, jobs: 0,
  };
}

/** Salt for the colluders' per-unit "do we cheat" hash, distinct from the wrong-answer hash. */
const COLLUDE_DECIDE_SALT = 0x0c011de;
/** How many draws a unit may spend looking for a fresh trainer before it is declared stalled. */
const MAX_PICK_ATTEMPTS = 10_000;
/**
 * A unit reopened more often than this fails: the grid's `maxReopens` (8) — an honest grid
 * never reopens a unit, and each reopening needs a new quarantine, so 8 bounds a cascade.
 */
export const MAX_REOPENS = 8;

/** One unit of the current job. */
interface JobUnit {
  /** Run-wide unit id (salts the hardware rounding and the colluders' answers). */
  id: number;
  /** Index in the job. */
  index: number;
  truth: Float32Array;
  truthBits: Int32Array;
  status: 'open' | 'done' | 'failed' | 'stalled';
  /** The accepted result was falsified (standing decision). */
  wrong: boolean;
  unverified: boolean;
  /** Trainers the standing decision rests on. */
  decidedBy: number[];
  /** Trainers ever credited for the unit (a re-decision credits only new ones). */
  credited: Set<number>;
  /** Results of trainers quarantined for being in this unit's minority (to release them). */
  minority: Map<number, Result>;
  reopens: number;
}

export class PodSimulator {
  readonly counters: PodCounters = newPodCounters();
  readonly trainers: PodTrainerStats;
  readonly #cfg: PodScenario;
  readonly #pop: Population;
  readonly #rng: Rng;
  readonly #ledger: CreditLedger;
  readonly #alias: AliasTable;
  readonly #agree: (a: Result, b: Result) => boolean;
  readonly #ids: string[];
  readonly #noise: number;
  readonly #salt: number;
  readonly #maxReplicas: number;
  readonly #onEvent: ((e: PodEvent) => void) | undefined;
  #unitId = 0;
  #bucket = 0;

  // The current job.
  #jobIndex = -1;
  /** Units of the current job, in issue order (empty between jobs). */
  #job: JobUnit[] = [];
  /** 1 while the trainer is quarantined in the current job. */
  readonly #quarantined: Uint8Array;
  /** Quarantined trainer → job-unit indices of the minorities it is quarantined for. */
  readonly #marks = new Map<number, Set<number>>();
  /** Trainer → job-unit indices whose standing decision rests on it. */
  readonly #decidedIn = new Map<number, Set<number>>();
  /** Credit each trainer earned in the current job (what a quarantine forfeits). */
  readonly #jobCredit: Float64Array;
  readonly #jobCredited: number[] = [];
  /** Credit forfeited by a quarantine, restored if the trainer is released. */
  readonly #held = new Map<number, number>();
  /** Reopened units waiting to be re-run (FIFO). */
  #queue: JobUnit[] = [];
  /** Trainers quarantined since the last takeFaults() and not released since. */
  readonly #faultPending: Uint8Array;
  #faults: number[] = [];

  /**
   * @param ids trainer ids as they appear in the ledger (ids[i] for trainer i)
   * @param onEvent called for every decision, quarantine, release and reopening (tracing)
   * @throws UserError if the policy string is invalid.
   */
  constructor(cfg: PodScenario, pop: Population, noiseUlp: number, seed: number | string, rng: Rng, ledger: CreditLedger, ids: string[], onEvent?: (e: PodEvent) => void) {
    this.#cfg = cfg;
    this.#pop = pop;
    this.#rng = rng;
    this.#ledger = ledger;
    this.#ids = ids;
    this.#noise = noiseUlp;
    this.#salt = seedToInt(seed);
    this.#agree = policyAgree(parsePolicy(cfg.policy, 'scenario.pod.policy'));
    this.#alias = new AliasTable(pop.hashrate);
    // The grid's default: 2R + 3 with the job's R — 1 for a spot-checked job (--replicas 1).
    this.#maxReplicas = cfg.maxReplicas ?? defaultMaxReplicas(cfg.mode === 'spot-check' ? 1 : cfg.replicas);
    this.#onEvent = onEvent;
    const n = pop.n;
    this.#quarantined = new Uint8Array(n);
    this.#jobCredit = new Float64Array(n);
    this.#faultPending = new Uint8Array(n);
    this.trainers = {
      credit: new Float64Array(n),
      executions: new Int32Array(n),
      falsified: new Int32Array(n),
      caught: new Int32Array(n),
      faulty: new Int32Array(n),
      units: new Int32Array(n),
      firstCaughtAt: new Int32Array(n).fill(-1),
      reputation: new Int32Array(n),
      unverified: new Float64Array(n),
      quarantined: new Int32Array(n),
      released: new Int32Array(n),
    };
  }

  /** The spot-check probability for trainer i (reputation-adjusted when enabled). */
  checkProbability(i: number): number {
    const { sampleP, reputation } = this.#cfg;
    if (!reputation.enabled) return sampleP;
    const r = this.trainers.reputation[i]!;
    if (r < reputation.trustAfter || r === 0) return sampleP;
    return Math.max(reputation.minP, (sampleP * reputation.trustAfter) / r);
  }

  /** Whether trainer i is quarantined in the current job. */
  isQuarantined(i: number): boolean {
    return this.#quarantined[i] === 1;
  }

  /**
   * Trainers quarantined since the previous call and not released since (the lottery bans
   * them: src/sim/engine.ts); clears the list.
   */
  takeFaults(): number[] {
    const out: number[] = [];
    for (const i of this.#faults) {
      if (this.#faultPending[i] === 0) continue; // released since, or listed twice
      this.#faultPending[i] = 0;
      out.push(i);
    }
    this.#faults = [];
    return out;
  }

  /** Draw a trainer for the unit, by hashrate, not already in `used` nor quarantined; −1 if none found. */
  #pick(used: number[]): number {
    const pop = this.#pop;
    for (let a = 0; a < MAX_PICK_ATTEMPTS; a++) {
      const i = this.#alias.sample(this.#rng.next());
      if (used.includes(i) || this.#quarantined[i] === 1) continue;
      if (pop.kind[i] === KIND.flaky && this.#rng.chance(pop.rate[i]!)) {
        this.counters.missedDeadlines++;
        used.push(i); // the coordinator does not re-offer the unit to a trainer that missed it
        continue;
      }
      return i;
    }
    return -1;
  }

  /** What trainer i returns for unit u, and whether it is falsified. */
  #execute(i: number, u: JobUnit): { result: Result; falsified: boolean } {
    const pop = this.#pop;
    const truth = u.truth;
    const D = truth.length;
    const out = new Float32Array(D);
    const kind = pop.kind[i]!;
    const unit = u.id;
    let falsified = false;
    if (kind === KIND.lazy) {
      for (let j = 0; j < D; j++) out[j] = this.#rng.normal();
      falsified = true;
    } else if (kind === KIND.cheater && this.#rng.chance(pop.rate[i]!)) {
      for (let j = 0; j < D; j++) out[j] = truth[j]! + this.#rng.normal();
      falsified = true;
    } else if (kind === KIND.colluder && hashUnit(this.#salt, unit, pop.group[i]!, COLLUDE_DECIDE_SALT) < pop.rate[i]!) {
      const g = pop.group[i]!;
      for (let j = 0; j < D; j++) {
        // Box–Muller from two hashed uniforms: the group's shared wrong offset.
        const u1 = 1 - hashUnit(this.#salt, unit, g, 2 * j);
        const u2 = hashUnit(this.#salt, unit, g, 2 * j + 1);
        out[j] = truth[j]! + Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
      }
      falsified = true;
    } else {
      const bits = new Int32Array(out.buffer);
      const k = pop.hw[i]!;
      const span = this.#noise + 1;
      for (let j = 0; j < D; j++) {
        const delta = this.#noise === 0 ? 0 : hash32(this.#salt ^ 0x5eed, unit, k, j) % span;
        bits[j] = u.truthBits[j]! + delta; // moves the magnitude up by delta ULPs
      }
    }
    this.counters.executions++;
    this.trainers.executions[i]!++;
    return { result: { y: { dtype: 'float32', dims: [D], data: out } }, falsified };
  }

  /**
   * Issue the next work unit (of the current job, or of a new one) and run it — and every unit
   * its decision reopens — to a decision; credit goes to ledger bucket `bucket`.
   */
  runUnit(bucket: number): void {
    this.#bucket = bucket;
    if (this.#job.length === 0 || this.#job.length >= this.#cfg.jobUnits) {
      this.#endJob();
      this.#jobIndex++;
      this.counters.jobs++;
    }
    const D = this.#cfg.outputSize;
    const truth = new Float32Array(D);
    for (let j = 0; j < D; j++) truth[j] = this.#rng.normal();
    const u: JobUnit = {
      id: this.#unitId++, index: this.#job.length, truth, truthBits: new Int32Array(truth.buffer),
      status: 'open', wrong: false, unverified: false, decidedBy: [], credited: new Set(), minority: new Map(), reopens: 0,
    };
    this.#job.push(u);
    this.counters.units++;
    this.#run(u);
    // Quarantines reopen units; re-run them (which may quarantine more) until none is left.
    for (let k = 0; k < this.#queue.length; k++) this.#run(this.#queue[k]!);
    this.#queue = [];
  }

  /** Settle the current job: count its units' final decisions (call once after the last unit). */
  finish(): void {
    this.#endJob();
  }

  #endJob(): void {
    const c = this.counters;
    for (const u of this.#job) {
      if (u.status === 'done') {
        c.acceptedUnits++;
        if (u.wrong) c.wrongAccepted++;
        if (u.unverified) c.unverifiedUnits++;
      } else if (u.status === 'failed') c.failedUnits++;
      else c.stalledUnits++;
    }
    this.#job = [];
    for (const i of this.#marks.keys()) this.#quarantined[i] = 0;
    this.#marks.clear();
    this.#decidedIn.clear();
    this.#held.clear();
    for (const i of this.#jobCredited) this.#jobCredit[i] = 0;
    this.#jobCredited.length = 0;
  }

  /** One run of unit u: first round, audit or tie-breakers, decision. */
  #run(u: JobUnit): void {
    const rng = this.#rng;
    const cfg = this.#cfg;
    const used: number[] = [];
    const who: number[] = [];
    const fals: boolean[] = [];
    const results: Array<ReplicaResult<Result>> = [];
    const add = (): boolean => {
      const i = this.#pick(used);
      if (i < 0) return false;
      used.push(i);
      const r = this.#execute(i, u);
      who.push(i);
      fals.push(r.falsified);
      results.push({ worker: this.#ids[i]!, result: r.result });
      return true;
    };

    const firstRound = cfg.mode === 'replicate' ? cfg.replicas : 1;
    let replicas = firstRound;
    let audited = false;
    for (let k = 0; k < firstRound; k++) {
      if (!add()) return this.#stalled(u, who);
    }
    // The audit coin is tossed once the first result is in.
    if (cfg.mode === 'spot-check' && rng.chance(this.checkProbability(who[0]!))) {
      this.counters.checkedUnits++;
      audited = true;
      replicas = 2;
      if (!add()) return this.#stalled(u, who);
    }
    const opts = { replicas, maxReplicas: this.#maxReplicas };
    // As the grid's scheduler: a dispute is settled by a jury of 2·R + 1 results (R = 2 for an
    // audited spot check), not by one tie-breaker — fewer only when nobody is left to draw.
    const jury = 2 * replicas + 1;
    const decide = (): UnitOutcome => {
      const o = decideUnit(results, this.#agree, opts);
      if (o.status === 'resolved' && results.length < jury) return { ...o, status: 'pending', credited: [], faulty: [], accepted: -1, needMore: jury - results.length };
      return o;
    };
    let out: UnitOutcome = decide();
    while (out.status === 'pending') {
      for (let k = 0; k < out.needMore; k++) {
        if (add()) continue;
        // Nobody left to draw: a strict majority of what came in stands, as in the grid.
        const o = decideUnit(results, this.#agree, opts);
        if (o.status === 'resolved') {
          out = o;
          break;
        }
        return this.#stalled(u, who);
      }
      if (out.status !== 'pending') break;
      out = decide();
    }
    this.#settle(u, out, who, fals, results, firstRound, cfg.mode === 'spot-check' && !audited);
  }

  #stalled(u: JobUnit, who: number[]): void {
    u.status = 'stalled';
    this.#emit(() => ({ kind: 'decided', job: this.#jobIndex, unit: u.index, status: 'stalled', trainers: who.slice(), accepted: -1, faulty: [], wrong: false, rerun: u.reopens }));
  }

  #settle(u: JobUnit, out: UnitOutcome, who: number[], fals: boolean[], results: Array<ReplicaResult<Result>>, firstRound: number, unaudited: boolean): void {
    const c = this.counters;
    const t = this.trainers;
    const cfg = this.#cfg;
    const flops = cfg.flops;
    const failed = out.status === 'failed';
    const faultyIdx: number[] = [];
    const isFaultyAt: boolean[] = [];
    {
      const faulty = new Set(out.faulty);
      for (let k = 0; k < who.length; k++) {
        const f = faulty.has(results[k]!.worker);
        isFaultyAt.push(f);
        if (f) faultyIdx.push(k);
      }
    }

    for (let k = 0; k < who.length; k++) {
      const i = who[k]!;
      const isFaulty = isFaultyAt[k]!;
      if (k < firstRound) t.units[i]!++;
      if (fals[k]) {
        c.falsifiedExecutions++;
        t.falsified[i]!++;
        if (k < firstRound) {
          c.primaryFalsified++;
          if (isFaulty) c.primaryCaught++;
        }
        if (isFaulty || failed) {
          c.caughtFalsified++;
          t.caught[i]!++;
          if (k < firstRound && t.firstCaughtAt[i] === -1) t.firstCaughtAt[i] = t.units[i]!;
        }
      } else {
        c.honestExecutions++;
        if (isFaulty) c.honestFaulty++;
        if (failed) c.honestInFailed++;
      }
      if (isFaulty) {
        t.faulty[i]!++;
        t.reputation[i] = 0;
        const owed = t.unverified[i]!;
        // The older model (quarantine off): a spot-checked trainer caught cheating forfeits
        // the unverified credit since its last passed check.
        if (!cfg.quarantine && cfg.mode === 'spot-check' && cfg.forfeit && owed > 0) {
          this.#ledger.revert({ credited: [this.#ids[i]!], faulty: [], flops: owed }, this.#bucket);
          t.credit[i]! -= owed;
          c.forfeitedFlops += owed;
        }
        t.unverified[i] = 0;
      }
    }

    let credited: number[] = [];
    let decidedBy: number[];
    if (failed) {
      u.status = 'failed';
      u.wrong = false;
      u.unverified = false;
      decidedBy = who.slice();
    } else {
      u.status = 'done';
      u.wrong = fals[out.accepted]!;
      u.unverified = out.status === 'unverified' || unaudited;
      decidedBy = who.filter((_, k) => !isFaultyAt[k]);
      if (out.status === 'agreed' || out.status === 'resolved') credited = decidedBy;
      else if (unaudited) credited = [who[0]!]; // spot-check: optimistic credit
    }

    // Credit the trainers not credited for this unit before (a re-decision credits only new ones).
    const fresh = credited.filter((i) => !u.credited.has(i));
    if (fresh.length > 0 || out.faulty.length > 0) {
      this.#ledger.apply({ credited: fresh.map((i) => this.#ids[i]!), faulty: out.faulty, flops }, this.#bucket);
    }
    for (const i of fresh) {
      u.credited.add(i);
      t.credit[i]! += flops;
      if (this.#jobCredit[i] === 0) this.#jobCredited.push(i);
      this.#jobCredit[i]! += flops;
    }
    if (out.status === 'agreed' || out.status === 'resolved') {
      for (const i of credited) {
        t.reputation[i]!++;
        t.unverified[i] = 0; // a passed check vouches for the optimistic credit before it
      }
    } else if (unaudited) {
      t.unverified[who[0]!]! += flops;
    }

    this.#emit(() => ({ kind: 'decided', job: this.#jobIndex, unit: u.index, status: out.status, trainers: who.slice(), accepted: out.accepted, faulty: faultyIdx.map((k) => who[k]!), wrong: u.wrong, rerun: u.reopens }));
    if (!cfg.quarantine) return;

    this.#setDecidedBy(u, decidedBy);
    // Trainers quarantined for this unit's minority whose result agrees with the new decision go free.
    if (!failed && u.minority.size > 0) {
      const accepted = results[out.accepted]!.result;
      for (const [i, r] of [...u.minority]) {
        if (!this.#agree(r, accepted)) continue;
        u.minority.delete(i);
        this.#unmark(i, u);
      }
    }
    for (const k of faultyIdx) {
      const i = who[k]!;
      u.minority.set(i, results[k]!.result);
      this.#quarantine(i, u);
    }
  }

  #setDecidedBy(u: JobUnit, trainers: number[]): void {
    for (const i of u.decidedBy) this.#decidedIn.get(i)?.delete(u.index);
    u.decidedBy = trainers;
    for (const i of trainers) {
      let s = this.#decidedIn.get(i);
      if (!s) this.#decidedIn.set(i, (s = new Set()));
      s.add(u.index);
    }
  }

  /** Quarantine trainer i in the current job for being in unit u's minority. */
  #quarantine(i: number, u: JobUnit): void {
    const marks = this.#marks.get(i);
    if (marks) {
      marks.add(u.index); // already quarantined: this mark too must clear before a release
      return;
    }
    this.#marks.set(i, new Set([u.index]));
    this.#quarantined[i] = 1;
    this.counters.quarantined++;
    this.trainers.quarantined[i]!++;
    if (this.#faultPending[i] === 0) {
      this.#faultPending[i] = 1;
      this.#faults.push(i);
    }
    const owed = this.#jobCredit[i]!;
    if (this.#cfg.forfeit && owed > 0) {
      this.#ledger.revert({ credited: [this.#ids[i]!], faulty: [], flops: owed }, this.#bucket);
      this.trainers.credit[i]! -= owed;
      this.counters.forfeitedFlops += owed;
      this.#jobCredit[i] = 0;
      this.#held.set(i, owed);
    }
    const reopened: number[] = [];
    for (const idx of [...(this.#decidedIn.get(i) ?? [])]) {
      const v = this.#job[idx]!;
      if (v.status === 'open') continue;
      this.#reopen(v, i);
      reopened.push(idx);
    }
    this.#emit(() => ({ kind: 'quarantined', job: this.#jobIndex, trainer: i, unit: u.index, reopened }));
  }

  #unmark(i: number, u: JobUnit): void {
    const marks = this.#marks.get(i);
    if (!marks?.delete(u.index) || marks.size > 0) return;
    this.#marks.delete(i);
    this.#quarantined[i] = 0;
    this.#faultPending[i] = 0;
    this.counters.released++;
    this.trainers.released[i]!++;
    const owed = this.#held.get(i);
    if (owed !== undefined) {
      this.#held.delete(i);
      this.#ledger.apply({ credited: [this.#ids[i]!], faulty: [], flops: owed }, this.#bucket);
      this.trainers.credit[i]! += owed;
      this.counters.forfeitedFlops -= owed;
      if (this.#jobCredit[i] === 0) this.#jobCredited.push(i);
      this.#jobCredit[i]! += owed;
    }
    this.#emit(() => ({ kind: 'released', job: this.#jobIndex, trainer: i, unit: u.index }));
  }

  /** Reopen a decided unit: it is re-run from scratch (queued), or fails after MAX_REOPENS. */
  #reopen(u: JobUnit, because: number): void {
    u.reopens++;
    this.counters.reopenedUnits++;
    this.#setDecidedBy(u, []);
    u.wrong = false;
    u.unverified = false;
    const failed = u.reopens > MAX_REOPENS;
    u.status = failed ? 'failed' : 'open';
    if (!failed) this.#queue.push(u);
    this.#emit(() => ({ kind: 'reopened', job: this.#jobIndex, unit: u.index, because, failed }));
  }

  #emit(make: () => PodEvent): void {
    if (this.#onEvent) this.#onEvent(make());
  }
}
