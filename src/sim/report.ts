/**
 * What a simulation reports: the JSON summary (`drill sim --json`), the terminal table, and the
 * per-trainer CSV rows. Pure: takes a SimRun, returns data or strings.
 *
 * Definitions (also in docs/SIMULATION.md):
 *  - emptySlotRate: measured slots in which no block was produced (no leader, or every leader
 *    offline); noLeaderRate: slots whose lottery had no winner (expected 1 − c);
 *    multiLeaderRate: slots with two or more winners.
 *  - fairness.pearson: Pearson correlation, across trainers, of block share (wins / all wins)
 *    and credited-hashrate share (the trainer's lottery weight share averaged over the measured
 *    slots). fairness.chi2p: p-value of a chi-square test of wins against the exact expected
 *    wins (Σ 1 − (1 − c)^(w/W) over slots), trainers binned to expected counts ≥ 5.
 *  - pod.catchRate: primary executions (the first-round replicas of a run of a unit in
 *    replicate mode; its single first run in spot-check mode; re-runs of reopened units
 *    included) that returned a falsified result and were listed faulty by their round's
 *    decision (so their trainer was quarantined for it) / such falsified primary executions in
 *    rounds that reached a decision (pod.catchRateSamples). A ratio of sums over the run.
 *  - pod.detectionRate: falsified executions caught (their trainer listed faulty, or the unit
 *    failed) / falsified executions run, all roles. pod.honestFalsePenaltyRate: honest
 *    executions listed faulty / honest executions. pod.cheaterCreditShare: net credited FLOPs of
 *    lazy, cheater and colluder trainers / all credited FLOPs. pod.verificationOverhead:
 *    executions (re-runs included) per accepted unit (1 = no verification at all).
 *  - pod.wrongAccepted: units whose final accepted result was falsified; wrongAcceptedRate: per
 *    accepted unit. pod.quarantined: worker-job quarantines; pod.released: quarantined trainers
 *    released (their minority result agreed with the unit's new decision); pod.reopenedUnits:
 *    reopenings of decided units.
 */
import type { SimRun } from './engine.ts';
import { isDishonest, KIND_NAMES } from './population.ts';
import { binnedChi2, pearson } from './stats.ts';
import type { Scenario } from './scenario.ts';
import type { BehaviourKind } from './scenario.ts';

export interface GroupShares {
  trainers: number;
  machines: number;
  hashrateShare: number;
  /** Share of credited FLOPs (net) over the run. */
  creditShare: number;
  /** Average lottery-weight share over the measured slots. */
  weightShare: number;
  /** Share of all lottery wins. */
  winShare: number;
  /** Expected share of wins under the exact lottery with the weights used. */
  expectedWinShare: number;
}

export interface SybilSummary {
  machine: number;
  identities: number;
  hashrateShare: number;
  weightShare: number;
  /** Share of all wins taken by its identities (counts two identities winning one slot twice). */
  winShare: number;
  /** Fraction of measured slots in which at least one of its identities led. */
  slotsLedRate: number;
  /** The same under the exact lottery: mean over slots of 1 − (1 − c)^(its weight share). */
  expectedSlotsLedRate: number;
}

/** Sybil machines listed in the summary (a scenario may have thousands). */
const MAX_SYBILS_LISTED = 20;

