/**
 * The simulation loop (pure apart from the optional callbacks and the clock passed in).
 *
 * Per slot: the slot's PoD work units are run to their decision (src/pod quorum, policy,
 * ledger — see pod.ts) and credited to ledger bucket = the slot's epoch; then the slot's
 * lottery is drawn from the epoch's weights. Per epoch e: the weights are the credit of ledger
 * buckets ≤ e − 1 − lookback (`snapshotBucket` in src/chain/epoch.ts), optionally only the last
 * `windowEpochs` of them. The first lookback + 1 epochs are a warm-up: PoD runs, the lottery is
 * not measured (the chain uses genesis allocations there). A scenario with unitsPerSlot = 0
 * skips PoD: the weights are the hashrates, as genesis allocations, from slot 0.
 *
 * Fault ban: a trainer quarantined during epoch e (pod.takeFaults() at the start of epoch
 * e + 1: quarantined and not released by then) has lottery weight 0 in epochs e + 1 …
 * e + faultEpochs, whatever its credit — the chain forfeits a faulty worker's lottery weight
 * for `faultEpochs` epochs. The ban is applied where the lottery reads weights (the Fenwick
 * tree and the ECVRF thresholds); the credit itself stays in the ledger.
 *
 * Memory is flat in the number of slots: ledger buckets are folded into a per-trainer weight
 * array (and a Fenwick tree) as they enter the snapshot and then pruned; per-slot results go to
 * the `onSlot` callback (the CLI streams them to CSV) and into O(1) counters. The per-trainer
 * arrays are O(trainers).
 *
 * Cost: O(units · replicas) per slot for PoD and O(1 + leaders · log n) for the fast lottery —
 * trainers that cannot win are never touched in a slot — plus O(n) per epoch for the exact
 * expected-wins bookkeeping that the fairness statistics need.
 */
import { CreditLedger } from '../pod/ledger.ts';
import { snapshotBucket } from '../chain/epoch.ts';
import { Rng } from './rng.ts';
import { buildPopulation, KIND } from './population.ts';
import type { Population } from './population.ts';
import { PodSimulator } from './pod.ts';
import type { PodEvent } from './pod.ts';
import { FenwickSampler } from './sampling.ts';
import { drawWinnersFast, EcvrfLottery, lotteryLambda } from './lottery.ts';
import type { VrfImpl } from './lottery.ts';
import { DrillError } from '../util/errors.ts';
import type { Scenario } from './scenario.ts';

/** One measured slot, as streamed to `onSlot` (and the per-slot CSV). */
export interface SlotRow {
  slot: number;
  epoch: number;
  /** Trainers whose VRF ticket won. */
  leaders: number;
  /** Leaders that were online and produced a block (flaky trainers may be offline). */
  produced: number;
  /** Work units decided in this slot. */
  units: number;
  /** Total lottery weight of the epoch (credited FLOPs in the snapshot). */
  totalWeight: number;
  /** The trainer of the lowest index among the producers, −1 if none (for traces). */
  producer: number;
}

export interface RunOptions {
  /** Called once per measured slot, in order (the row object is reused: copy what you keep). */
  onSlot?: (row: Readonly<SlotRow>) => void;
  /** Called every `progressEvery` measured slots with the count done so far. */
  onProgress?: (slotsDone: number) => void;
  progressEvery?: number;
  /** Milliseconds clock (default performance.now); injected so tests can fix elapsedMs. */
  now?: () => number;
  /** The ECVRF implementation, required when scenario.lottery.mode is 'ecvrf' (see `loadEcvrf`). */
  vrf?: VrfImpl;
  /** Called for every PoD decision, quarantine, release and reopening (tracing; slows a run). */
  onPodEvent?: (e: PodEvent) => void;
}

/** Lottery counters over the measured slots. */
export interface LotteryCounters {
  slots: number;
  noLeaderSlots: number;
  multiLeaderSlots: number;
  /** Slots in which no block was produced (no leader, or all leaders offline). */
  emptySlots: number;
  leaders: number;
  /** Leader slots lost because a flaky leader was offline. */
  missedLeaderships: number;
  /** Fault bans started (a trainer's weight set to 0 for faultEpochs epochs after a quarantine). */
  faultBans: number;
}

/** Per-trainer lottery results. */
export interface LotteryTrainerStats {
  wins: Int32Array;
  produced: Int32Array;
  /** Σ over measured slots of P(win) = 1 − (1 − c)^(w/W) with that slot's epoch weights. */
  expectedWins: Float64Array;
  /** Σ over measured slots of w/W: divided by the slot count, the trainer's average weight share. */
  weightSlots: Float64Array;
  /** Weight in the last epoch's snapshot. */
  finalWeight: Float64Array;
  /** Per machine: measured slots in which at least one of its identities was a leader. */
  machineLed: Int32Array;
  /** Measured slots in which the trainer's lottery weight was 0 because of a fault ban. */
  bannedSlots: Int32Array;
}

