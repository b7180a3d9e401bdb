/**
 * Proof-of-Drilling rounds for the simulator, driven through the project's real quorum
 * (`decideUnit`), comparison policy (`policyAgree` → `tensorsAgree`) and credit ledger
 * (`CreditLedger`). Pure apart from the RNG and ledger passed in.
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
 * Trainers are drawn for a unit in proportion to hashrate (a faster machine finishes more
 * units), never twice for one unit.
 *
 * Modes:
 *  - replicate: R first-round replicas, then tie-breakers as `decideUnit` asks (`needMore`),
 *    until agreed / resolved / failed. R = 1 accepts unverified and credits nobody, as the grid.
 *  - spot-check (PoSP / BOINC adaptive replication): one trainer runs the unit; with
 *    probability p_eff it is re-run by a second trainer and decided with R = 2 (disagreement →
 *    tie-breakers). An unchecked result is accepted and credited *optimistically* (BOINC grants
 *    credit to a trusted host's unreplicated result); a trainer found faulty forfeits the
 *    unverified credit earned since its last passed check (if `forfeit`) and loses its reputation.
 *    With reputation on, p_eff = p while the trainer has fewer than `trustAfter` consecutive
 *    verified results, and max(minP, p · trustAfter / consecutive) after — BOINC's rule that
 *    a host's replication rate falls as its run of valid results grows.
 */
import { decideUnit, policyAgree } from '../pod/quorum.ts';
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

/** Run-wide PoD counters. */
export interface PodCounters {
  units: number;
  /** Units whose result was accepted (agreed, resolved, or unverified). */
  acceptedUnits: number;
  failedUnits: number;
  /** Units that ran out of distinct trainers before a decision (tiny populations only). */
  stalledUnits: number;
  unverifiedUnits: number;
  /** Spot-check mode: units that were re-run for checking. */
  checkedUnits: number;
  executions: number;
  falsifiedExecutions: number;
  caughtFalsified: number;
  /** Accepted units whose accepted result was falsified (a wrong answer delivered). */
  wrongAccepted: number;
  honestExecutions: number;
  /** Honest executions listed faulty (a false accusation — e.g. noise beyond tolerance). */
  honestFaulty: number;
  /** Honest executions in units that failed (no majority), so not credited. */
  honestInFailed: number;
  missedDeadlines: number;
  /** FLOPs forfeited by trainers caught in spot-check mode. */
  forfeitedFlops: number;
}

/** Per-trainer PoD state and counters (typed arrays indexed by trainer). */
export interface PodTrainerStats {
  /** Net credited FLOPs over the run (credits minus forfeits). */
  credit: Float64Array;
  executions: Int32Array;
  falsified: Int32Array;
  caught: Int32Array;
  faulty: Int32Array;
  /** Units assigned as primary (spot-check) or first-round replica (replicate). */
  units: Int32Array;
  /** `units` at the first time the trainer was caught in such a role; −1 if never. */
  firstCaughtAt: Int32Array;
  /** Consecutive verified (credited after comparison) results. */
  reputation: Int32Array;
  /** Optimistic unverified credit since the last passed check (spot-check). */
  unverified: Float64Array;
}

export function newPodCounters(): PodCounters {
  return {
    units: 0, acceptedUnits: 0, failedUnits: 0, stalledUnits: 0, unverifiedUnits: 0, checkedUnits: 0,
    executions: 0, falsifiedExecutions: 0, caughtFalsified: 0, wrongAccepted: 0,
    honestExecutions: 0, honestFaulty: 0, honestInFailed: 0, missedDeadlines: 0, forfeitedFlops: 0,
  };
}

