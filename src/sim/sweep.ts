/**
 * Parameter sweeps: run one scenario many times, varying one parameter per sweep, and collect
 * one row of headline metrics per run (pure apart from the clock in runSimulation).
 *
 * Sweepable parameters (the CLI's `--sweep NAME=V1,V2,...`):
 *  - `sample-p`   spot-check mode with sampling probability p
 *  - `replicas`   replicate mode with R replicas
 *  - `identities` every Sybil set split into this many identities
 *  - `noise`      honest ULP difference between hardware classes
 *  - `c`          the lottery's c
 *  - `cheat-rate` the cheaters' and colluders' falsification rate
 *  - `colluders`  the share of the cheaters that collude (see splitCheaters)
 *  - `quarantine` 0 = off, 1 = on
 *  - `job-units`  units per job
 *  - `fault-epochs` epochs of lottery ban after a quarantine
 *
 * `--cross NAME=V1,...` adds a second dimension: every sweep is run once per cross value (the
 * cross value applied first), e.g. `--cross quarantine=0,1` to compare every policy with and
 * without quarantine.
 */
import { UserError } from '../util/errors.ts';
import { runSimulation } from './engine.ts';
import type { RunOptions } from './engine.ts';
import { summarize } from './report.ts';
import type { SimSummary } from './report.ts';
import { splitCheaters } from './scenario.ts';
import type { Scenario } from './scenario.ts';

export const SWEEP_PARAMS = ['sample-p', 'replicas', 'identities', 'noise', 'c', 'cheat-rate', 'colluders', 'quarantine', 'job-units', 'fault-epochs'] as const;
export type SweepParam = (typeof SWEEP_PARAMS)[number];

export interface SweepSpec {
  param: SweepParam;
  values: number[];
}

export interface SweepRow {
  /** The --cross parameter and its value for this row; null without --cross. */
  cross: SweepParam | null;
  crossValue: number | null;
  param: SweepParam;
  value: number;
  mode: string;
  c: number;
  /** Quarantine on or off (null: no PoD). */
  quarantine: boolean | null;
  catchRate: number | null;
  catchRateSamples: number | null;
  detectionRate: number | null;
  verificationOverhead: number | null;
  honestFalsePenaltyRate: number | null;
  cheaterCreditShare: number | null;
  cheaterWeightShare: number | null;
  wrongAcceptedRate: number | null;
  quarantined: number | null;
  released: number | null;
  reopenedUnits: number | null;
  noLeaderRate: number;
  multiLeaderRate: number;
  pearson: number;
  chi2p: number;
  /** The first Sybil machine: hashrate share, share of wins, and the fraction of slots it led (observed, exact). */
  sybilHashrateShare: number | null;
  /** Its average share of the lottery weight (credited FLOPs). */
  sybilWeightShare: number | null;
  sybilWinShare: number | null;
  sybilSlotsLedRate: number | null;
  sybilExpectedSlotsLedRate: number | null;
  elapsedMs: number;
}

/** Columns of sweep.csv, in order. */
export const SWEEP_CSV_COLUMNS: Array<keyof SweepRow> = [
  'cross', 'crossValue', 'param', 'value', 'mode', 'c', 'quarantine', 'catchRate', 'catchRateSamples', 'detectionRate', 'verificationOverhead',
  'honestFalsePenaltyRate', 'cheaterCreditShare', 'cheaterWeightShare', 'wrongAcceptedRate', 'quarantined', 'released', 'reopenedUnits', 'noLeaderRate', 'multiLeaderRate',
  'pearson', 'chi2p', 'sybilHashrateShare', 'sybilWeightShare', 'sybilWinShare', 'sybilSlotsLedRate', 'sybilExpectedSlotsLedRate', 'elapsedMs',
];

/**
 * Parse `NAME=V1,V2,...`.
 * @param flag the flag named in errors (`--sweep` or `--cross`)
 * @throws UserError naming the flag.
 */
export function parseSweep(text: string, flag = '--sweep'): SweepSpec {
  const m = /^([a-z-]+)=(.+)$/.exec(text.trim());
  if (!m || !(SWEEP_PARAMS as readonly string[]).includes(m[1]!)) {
    throw new UserError(flag, `NAME=V1,V2,... with NAME one of ${SWEEP_PARAMS.join(', ')}`, text);
  }
  const values = m[2]!.split(',').map((v) => Number(v.trim()));
  if (values.length === 0 || values.some((v) => !Number.isFinite(v) || v < 0)) {
    throw new UserError(flag, 'a comma-separated list of non-negative numbers', m[2]);
  }
  const param = m[1] as SweepParam;
  const integer = param === 'replicas' || param === 'identities' || param === 'noise' || param === 'job-units' || param === 'fault-epochs';
  const bad = values.find((v) =>
    ((param === 'sample-p' || param === 'cheat-rate' || param === 'colluders') && v > 1) ||
    (param === 'c' && (v <= 0 || v > 1)) ||
    (integer && !Number.isInteger(v)) ||
    ((param === 'replicas' || param === 'identities' || param === 'job-units') && v < 1) ||
    (param === 'replicas' && v > 64) ||
    (param === 'quarantine' && v !== 0 && v !== 1));
  if (bad !== undefined) throw new UserError(flag, `values valid for ${param}${param === 'quarantine' ? ' (0 = off, 1 = on)' : ''}`, bad);
  return { param, values };
}

