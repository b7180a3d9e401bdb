/**
 * Charts of simulation results as SVG, drawn with Vega-Lite (compiled to Vega and rendered
 * headless with `renderer: 'none'` → `toSVG()`, which needs no canvas or browser).
 *
 * The spec builders are pure and exported so tests and docs can inspect them; `renderSvg`
 * does the rendering. Large populations are aggregated before plotting (see BLOCK_SHARE_BINS)
 * so an SVG stays small whatever the trainer count.
 */
import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { TopLevelSpec } from 'vega-lite';
import type { SimRun } from './engine.ts';
import { KIND_NAMES } from './population.ts';
import type { SweepRow } from './sweep.ts';

/**
 * Above this many trainers the block-share chart plots equal-count bins of trainers (sorted by
 * weight share) instead of single trainers: 2,000 points is about 400 KB of SVG; more would
 * make the file slow to open and no more readable.
 */
export const MAX_SCATTER_POINTS = 2000;
/** Number of bins when aggregating (enough to show the curve, few enough to read). */
export const BLOCK_SHARE_BINS = 200;

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

/** Render a Vega-Lite spec to an SVG string. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  // Long legend labels ("exact, from its lottery weight") must not be cut at Vega's 160 px.
  const withConfig = { ...spec, config: { legend: { labelLimit: 400 }, ...(spec.config ?? {}) } } as TopLevelSpec;
  const compiled = vl.compile(withConfig).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

interface SharePoint {
  weightShare: number;
  blockShare: number;
  behaviour: string;
  trainers: number;
}

/** Points of the block-share chart: one per trainer, or per bin of trainers for large runs. */
export function blockSharePoints(run: SimRun): SharePoint[] {
  const { population: pop, trainers: tr } = run;
  let tw = 0;
  let ts = 0;
  for (let i = 0; i < pop.n; i++) {
    tw += tr.wins[i]!;
    ts += tr.weightSlots[i]!;
  }
  if (!(tw > 0 && ts > 0)) return [];
  if (pop.n <= MAX_SCATTER_POINTS) {
    return Array.from({ length: pop.n }, (_, i) => ({ weightShare: tr.weightSlots[i]! / ts, blockShare: tr.wins[i]! / tw, behaviour: KIND_NAMES[pop.kind[i]!]!, trainers: 1 }));
  }
  // Per behaviour, equal-count bins by weight share; each bin's shares are summed then divided
  // by its size, i.e. the average trainer of the bin.
  const out: SharePoint[] = [];
  for (let k = 0; k < KIND_NAMES.length; k++) {
    const idx: number[] = [];
    for (let i = 0; i < pop.n; i++) if (pop.kind[i] === k) idx.push(i);
    if (!idx.length) continue;
    idx.sort((a, b) => tr.weightSlots[a]! - tr.weightSlots[b]!);
    const bins = Math.min(BLOCK_SHARE_BINS, idx.length);
    for (let b = 0; b < bins; b++) {
      const lo = Math.floor((b * idx.length) / bins);
      const hi = Math.floor(((b + 1) * idx.length) / bins);
      let w = 0;
      let s = 0;
      for (let j = lo; j < hi; j++) {
        w += tr.weightSlots[idx[j]!]!;
        s += tr.wins[idx[j]!]!;
      }
      const m = hi - lo;
      out.push({ weightShare: w / ts / m, blockShare: s / tw / m, behaviour: KIND_NAMES[k]!, trainers: m });
    }
  }
  return out;
}

/** Block share vs credited-hashrate (lottery weight) share, with the y = x line. */
export function blockShareSpec(run: SimRun, title = 'Block share vs credited-hashrate share'): TopLevelSpec {
  const pts = blockSharePoints(run);
  const max = pts.reduce((m, p) => Math.max(m, p.weightShare, p.blockShare), 0) * 1.05 || 1;
  const binned = run.population.n > MAX_SCATTER_POINTS;
  return {
    $schema: SCHEMA,
    title: { text: title, subtitle: binned ? `each point: the mean trainer of a bin of ~${Math.round(run.population.n / BLOCK_SHARE_BINS)} trainers (same behaviour)` : 'each point: one trainer' },
    width: 420,
    height: 420,
    layer: [
      {
        data: { values: [{ x: 0, y: 0 }, { x: max, y: max }] },
        mark: { type: 'line', color: '#888', strokeDash: [4, 4] },
        encoding: { x: { field: 'x', type: 'quantitative' }, y: { field: 'y', type: 'quantitative' } },
      },
      {
        data: { values: pts },
        mark: { type: 'point', filled: true, opacity: 0.6, size: 30 },
        encoding: {
          x: { field: 'weightShare', type: 'quantitative', title: 'credited-hashrate (lottery weight) share', scale: { domain: [0, max] } },
          y: { field: 'blockShare', type: 'quantitative', title: 'block (win) share', scale: { domain: [0, max] } },
          color: { field: 'behaviour', type: 'nominal', title: 'behaviour' },
        },
      },
    ],
  } as TopLevelSpec;
}