/** Salt for the colluders' per-unit "do we cheat" hash, distinct from the wrong-answer hash. */
const COLLUDE_DECIDE_SALT = 0x0c011de;
/** How many draws a unit may spend looking for a fresh trainer before it is declared stalled. */
const MAX_PICK_ATTEMPTS = 10_000;

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
  readonly #truth: Float32Array;
  readonly #truthBits: Int32Array;
  readonly #maxReplicas: number | undefined;
  #unitId = 0;

  /**
   * @param ids trainer ids as they appear in the ledger (ids[i] for trainer i)
   * @throws UserError if the policy string is invalid.
   */
  constructor(cfg: PodScenario, pop: Population, noiseUlp: number, seed: number | string, rng: Rng, ledger: CreditLedger, ids: string[]) {
    this.#cfg = cfg;
    this.#pop = pop;
    this.#rng = rng;
    this.#ledger = ledger;
    this.#ids = ids;
    this.#noise = noiseUlp;
    this.#salt = seedToInt(seed);
    this.#agree = policyAgree(parsePolicy(cfg.policy, 'scenario.pod.policy'));
    this.#alias = new AliasTable(pop.hashrate);
    this.#truth = new Float32Array(cfg.outputSize);
    this.#truthBits = new Int32Array(this.#truth.buffer);
    this.#maxReplicas = cfg.maxReplicas;
    const n = pop.n;
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

  /** Draw a trainer for the unit, by hashrate, not already in `used`; −1 if none found. */
  #pick(used: number[]): number {
    const pop = this.#pop;
    for (let a = 0; a < MAX_PICK_ATTEMPTS; a++) {
      const i = this.#alias.sample(this.#rng.next());
      if (used.includes(i)) continue;
      if (pop.kind[i] === KIND.flaky && this.#rng.chance(pop.rate[i]!)) {
        this.counters.missedDeadlines++;
        used.push(i); // the coordinator does not re-offer the unit to a trainer that missed it
        continue;
      }
      return i;
    }
    return -1;
  }

  /** What trainer i returns for the current unit, and whether it is falsified. */
  #execute(i: number, unit: number): { result: Result; falsified: boolean } {
    const pop = this.#pop;
    const D = this.#truth.length;
    const out = new Float32Array(D);
    const kind = pop.kind[i]!;
    let falsified = false;
    if (kind === KIND.lazy) {
      for (let j = 0; j < D; j++) out[j] = this.#rng.normal();
      falsified = true;
    } else if (kind === KIND.cheater && this.#rng.chance(pop.rate[i]!)) {
      for (let j = 0; j < D; j++) out[j] = this.#truth[j]! + this.#rng.normal();
      falsified = true;
    } else if (kind === KIND.colluder && hashUnit(this.#salt, unit, pop.group[i]!, COLLUDE_DECIDE_SALT) < pop.rate[i]!) {
      const g = pop.group[i]!;
      for (let j = 0; j < D; j++) {
        // Box–Muller from two hashed uniforms: the group's shared wrong offset.
        const u1 = 1 - hashUnit(this.#salt, unit, g, 2 * j);
        const u2 = hashUnit(this.#salt, unit, g, 2 * j + 1);
        out[j] = this.#truth[j]! + Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
      }
      falsified = true;
    } else {
      const bits = new Int32Array(out.buffer);
      const k = pop.hw[i]!;
      const span = this.#noise + 1;
      for (let j = 0; j < D; j++) {
        const delta = this.#noise === 0 ? 0 : hash32(this.#salt ^ 0x5eed, unit, k, j) % span;
        bits[j] = this.#truthBits[j]! + delta; // moves the magnitude up by delta ULPs
      }
    }
    this.counters.executions++;
    this.trainers.executions[i]!++;
    return { result: { y: { dtype: 'float32', dims: [D], data: out } }, falsified };
  }

  /** Run one work unit to its decision and apply its credit to ledger bucket `bucket`. */
  runUnit(bucket: number): void {
    const rng = this.#rng;
    const cfg = this.#cfg;
    const unit = this.#unitId++;
    for (let j = 0; j < this.#truth.length; j++) this.#truth[j] = rng.normal();
    this.counters.units++;

    const used: number[] = [];
    const who: number[] = [];
    const fals: boolean[] = [];
    const results: Array<ReplicaResult<Result>> = [];
    const add = (): boolean => {
      const i = this.#pick(used);
      if (i < 0) return false;
      used.push(i);
      const r = this.#execute(i, unit);
      who.push(i);
      fals.push(r.falsified);
      results.push({ worker: this.#ids[i]!, result: r.result });
      return true;
    };

    let replicas: number;
    let firstRound: number;
    if (cfg.mode === 'replicate') {
      replicas = cfg.replicas;
      firstRound = replicas;
    } else {
      firstRound = 1;
      replicas = 1;
    }
    for (let k = 0; k < firstRound; k++) {
      if (!add()) return this.#stalled();
    }
    if (cfg.mode === 'spot-check' && rng.chance(this.checkProbability(who[0]!))) {
      this.counters.checkedUnits++;
      replicas = 2;
      if (!add()) return this.#stalled();
    }
    const opts = { replicas, maxReplicas: this.#maxReplicas };
    let out: UnitOutcome = decideUnit(results, this.#agree, opts);
    while (out.status === 'pending') {
      for (let k = 0; k < out.needMore; k++) if (!add()) return this.#stalled();
      out = decideUnit(results, this.#agree, opts);
    }
    this.#settle(out, who, fals, firstRound, bucket);
  }

  #stalled(): void {
    this.counters.stalledUnits++;
  }

  #settle(out: UnitOutcome, who: number[], fals: boolean[], firstRound: number, bucket: number): void {
    const c = this.counters;
    const t = this.trainers;
    const cfg = this.#cfg;
    const flops = cfg.flops;
    const faulty = new Set(out.faulty);
    const failed = out.status === 'failed';

    if (out.status === 'failed') c.failedUnits++;
    else c.acceptedUnits++;
    if (out.accepted >= 0 && fals[out.accepted]) c.wrongAccepted++;

    for (let k = 0; k < who.length; k++) {
      const i = who[k]!;
      const isFaulty = faulty.has(this.#ids[i]!);
      if (k < firstRound) t.units[i]!++;
      if (fals[k]) {
        c.falsifiedExecutions++;
        t.falsified[i]!++;
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
        if (cfg.mode === 'spot-check' && cfg.forfeit && owed > 0) {
          this.#ledger.revert({ credited: [this.#ids[i]!], faulty: [], flops: owed }, bucket);
          t.credit[i]! -= owed;
          c.forfeitedFlops += owed;
        }
        t.unverified[i] = 0;
      }
    }

    if (out.status === 'agreed' || out.status === 'resolved') {
      this.#ledger.apply({ credited: out.credited, faulty: out.faulty, flops }, bucket);
      for (const w of out.credited) {
        const i = Number(w.slice(1));
        t.credit[i]! += flops;
        t.reputation[i]!++;
        t.unverified[i] = 0; // a passed check vouches for the optimistic credit before it
      }
    } else if (out.status === 'unverified') {
      c.unverifiedUnits++;
      if (cfg.mode === 'spot-check') {
        const i = who[0]!;
        this.#ledger.apply({ credited: [this.#ids[i]!], faulty: [], flops }, bucket);
        t.credit[i]! += flops;
        t.unverified[i]! += flops;
      }
    }
  }
}