export interface SimSummary {
  scenario: Scenario;
  trainers: number;
  machines: number;
  slots: number;
  warmupSlots: number;
  blocks: number;
  emptySlotRate: number;
  noLeaderRate: number;
  multiLeaderRate: number;
  meanLeadersPerSlot: number;
  fairness: {
    pearson: number;
    chi2: number;
    chi2dof: number;
    chi2p: number;
    byBehaviour: Partial<Record<BehaviourKind, GroupShares>>;
    /** Each Sybil machine (first 20): its chance to lead a slot, observed and exact. */
    sybils: SybilSummary[];
  };
  pod: {
    mode: string;
    units: number;
    acceptedUnits: number;
    failedUnits: number;
    stalledUnits: number;
    unverifiedUnits: number;
    checkedUnits: number;
    executions: number;
    falsifiedExecutions: number;
    caughtFalsified: number;
    /** Falsified primary executions found faulty / falsified primary executions (see the header). */
    catchRate: number;
    /** Falsified primary executions catchRate is computed from. */
    catchRateSamples: number;
    /** …of which found faulty. */
    catchRateCaught: number;
    detectionRate: number;
    /** detectionRate split by the behaviour of the falsifying trainer. */
    detectionByBehaviour: Partial<Record<BehaviourKind, number>>;
    wrongAccepted: number;
    wrongAcceptedRate: number;
    quarantine: boolean;
    jobs: number;
    quarantined: number;
    released: number;
    reopenedUnits: number;
    /** Fault bans started in the lottery (trainer weight 0 for faultEpochs epochs). */
    faultBans: number;
    honestFalsePenaltyRate: number;
    honestUncreditedRate: number;
    cheaterCreditShare: number;
    cheaterHashrateShare: number;
    /** Lazy, cheater and colluder trainers' average lottery-weight share over the measured slots (after fault bans). */
    cheaterWeightShare: number;
    /** …and their share of all lottery wins. */
    cheaterWinShare: number;
    verificationOverhead: number;
    missedDeadlines: number;
    forfeitedFlops: number;
  } | null;
  elapsedMs: number;
}

const ratio = (a: number, b: number): number => (b > 0 ? a / b : NaN);