/**
 * Catch rate, detection rate, verification overhead and wrong results accepted against the
 * spot-check probability, with the replication points (replicas sweep) drawn as horizontal
 * reference lines. With --cross, one line (and one set of rules) per cross value.
 */
export function detectionOverheadSpec(rows: SweepRow[]): TopLevelSpec {
  const label = (r: SweepRow, base: string): string => (r.cross === null ? base : `${base}, ${crossLabel(r)}`);
  const spot = rows.filter((r) => r.param === 'sample-p').map((r) => ({ ...r, series: label(r, 'spot-check') }));
  const rep = rows.filter((r) => r.param === 'replicas').map((r) => ({ ...r, series: label(r, r.mode) }));
  // The long description is the panel's title: a rotated axis title longer than the panel
  // would push the panels apart.
  const panel = (field: 'catchRate' | 'detectionRate' | 'verificationOverhead' | 'wrongAcceptedRate', title: string, fmt: string, axis: string): Record<string, unknown> => ({
    width: 420,
    height: 150,
    title: { text: title, anchor: 'start', fontSize: 12 },
    layer: [
      {
        data: { values: spot },
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'value', type: 'quantitative', title: 'spot-check probability p' },
          y: { field, type: 'quantitative', title: axis, axis: { format: fmt } },
          color: { field: 'series', type: 'nominal', title: 'policy' },
        },
      },
      {
        data: { values: rep },
        mark: { type: 'rule', strokeDash: [5, 3] },
        encoding: { y: { field, type: 'quantitative' }, color: { field: 'series', type: 'nominal' } },
      },
    ],
  });
  return {
    $schema: SCHEMA,
    title: { text: 'Spot-check sampling vs full replication', subtitle: 'dashed: replication with R replicas' },
    vconcat: [
      panel('catchRate', 'catch rate: falsified primary runs found faulty', '.0%', 'catch rate'),
      panel('detectionRate', 'detection rate: falsified runs caught, all roles', '.0%', 'detection'),
      panel('verificationOverhead', 'executions per accepted unit', '.2f', 'executions'),
      panel('wrongAcceptedRate', 'accepted units with a wrong result', '.1%', 'wrong'),
    ],
    resolve: { scale: { color: 'shared' } },
  } as unknown as TopLevelSpec;
}

function crossLabel(r: SweepRow): string {
  if (r.cross === 'quarantine') return r.crossValue === 1 ? 'quarantine on' : 'quarantine off';
  return `${r.cross}=${r.crossValue}`;
}

/**
 * What each defence buys: for every policy swept (replication R, spot-check p), bars with and
 * without quarantine (`--cross quarantine=0,1`) of the wrong results accepted, the cheaters'
 * shares of credit and of lottery weight (after fault bans), the catch rate and the
 * verification overhead.
 */