/** The scenario with one parameter changed (a deep copy; the input is not modified). */
export function applySweepValue(base: Scenario, param: SweepParam, value: number): Scenario {
  const s: Scenario = structuredClone(base);
  switch (param) {
    case 'sample-p':
      s.pod.mode = 'spot-check';
      s.pod.sampleP = value;
      break;
    case 'replicas':
      s.pod.mode = 'replicate';
      s.pod.replicas = value;
      break;
    case 'identities':
      for (const b of s.behaviours) if (b.kind === 'sybil') b.identities = value;
      break;
    case 'noise':
      s.noiseUlp = value;
      break;
    case 'c':
      s.lottery.c = value;
      break;
    case 'cheat-rate':
      for (const b of s.behaviours) if (b.kind === 'cheater' || b.kind === 'colluder') b.cheatRate = value;
      break;
    case 'colluders':
      splitCheaters(s, value);
      break;
    case 'quarantine':
      s.pod.quarantine = value === 1;
      break;
    case 'job-units':
      s.pod.jobUnits = value;
      break;
    case 'fault-epochs':
      s.lottery.faultEpochs = value;
      break;
  }
  return s;
}

/** One row of a sweep from a run's summary. */
export function sweepRow(param: SweepParam, value: number, s: SimSummary, cross: { param: SweepParam; value: number } | null = null): SweepRow {
  const sy = s.fairness.sybils[0];
  return {
    cross: cross?.param ?? null,
    crossValue: cross?.value ?? null,
    param,
    value,
    mode: s.pod ? (s.pod.mode === 'replicate' ? `replicate R=${s.scenario.pod.replicas}` : `spot-check p=${s.scenario.pod.sampleP}`) : 'lottery only',
    c: s.scenario.lottery.c,
    quarantine: s.pod?.quarantine ?? null,
    catchRate: s.pod?.catchRate ?? null,
    catchRateSamples: s.pod?.catchRateSamples ?? null,
    detectionRate: s.pod?.detectionRate ?? null,
    verificationOverhead: s.pod?.verificationOverhead ?? null,
    honestFalsePenaltyRate: s.pod?.honestFalsePenaltyRate ?? null,
    cheaterCreditShare: s.pod?.cheaterCreditShare ?? null,
    cheaterWeightShare: s.pod?.cheaterWeightShare ?? null,
    wrongAcceptedRate: s.pod?.wrongAcceptedRate ?? null,
    quarantined: s.pod?.quarantined ?? null,
    released: s.pod?.released ?? null,
    reopenedUnits: s.pod?.reopenedUnits ?? null,
    noLeaderRate: s.noLeaderRate,
    multiLeaderRate: s.multiLeaderRate,
    pearson: s.fairness.pearson,
    chi2p: s.fairness.chi2p,
    sybilHashrateShare: sy?.hashrateShare ?? null,
    sybilWeightShare: sy?.weightShare ?? null,
    sybilWinShare: sy?.winShare ?? null,
    sybilSlotsLedRate: sy?.slotsLedRate ?? null,
    sybilExpectedSlotsLedRate: sy?.expectedSlotsLedRate ?? null,
    elapsedMs: s.elapsedMs,
  };
}

/**
 * Run every value of every sweep (in order) on the base scenario — once per value of `cross`
 * when given (the cross value applied first, then the sweep value).
 */
export function runSweeps(base: Scenario, sweeps: SweepSpec[], onRow?: (r: SweepRow) => void, opts: Pick<RunOptions, 'vrf'> = {}, cross?: SweepSpec): SweepRow[] {
  const rows: SweepRow[] = [];
  const crossValues: Array<number | null> = cross ? cross.values : [null];
  for (const cv of crossValues) {
    const b = cross && cv !== null ? applySweepValue(base, cross.param, cv) : base;
    for (const sw of sweeps) {
      for (const v of sw.values) {
        const row = sweepRow(sw.param, v, summarize(runSimulation(applySweepValue(b, sw.param, v), opts)), cross && cv !== null ? { param: cross.param, value: cv } : null);
        rows.push(row);
        onRow?.(row);
      }
    }
  }
  return rows;
}