/** The summary of a run (the `--json` object). */
export function summarize(run: SimRun): SimSummary {
  const { population: pop, trainers: tr, lottery: lc, pod } = run;
  const n = pop.n;
  let totalWins = 0;
  let totalWeightSlots = 0;
  for (let i = 0; i < n; i++) {
    totalWins += tr.wins[i]!;
    totalWeightSlots += tr.weightSlots[i]!;
  }
  const blockShare = new Float64Array(n);
  const weightShare = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    blockShare[i] = ratio(tr.wins[i]!, totalWins);
    weightShare[i] = ratio(tr.weightSlots[i]!, totalWeightSlots);
  }
  const chi = binnedChi2(tr.wins, tr.expectedWins);

  let totalCredit = 0;
  let cheaterCredit = 0;
  let totalHash = 0;
  let cheaterHash = 0;
  let cheaterWS = 0;
  let cheaterWins = 0;
  for (let i = 0; i < n; i++) {
    const cr = pod ? Math.max(0, pod.trainers.credit[i]!) : 0;
    totalCredit += cr;
    totalHash += pop.hashrate[i]!;
    if (isDishonest(pop.kind[i]!)) {
      cheaterCredit += cr;
      cheaterHash += pop.hashrate[i]!;
      cheaterWS += tr.weightSlots[i]!;
      cheaterWins += tr.wins[i]!;
    }
  }

  const podOut: SimSummary['pod'] = pod
    ? (() => {
        const c = pod.counters;
        return {
          mode: run.scenario.pod.mode,
          units: c.units,
          acceptedUnits: c.acceptedUnits,
          failedUnits: c.failedUnits,
          stalledUnits: c.stalledUnits,
          unverifiedUnits: c.unverifiedUnits,
          checkedUnits: c.checkedUnits,
          executions: c.executions,
          falsifiedExecutions: c.falsifiedExecutions,
          caughtFalsified: c.caughtFalsified,
          catchRate: ratio(c.primaryCaught, c.primaryFalsified),
          catchRateSamples: c.primaryFalsified,
          catchRateCaught: c.primaryCaught,
          detectionRate: ratio(c.caughtFalsified, c.falsifiedExecutions),
          detectionByBehaviour: detectionByBehaviour(run),
          wrongAccepted: c.wrongAccepted,
          wrongAcceptedRate: ratio(c.wrongAccepted, c.acceptedUnits),
          quarantine: run.scenario.pod.quarantine,
          jobs: c.jobs,
          quarantined: c.quarantined,
          released: c.released,
          reopenedUnits: c.reopenedUnits,
          faultBans: lc.faultBans,
          honestFalsePenaltyRate: ratio(c.honestFaulty, c.honestExecutions),
          honestUncreditedRate: ratio(c.honestFaulty + c.honestInFailed, c.honestExecutions),
          cheaterCreditShare: ratio(cheaterCredit, totalCredit),
          cheaterHashrateShare: ratio(cheaterHash, totalHash),
          cheaterWeightShare: ratio(cheaterWS, totalWeightSlots),
          cheaterWinShare: ratio(cheaterWins, totalWins),
          verificationOverhead: ratio(c.executions, c.acceptedUnits),
          missedDeadlines: c.missedDeadlines,
          forfeitedFlops: c.forfeitedFlops,
        };
      })()
    : null;

  return {
    scenario: run.scenario,
    trainers: n,
    machines: pop.machines,
    slots: lc.slots,
    warmupSlots: run.warmupSlots,
    blocks: lc.slots - lc.emptySlots,
    emptySlotRate: ratio(lc.emptySlots, lc.slots),
    noLeaderRate: ratio(lc.noLeaderSlots, lc.slots),
    multiLeaderRate: ratio(lc.multiLeaderSlots, lc.slots),
    meanLeadersPerSlot: ratio(lc.leaders, lc.slots),
    fairness: {
      pearson: pearson(blockShare, weightShare),
      chi2: chi.chi2,
      chi2dof: chi.dof,
      chi2p: chi.p,
      byBehaviour: groupShares(run, totalCredit, totalHash, totalWins, totalWeightSlots),
      sybils: run.sybils.slice(0, MAX_SYBILS_LISTED).map((sy) => {
        let h = 0;
        let ws = 0;
        let wins = 0;
        for (let i = sy.first; i < sy.first + sy.identities; i++) {
          h += pop.hashrate[i]!;
          ws += tr.weightSlots[i]!;
          wins += tr.wins[i]!;
        }
        return {
          machine: sy.machine,
          identities: sy.identities,
          hashrateShare: ratio(h, totalHash),
          weightShare: ratio(ws, totalWeightSlots),
          winShare: ratio(wins, totalWins),
          slotsLedRate: ratio(tr.machineLed[sy.machine]!, lc.slots),
          expectedSlotsLedRate: ratio(sy.expectedLed, lc.slots),
        };
      }),
    },
    pod: podOut,
    elapsedMs: run.elapsedMs,
  };
}

function detectionByBehaviour(run: SimRun): Partial<Record<BehaviourKind, number>> {
  const { population: pop, pod } = run;
  const out: Partial<Record<BehaviourKind, number>> = {};
  if (!pod) return out;
  const f = new Map<number, [number, number]>();
  for (let i = 0; i < pop.n; i++) {
    if (!pod.trainers.falsified[i]) continue;
    const a = f.get(pop.kind[i]!) ?? [0, 0];
    a[0] += pod.trainers.falsified[i]!;
    a[1] += pod.trainers.caught[i]!;
    f.set(pop.kind[i]!, a);
  }
  for (const k of [...f.keys()].sort((a, b) => a - b)) out[KIND_NAMES[k]!] = ratio(f.get(k)![1], f.get(k)![0]);
  return out;
}