/** A Sybil machine's lottery outcome: does splitting change its chance to lead a slot? */
export interface SybilMachineStats {
  machine: number;
  identities: number;
  /** Its identities' trainer indices are [first, first + identities). */
  first: number;
  /** Σ over measured slots of P(some identity leads) = 1 − (1 − c)^(Σ w / W). */
  expectedLed: number;
}

export interface SimRun {
  scenario: Scenario;
  population: Population;
  pod: PodSimulator | null;
  lottery: LotteryCounters;
  trainers: LotteryTrainerStats;
  sybils: SybilMachineStats[];
  warmupSlots: number;
  elapsedMs: number;
}

/**
 * Run a scenario (already resolved by `resolveScenario`). Deterministic: the same scenario
 * (seed included) gives the same SimRun, bit for bit, except elapsedMs.
 * @throws UserError for an invalid policy string; DrillError SIM_NO_VRF for ecvrf mode without `opts.vrf`.
 */
export function runSimulation(s: Scenario, opts: RunOptions = {}): SimRun {
  const now = opts.now ?? (() => performance.now());
  const t0 = now();
  const master = new Rng(s.seed);
  const pop = buildPopulation(s, master.fork(1));
  const podRng = master.fork(2);
  const lotRng = master.fork(3);
  const n = pop.n;
  const ids = Array.from({ length: n }, (_, i) => `t${i}`);
  const ledger = new CreditLedger();
  const lotteryOnly = s.pod.unitsPerSlot === 0;
  const pod = lotteryOnly ? null : new PodSimulator(s.pod, pop, s.noiseUlp, s.seed, podRng, ledger, ids, opts.onPodEvent);

  const E = s.lottery.epochSlots;
  const L = s.lottery.lookbackEpochs;
  const win = s.lottery.windowEpochs;
  const c = s.lottery.c;
  const lambda = lotteryLambda(c);
  const warmupSlots = lotteryOnly ? 0 : (L + 1) * E;
  const totalSlots = warmupSlots + s.slots;

  const weight = new Float64Array(n); // net credit in the snapshot (may dip below 0 after forfeits)
  const wpos = new Float64Array(n); // max(0, weight), or 0 while banned: the lottery weight
  const F = s.lottery.faultEpochs;
  const bannedUntil = new Int32Array(n).fill(-1); // last epoch of the trainer's fault ban
  let banned: number[] = []; // trainers with a ban that may still run
  let epochNow = 0;
  let pending = 0; // measured slots not yet booked into the expected-wins sums
  const fen = new FenwickSampler(n);
  if (s.lottery.mode === 'ecvrf' && !opts.vrf) {
    throw new DrillError('SIM_NO_VRF', 'scenario.lottery.mode is ecvrf but no VRF implementation was passed (RunOptions.vrf; see loadEcvrf)');
  }
  const ecvrf = s.lottery.mode === 'ecvrf' ? new EcvrfLottery(opts.vrf!, s.lottery.suite, c, s.seed, n) : null;
  if (lotteryOnly) for (let i = 0; i < n; i++) setWeight(i, pop.hashrate[i]!);

  function setWeight(i: number, w: number): void {
    weight[i] = w;
    const pos = w > 0 && bannedUntil[i]! < epochNow ? w : 0;
    wpos[i] = pos;
    fen.set(i, pos);
  }
  /** P(win) = 1 − e^(−y): the Taylor form below y = 1e-4 (error < y^4/24) avoids expm1 for small trainers. */
  function winP(y: number): number {
    return y < 1e-4 ? y * (1 - y * (0.5 - y / 6)) : -Math.expm1(-y);
  }
  /** Book `pending` measured slots under the current weights into the expected-wins sums. */
  function flushExpected(): void {
    const W = fen.total;
    if (pending > 0 && W > 0) {
      const inv = 1 / W;
      const slots = pending;
      for (let i = 0; i < n; i++) {
        const w = wpos[i]!;
        if (w === 0) continue;
        const x = w * inv;
        tr.expectedWins[i]! += slots * (lambda === Infinity ? 1 : winP(lambda * x));
        tr.weightSlots[i]! += slots * x;
      }
      for (const sy of sybils) {
        let x = 0;
        for (let i = sy.first; i < sy.first + sy.identities; i++) x += wpos[i]! * inv;
        if (x > 0) sy.expectedLed += slots * (lambda === Infinity ? 1 : winP(lambda * x));
      }
    }
    pending = 0;
  }
  function fold(bucket: number, sign: 1 | -1): void {
    for (const [w, e] of ledger.window(bucket, bucket)) {
      const i = Number(w.slice(1));
      setWeight(i, weight[i]! + sign * Number(e.credit));
    }
  }

  const counters: LotteryCounters = { slots: 0, noLeaderSlots: 0, multiLeaderSlots: 0, emptySlots: 0, leaders: 0, missedLeaderships: 0, faultBans: 0 };
  const tr: LotteryTrainerStats = {
    wins: new Int32Array(n),
    produced: new Int32Array(n),
    expectedWins: new Float64Array(n),
    weightSlots: new Float64Array(n),
    finalWeight: new Float64Array(n),
    machineLed: new Int32Array(pop.machines),
    bannedSlots: new Int32Array(n),
  };
  const sybils: SybilMachineStats[] = [];
  for (let i = 0; i < n; ) {
    let j = i + 1;
    while (j < n && pop.owner[j] === pop.owner[i]) j++;
    if (pop.kind[i] === KIND.sybil) sybils.push({ machine: pop.owner[i]!, identities: j - i, first: i, expectedLed: 0 });
    i = j;
  }
  const owners: number[] = [];
  const row: SlotRow = { slot: 0, epoch: 0, leaders: 0, produced: 0, units: 0, totalWeight: 0, producer: -1 };
  const winners: number[] = [];
  let folded = -1; // last ledger bucket folded into `weight`
  let unitAcc = 0;
  const every = opts.progressEvery ?? 0;

  for (let slot = 0; slot < totalSlots; slot++) {
    const epoch = Math.floor(slot / E);
    if (slot % E === 0) {
      if (!lotteryOnly) {
        const target = snapshotBucket({ lookbackEpochs: L }, epoch);
        const faults = pod!.takeFaults();
        const bans = F > 0 ? faults : [];
        // The slots measured so far ran under the current weights: book them before they change.
        if ((folded < target || bans.length > 0 || banned.length > 0) && pending > 0) flushExpected();
        epochNow = epoch;
        // Fault bans: old ones expire, then new ones start (faults of the epoch that just ended).
        if (banned.length > 0) {
          const still: number[] = [];
          for (const i of banned) {
            if (bannedUntil[i]! >= epoch) still.push(i);
            else setWeight(i, weight[i]!);
          }
          banned = still;
        }
        for (const i of bans) {
          if (bannedUntil[i]! < epoch) banned.push(i);
          bannedUntil[i] = epoch + F - 1;
          counters.faultBans++;
          setWeight(i, weight[i]!);
        }
        while (folded < target) {
          folded++;
          fold(folded, 1);
          if (win > 0 && folded - win >= 0) fold(folded - win, -1);
          ledger.prune(win > 0 ? folded - win + 1 : folded + 1);
        }
      }
      if (ecvrf) ecvrf.startEpoch(epoch, currentWeights());
      if (slot >= warmupSlots) {
        for (const i of banned) tr.bannedSlots[i]! += Math.min(E, totalSlots - slot);
        // Expected-wins bookkeeping is O(n), so it runs only when the weights change: slots
        // under unchanged weights accumulate in `pending` and are booked in one pass.
        pending += Math.min(E, totalSlots - slot);
      }
    }

    let units = 0;
    if (pod) {
      unitAcc += s.pod.unitsPerSlot;
      while (unitAcc >= 1) {
        pod.runUnit(epoch);
        unitAcc -= 1;
        units++;
      }
    }
    if (slot < warmupSlots) continue;

    if (ecvrf) ecvrf.draw(slot, winners);
    else drawWinnersFast(fen, lambda, lotRng, winners);
    let produced = 0;
    let producer = -1;
    owners.length = 0;
    for (const i of winners) {
      tr.wins[i]!++;
      const m = pop.owner[i]!;
      if (!owners.includes(m)) {
        owners.push(m);
        tr.machineLed[m]!++;
      }
      if (pop.kind[i] === KIND.flaky && lotRng.chance(pop.rate[i]!)) {
        counters.missedLeaderships++;
        continue;
      }
      tr.produced[i]!++;
      produced++;
      if (producer < 0 || i < producer) producer = i;
    }
    counters.slots++;
    counters.leaders += winners.length;
    if (winners.length === 0) counters.noLeaderSlots++;
    if (winners.length >= 2) counters.multiLeaderSlots++;
    if (produced === 0) counters.emptySlots++;
    if (opts.onSlot) {
      row.slot = slot;
      row.epoch = epoch;
      row.leaders = winners.length;
      row.produced = produced;
      row.units = units;
      row.totalWeight = fen.total;
      row.producer = producer;
      opts.onSlot(row);
    }
    if (every > 0 && opts.onProgress && counters.slots % every === 0) opts.onProgress(counters.slots);
  }
  flushExpected();
  pod?.finish();
  for (let i = 0; i < n; i++) tr.finalWeight[i] = wpos[i]!;

  function currentWeights(): Float64Array {
    const w = new Float64Array(n);
    for (let i = 0; i < n; i++) w[i] = fen.get(i);
    return w;
  }

  return { scenario: s, population: pop, pod, lottery: counters, trainers: tr, sybils, warmupSlots, elapsedMs: now() - t0 };
}