export function defencesSpec(rows: SweepRow[]): TopLevelSpec {
  const pol = rows.filter((r) => r.param === 'replicas' || r.param === 'sample-p');
  const short = (r: SweepRow): string => (r.param === 'replicas' ? `R = ${r.value}` : `spot-check p = ${r.value}`);
  const policies = [...new Set(pol.map(short))];
  const values = pol.flatMap((r) => {
    const q = r.quarantine ? 'quarantine on' : 'quarantine off';
    const policy = short(r);
    return [
      { policy, quarantine: q, metric: 'wrong results accepted', v: r.wrongAcceptedRate },
      { policy, quarantine: q, metric: "cheaters' share of credit", v: r.cheaterCreditShare },
      { policy, quarantine: q, metric: "cheaters' share of lottery weight", v: r.cheaterWeightShare },
      { policy, quarantine: q, metric: 'catch rate', v: r.catchRate },
      { policy, quarantine: q, metric: 'executions per accepted unit', v: r.verificationOverhead },
    ];
  });
  const panel = (metric: string, fmt: string): Record<string, unknown> => ({
    width: 110 * policies.length,
    height: 120,
    title: { text: metric, anchor: 'start', fontSize: 12 },
    transform: [{ filter: { field: 'metric', equal: metric } }],
    mark: { type: 'bar' },
    encoding: {
      x: { field: 'policy', type: 'nominal', sort: policies, title: null, axis: { labelAngle: 0 } },
      xOffset: { field: 'quarantine', type: 'nominal', sort: ['quarantine off', 'quarantine on'] },
      y: { field: 'v', type: 'quantitative', title: null, axis: { format: fmt } },
      color: { field: 'quarantine', type: 'nominal', sort: ['quarantine off', 'quarantine on'], title: null, scale: { range: ['#d62728', '#2ca02c'] } },
      tooltip: [{ field: 'policy' }, { field: 'quarantine' }, { field: 'v', format: fmt }],
    },
  });
  return {
    $schema: SCHEMA,
    title: { text: 'What each defence buys', subtitle: 'each policy with and without per-job quarantine (re-run of the units a caught trainer decided, forfeit, lottery ban)' },
    data: { values },
    vconcat: [
      panel('wrong results accepted', '.1%'),
      panel("cheaters' share of credit", '.1%'),
      panel("cheaters' share of lottery weight", '.1%'),
      panel('catch rate', '.0%'),
      panel('executions per accepted unit', '.2f'),
    ],
  } as unknown as TopLevelSpec;
}

/**
 * The Sybil study: one machine split into more and more identities. Top: the fraction of slots
 * it leads (observed; exact from its weight; and the ideal 1 − (1 − c)^hashrateShare). Middle:
 * its share of lottery weight (credited FLOPs) against its hashrate share. Bottom: the
 * no-leader rate.
 */
export function sybilSpec(rows: SweepRow[]): TopLevelSpec {
  const sy = rows.filter((r) => r.param === 'identities');
  const led = sy.flatMap((r) => [
    { identities: r.value, series: 'observed', v: r.sybilSlotsLedRate },
    { identities: r.value, series: 'exact, from its lottery weight', v: r.sybilExpectedSlotsLedRate },
    { identities: r.value, series: 'ideal: 1 − (1 − c)^(hashrate share)', v: r.sybilHashrateShare === null ? null : 1 - (1 - r.c) ** r.sybilHashrateShare },
  ]);
  const share = sy.flatMap((r) => [
    { identities: r.value, series: 'hashrate share', v: r.sybilHashrateShare },
    { identities: r.value, series: 'lottery weight (credit) share', v: r.sybilWeightShare },
    { identities: r.value, series: 'share of all wins', v: r.sybilWinShare },
  ]);
  const x = { field: 'identities', type: 'quantitative', scale: { type: 'log' }, title: 'identities of the Sybil machine' };
  const panel = (values: unknown[], title: string, fmt: string, legend: string): Record<string, unknown> => ({
    width: 420,
    height: 170,
    data: { values },
    mark: { type: 'line', point: true },
    encoding: {
      x,
      y: { field: 'v', type: 'quantitative', title, scale: { zero: false }, axis: { format: fmt } },
      color: { field: 'series', type: 'nominal', title: legend },
    },
  });
  return {
    $schema: SCHEMA,
    title: { text: 'Splitting one machine into Sybil identities', subtitle: 'the lottery gives a machine the same chance to lead a slot however it splits its weight' },
    vconcat: [
      panel(led, 'slots led by the machine', '.2%', 'slots led'),
      panel(share, 'share', '.1%', 'shares'),
      {
        width: 420,
        height: 120,
        data: { values: sy },
        mark: { type: 'line', point: true },
        encoding: {
          x: { ...x, field: 'value' },
          y: { field: 'noLeaderRate', type: 'quantitative', title: 'no-leader slot rate', scale: { domain: [0.7, 0.8] }, axis: { format: '.1%' } },
        },
      },
    ],
    resolve: { scale: { color: 'independent' } },
  } as unknown as TopLevelSpec;
}

/** Honest false-penalty rate against the hardware noise in ULPs. */
export function noiseSpec(rows: SweepRow[]): TopLevelSpec {
  return {
    $schema: SCHEMA,
    title: 'Honest false penalties vs float noise between hardware classes',
    width: 420,
    height: 240,
    data: { values: rows.filter((r) => r.param === 'noise') },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'value', type: 'quantitative', scale: { type: 'symlog' }, title: 'noise between hardware classes (float32 ULPs)' },
      y: { field: 'honestFalsePenaltyRate', type: 'quantitative', title: 'honest executions listed faulty', axis: { format: '.1%' } },
    },
  } as TopLevelSpec;
}