function groupShares(run: SimRun, totalCredit: number, totalHash: number, totalWins: number, totalWeightSlots: number): SimSummary['fairness']['byBehaviour'] {
  const { population: pop, trainers: tr, pod } = run;
  let totalExpected = 0;
  for (let i = 0; i < pop.n; i++) totalExpected += tr.expectedWins[i]!;
  const acc = new Map<number, { trainers: number; machines: Set<number>; h: number; cr: number; ws: number; wins: number; ew: number }>();
  for (let i = 0; i < pop.n; i++) {
    const k = pop.kind[i]!;
    let a = acc.get(k);
    if (!a) acc.set(k, (a = { trainers: 0, machines: new Set(), h: 0, cr: 0, ws: 0, wins: 0, ew: 0 }));
    a.trainers++;
    a.machines.add(pop.owner[i]!);
    a.h += pop.hashrate[i]!;
    a.cr += pod ? Math.max(0, pod.trainers.credit[i]!) : 0;
    a.ws += tr.weightSlots[i]!;
    a.wins += tr.wins[i]!;
    a.ew += tr.expectedWins[i]!;
  }
  const out: SimSummary['fairness']['byBehaviour'] = {};
  for (const k of [...acc.keys()].sort((a, b) => a - b)) {
    const a = acc.get(k)!;
    out[KIND_NAMES[k]!] = {
      trainers: a.trainers,
      machines: a.machines.size,
      hashrateShare: ratio(a.h, totalHash),
      creditShare: pod ? ratio(a.cr, totalCredit) : NaN,
      weightShare: ratio(a.ws, totalWeightSlots),
      winShare: ratio(a.wins, totalWins),
      expectedWinShare: ratio(a.ew, totalExpected),
    };
  }
  return out;
}

/** The summary as canonical JSON (NaN → null), for stdout and reproducibility checks. */
export function summaryJson(s: SimSummary, space?: number): string {
  return JSON.stringify(s, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), space);
}

const fmt = (x: number, digits = 4): string => (Number.isFinite(x) ? (Math.abs(x) >= 1e5 ? x.toExponential(3) : String(+x.toFixed(digits))) : '—');
const pct = (x: number): string => (Number.isFinite(x) ? `${(x * 100).toFixed(2)}%` : '—');

/** The terminal table. */
export function formatTable(s: SimSummary): string {
  const c = s.scenario.lottery.c;
  const rows: Array<[string, string]> = [
    ['scenario', `${s.scenario.name} (seed ${s.scenario.seed})`],
    ['trainers / machines', `${s.trainers} / ${s.machines}`],
    ['slots (+ warm-up)', `${s.slots} (+ ${s.warmupSlots})`],
    ['lottery', `${s.scenario.lottery.mode}, c = ${c}, epoch ${s.scenario.lottery.epochSlots} slots, lookback ${s.scenario.lottery.lookbackEpochs}`],
    ['no-leader slots', `${pct(s.noLeaderRate)}   (theory 1 − c = ${pct(1 - c)})`],
    ['empty slots', pct(s.emptySlotRate)],
    ['multi-leader slots', pct(s.multiLeaderRate)],
    ['fairness: pearson', fmt(s.fairness.pearson)],
    ['fairness: chi² p', `${fmt(s.fairness.chi2p)}   (chi² ${fmt(s.fairness.chi2, 1)}, dof ${s.fairness.chi2dof})`],
  ];
  if (s.pod) {
    const p = s.pod;
    rows.push(
      ['PoD mode', p.mode === 'replicate' ? `replicate, R = ${s.scenario.pod.replicas}, ${s.scenario.pod.policy}` : `spot-check, p = ${s.scenario.pod.sampleP}${s.scenario.pod.reputation.enabled ? ' (reputation)' : ''}, ${s.scenario.pod.policy}`],
      ['units (accepted / failed)', `${p.units} (${p.acceptedUnits} / ${p.failedUnits}${p.stalledUnits ? `; ${p.stalledUnits} stalled` : ''})`],
      ['quarantine', p.quarantine ? `on, jobs of ${s.scenario.pod.jobUnits} units: ${p.quarantined} quarantined, ${p.released} released, ${p.reopenedUnits} reopenings; ${p.faultBans} lottery bans of ${s.scenario.lottery.faultEpochs} epochs` : 'off'],
      ['catch rate', `${pct(p.catchRate)}   (${p.catchRateCaught} of ${p.catchRateSamples} falsified primary executions found faulty)`],
      ['detection rate', `${pct(p.detectionRate)}   (${p.caughtFalsified} of ${p.falsifiedExecutions} falsified${Object.keys(p.detectionByBehaviour).length > 1 ? '; ' + Object.entries(p.detectionByBehaviour).map(([k, v]) => `${k} ${pct(v)}`).join(', ') : ''})`],
      ['wrong results accepted', `${pct(p.wrongAcceptedRate)}   (${p.wrongAccepted} units)`],
      ['honest false penalty', pct(p.honestFalsePenaltyRate)],
      ['cheater credit share', `${pct(p.cheaterCreditShare)}   (hashrate share ${pct(p.cheaterHashrateShare)}; lottery weight ${pct(p.cheaterWeightShare)}, wins ${pct(p.cheaterWinShare)})`],
      ['verification overhead', `${fmt(p.verificationOverhead, 3)} executions / accepted unit`],
    );
  }
  const groups = Object.entries(s.fairness.byBehaviour);
  if (groups.length > 1 || s.pod) {
    rows.push(['', '']);
    rows.push(['behaviour', 'hashrate   credit     weight     wins (expected)']);
    for (const [k, g] of groups) {
      rows.push([`  ${k} (${g.trainers})`, `${pct(g.hashrateShare).padEnd(10)} ${pct(g.creditShare).padEnd(10)} ${pct(g.weightShare).padEnd(10)} ${pct(g.winShare)} (${pct(g.expectedWinShare)})`]);
    }
  }
  rows.push(['elapsed', `${fmt(s.elapsedMs / 1000, 2)} s`]);
  const w = Math.max(...rows.map((r) => r[0].length));
  return rows.map(([a, b]) => `${a.padEnd(w)}  ${b}`).join('\n') + '\n';
}

