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
 *  - `cheat-rate` the random cheaters' falsification rate
 */
import { UserError } from '../util/errors.ts';
import { runSimulation } from './engine.ts';
import type { RunOptions } from './engine.ts';
import { summarize } from './report.ts';
import type { SimSummary } from './report.ts';
import type { Scenario } from './scenario.ts';

export const SWEEP_PARAMS = ['sample-p', 'replicas', 'identities', 'noise', 'c', 'cheat-rate'] as const;
export type SweepParam = (typeof SWEEP_PARAMS)[number];

export interface SweepSpec {
  param: SweepParam;
  values: number[];
}

export interface SweepRow {
  param: SweepParam;
  value: number;
  mode: string;
  c: number;
  detectionRate: number | null;
  verificationOverhead: number | null;
  honestFalsePenaltyRate: number | null;
  cheaterCreditShare: number | null;
  wrongAcceptedRate: number | null;
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

/**
 * Parse `NAME=V1,V2,...`.
 * @throws UserError naming `--sweep`.
 */
export function parseSweep(text: string): SweepSpec {
  const m = /^([a-z-]+)=(.+)$/.exec(text.trim());
  if (!m || !(SWEEP_PARAMS as readonly string[]).includes(m[1]!)) {
    throw new UserError('--sweep', `NAME=V1,V2,... with NAME one of ${SWEEP_PARAMS.join(', ')}`, text);
  }
  const values = m[2]!.split(',').map((v) => Number(v.trim()));
  if (values.length === 0 || values.some((v) => !Number.isFinite(v) || v < 0)) {
    throw new UserError('--sweep', 'a comma-separated list of non-negative numbers', m[2]);
  }
  const param = m[1] as SweepParam;
  const bad = values.find((v) => ((param === 'sample-p' || param === 'cheat-rate') && v > 1) || (param === 'c' && (v <= 0 || v > 1)) || ((param === 'replicas' || param === 'identities') && (!Number.isInteger(v) || v < 1)) || (param === 'noise' && !Number.isInteger(v)));
  if (bad !== undefined) throw new UserError('--sweep', `values valid for ${param}`, bad);
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
  }
  return s;
}

/** One row of a sweep from a run's summary. */
export function sweepRow(param: SweepParam, value: number, s: SimSummary): SweepRow {
  const sy = s.fairness.sybils[0];
  return {
    param,
    value,
    mode: s.pod ? (s.pod.mode === 'replicate' ? `replicate R=${s.scenario.pod.replicas}` : `spot-check p=${s.scenario.pod.sampleP}`) : 'lottery only',
    c: s.scenario.lottery.c,
    detectionRate: s.pod?.detectionRate ?? null,
    verificationOverhead: s.pod?.verificationOverhead ?? null,
    honestFalsePenaltyRate: s.pod?.honestFalsePenaltyRate ?? null,
    cheaterCreditShare: s.pod?.cheaterCreditShare ?? null,
    wrongAcceptedRate: s.pod?.wrongAcceptedRate ?? null,
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

/** Run every value of every sweep (in order) on the base scenario. */
export function runSweeps(base: Scenario, sweeps: SweepSpec[], onRow?: (r: SweepRow) => void, opts: Pick<RunOptions, 'vrf'> = {}): SweepRow[] {
  const rows: SweepRow[] = [];
  for (const sw of sweeps) {
    for (const v of sw.values) {
      const row = sweepRow(sw.param, v, summarize(runSimulation(applySweepValue(base, sw.param, v), opts)));
      rows.push(row);
      onRow?.(row);
    }
  }
  return rows;
}