/** Header of trainers.csv. */
export const TRAINER_CSV_HEADER = 'trainer,machine,behaviour,hardware,hashrate,credit,weight_share,block_share,wins,expected_wins,produced,executions,falsified,caught,faulty,units,first_caught_at,quarantined,released,banned_slots';

/** trainers.csv rows, generated lazily (one string per trainer). */
export function* trainerCsvRows(run: SimRun): Generator<string> {
  const { population: pop, trainers: tr, pod, scenario } = run;
  let totalWins = 0;
  let totalWS = 0;
  for (let i = 0; i < pop.n; i++) {
    totalWins += tr.wins[i]!;
    totalWS += tr.weightSlots[i]!;
  }
  for (let i = 0; i < pop.n; i++) {
    const t = pod?.trainers;
    yield [
      `t${i}`, pop.owner[i], KIND_NAMES[pop.kind[i]!], scenario.hardware[pop.hw[i]!]!.name,
      pop.hashrate[i]!.toPrecision(6), t ? t.credit[i] : 0,
      ratio(tr.weightSlots[i]!, totalWS).toPrecision(6), ratio(tr.wins[i]!, totalWins).toPrecision(6),
      tr.wins[i], tr.expectedWins[i]!.toPrecision(6), tr.produced[i],
      t ? t.executions[i] : 0, t ? t.falsified[i] : 0, t ? t.caught[i] : 0, t ? t.faulty[i] : 0, t ? t.units[i] : 0, t ? t.firstCaughtAt[i] : -1,
      t ? t.quarantined[i] : 0, t ? t.released[i] : 0, tr.bannedSlots[i],
    ].join(',');
  }
}

/** Header and row formatter of slots.csv. */
export const SLOT_CSV_HEADER = 'slot,epoch,leaders,produced,producer,units,total_weight';
export function slotCsvRow(r: { slot: number; epoch: number; leaders: number; produced: number; producer: number; units: number; totalWeight: number }): string {
  return `${r.slot},${r.epoch},${r.leaders},${r.produced},${r.producer},${r.units},${r.totalWeight}`;
}

