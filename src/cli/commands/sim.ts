/**
 * `drill sim`: the PoD / VRF-lottery research simulator.
 *
 *   drill sim [--scenario FILE.json|yaml] [--trainers N] [--slots S] [--c C] [--replicas R]
 *             [--sample-p P] [--cheaters F] [--cheat-rate Q] [--colluders F] [--quarantine on|off]
 *             [--no-quarantine] [--job-units N] [--fault-epochs N] [--noise ULP] [--seed X]
 *             [--lottery fast|ecvrf] [--sweep NAME=V1,V2,...]... [--cross NAME=V1,V2,...]
 *             [--json] [--out DIR]
 *
 * Flags override the scenario file. Prints a summary table (or, with --json, one JSON object on
 * stdout); with --out writes trainers.csv, slots.csv (streamed while the run goes) and
 * block-share.svg — or, with --sweep, sweep.csv and the sweep's charts (with --cross quarantine=0,1
 * and replicas/sample-p sweeps, defences.svg: what each defence buys).
 */
import { readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { Command } from '../command.ts';
import { parseArgs, str, bool, int, num, list, helpText } from '../args.ts';
import type { FlagSpec } from '../args.ts';
import { UserError } from '../../util/errors.ts';
import { resolveScenario, MAX_TRAINERS } from '../../sim/scenario.ts';
import type { ScenarioOverrides } from '../../sim/scenario.ts';
import { runSimulation } from '../../sim/engine.ts';
import { summarize, summaryJson, formatTable, TRAINER_CSV_HEADER, trainerCsvRows, SLOT_CSV_HEADER, slotCsvRow } from '../../sim/report.ts';
import { parseSweep, runSweeps, SWEEP_CSV_COLUMNS } from '../../sim/sweep.ts';
import type { SweepRow } from '../../sim/sweep.ts';
import { CsvFileWriter } from '../../sim/csv.ts';
import { loadEcvrf } from '../../sim/lottery.ts';
import { renderSvg, blockShareSpec, detectionOverheadSpec, sybilSpec, noiseSpec, defencesSpec } from '../../sim/charts.ts';

const FLAGS: Record<string, FlagSpec> = {
  scenario: { type: 'string', help: 'scenario file (.json, .yaml or .yml); flags override it' },
  trainers: { type: 'string', help: 'number of trainer machines' },
  slots: { type: 'string', help: 'measured slots' },
  c: { type: 'string', help: 'lottery c: probability that a slot has a leader' },
  replicas: { type: 'string', help: 'PoD replication R (selects replicate mode)' },
  'sample-p': { type: 'string', help: 'spot-check probability P (selects spot-check mode)' },
  cheaters: { type: 'string', help: 'fraction of trainers that are random cheaters' },
  'cheat-rate': { type: 'string', help: 'fraction of their units the cheaters falsify' },
  colluders: { type: 'string', help: 'share of the cheaters that collude (one group, one shared wrong answer); the rest cheat independently' },
  quarantine: { type: 'string', help: 'on|off: quarantine a faulty trainer for the rest of its job and re-run the units it decided (default on)' },
  'no-quarantine': { type: 'boolean', help: 'the same as --quarantine off' },
  'job-units': { type: 'string', help: 'work units per job (quarantine lasts to the end of the job; default 64)' },
  'fault-epochs': { type: 'string', help: 'epochs a quarantined trainer has lottery weight 0 (default 2; 0 = no ban)' },
  noise: { type: 'string', help: 'honest float noise between hardware classes, in float32 ULPs' },
  seed: { type: 'string', help: 'random seed (integer or string); the same seed gives the same results' },
  lottery: { type: 'string', help: 'fast (exact in distribution) or ecvrf (real RFC 9381 proofs; small runs)' },
  sweep: { type: 'string', multiple: true, help: 'NAME=V1,V2,... re-run varying sample-p|replicas|identities|noise|c|cheat-rate|colluders|quarantine|job-units|fault-epochs (repeatable)' },
  cross: { type: 'string', help: 'NAME=V1,V2,...: run every sweep once per value of NAME (e.g. quarantine=0,1)' },
  json: { type: 'boolean', help: 'print one JSON object on stdout instead of the table' },
  out: { type: 'string', help: 'directory for CSV files and SVG charts' },
  help: { type: 'boolean', help: 'show this help' },
};

function loadScenarioFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new UserError('--scenario', 'a readable JSON or YAML file', path);
  }
  try {
    return /\.ya?ml$/i.test(path) ? parseYaml(text) : JSON.parse(text);
  } catch (e) {
    throw new UserError('--scenario', `valid ${/\.ya?ml$/i.test(path) ? 'YAML' : 'JSON'}`, path, e instanceof Error ? e.message.split('\n')[0] : undefined);
  }
}

function overridesFrom(p: ReturnType<typeof parseArgs>): ScenarioOverrides {
  const o: ScenarioOverrides = {};
  const set = <K extends keyof ScenarioOverrides>(k: K, v: ScenarioOverrides[K] | undefined): void => {
    if (v !== undefined) o[k] = v;
  };
  set('trainers', int(p, 'trainers', 1, MAX_TRAINERS));
  set('slots', int(p, 'slots', 1, 1e9));
  set('c', num(p, 'c', Number.MIN_VALUE, 1));
  set('replicas', int(p, 'replicas', 1, 64));
  set('sampleP', num(p, 'sample-p', 0, 1));
  set('cheaters', num(p, 'cheaters', 0, 1));
  set('cheatRate', num(p, 'cheat-rate', 0, 1));
  set('colluders', num(p, 'colluders', 0, 1));
  set('jobUnits', int(p, 'job-units', 1, 1e9));
  set('faultEpochs', int(p, 'fault-epochs', 0, 1e6));
  const q = str(p, 'quarantine');
  if (q !== undefined && !['on', 'off', 'true', 'false', '1', '0'].includes(q)) throw new UserError('--quarantine', 'on or off', q);
  if (q !== undefined && bool(p, 'no-quarantine')) throw new UserError('--no-quarantine', 'not together with --quarantine', q);
  if (q !== undefined) o.quarantine = q === 'on' || q === 'true' || q === '1';
  if (bool(p, 'no-quarantine')) o.quarantine = false;
  set('noise', int(p, 'noise', 0, 1 << 22));
  const seed = str(p, 'seed');
  if (seed !== undefined) o.seed = /^-?\d+$/.test(seed) && Number.isSafeInteger(Number(seed)) ? Number(seed) : seed;
  const lot = str(p, 'lottery');
  if (lot !== undefined) {
    if (lot !== 'fast' && lot !== 'ecvrf') throw new UserError('--lottery', 'fast or ecvrf', lot);
    o.lotteryMode = lot;
  }
  return o;
}

function formatSweepTable(rows: SweepRow[]): string {
  const f = (x: number | null): string => (x === null || !Number.isFinite(x) ? '—' : String(+x.toFixed(4)));
  const cross = rows.some((r) => r.cross !== null);
  const head = [...(cross ? ['cross'] : []), 'param', 'value', 'mode', 'quar', 'catch', 'detect', 'overhead', 'wrongAcc', 'honestFP', 'cheatCred', 'cheatWt', 'noLeader', 'pearson', 'sybilLed'];
  const body = rows.map((r) => [...(cross ? [`${r.cross}=${r.crossValue}`] : []), r.param, String(r.value), r.mode, r.quarantine === null ? '—' : r.quarantine ? 'on' : 'off', f(r.catchRate), f(r.detectionRate), f(r.verificationOverhead), f(r.wrongAcceptedRate), f(r.honestFalsePenaltyRate), f(r.cheaterCreditShare), f(r.cheaterWeightShare), f(r.noLeaderRate), f(r.pearson), f(r.sybilSlotsLedRate)]);
  const w = head.map((h, k) => Math.max(h.length, ...body.map((b) => b[k]!.length)));
  return [head, ...body].map((r) => r.map((c, k) => c.padEnd(w[k]!)).join('  ')).join('\n') + '\n';
}

export const command: Command = {
  name: 'sim',
  summary: 'PoD / VRF-lottery research simulator',
  async run(argv) {
    const p = parseArgs(argv, FLAGS);
    if (bool(p, 'help')) {
      process.stdout.write(helpText('usage: drill sim [--scenario FILE] [flags] [--json] [--out DIR]', FLAGS));
      return 0;
    }
    if (p.positionals.length) throw new UserError('drill sim', 'flags only', p.positionals[0]);
    const file = str(p, 'scenario');
    const scenario = resolveScenario(file ? loadScenarioFile(file) : {}, overridesFrom(p));
    const json = bool(p, 'json');
    const out = str(p, 'out');
    if (out) {
      try {
        mkdirSync(out, { recursive: true });
      } catch {
        throw new UserError('--out', 'a directory that can be created', out);
      }
    }
    const sweeps = list(p, 'sweep').map((t) => parseSweep(t));
    const crossText = str(p, 'cross');
    const cross = crossText === undefined ? undefined : parseSweep(crossText, '--cross');
    if (cross && !sweeps.length) throw new UserError('--cross', 'to come with at least one --sweep', crossText);
    // The curve code is loaded only when a run proves real ECVRF.
    const vrf = scenario.lottery.mode === 'ecvrf' ? await loadEcvrf() : undefined;

    if (sweeps.length) {
      const t0 = performance.now();
      const rows = runSweeps(scenario, sweeps, (r) => {
        if (!json) process.stderr.write(`  ${r.cross !== null ? `${r.cross}=${r.crossValue} ` : ''}${r.param}=${r.value}: ${(r.elapsedMs / 1000).toFixed(1)} s\n`);
      }, { vrf }, cross);
      if (out) {
        const w = new CsvFileWriter(join(out, 'sweep.csv'), SWEEP_CSV_COLUMNS.join(','));
        for (const r of rows) w.row(SWEEP_CSV_COLUMNS.map((k) => String(r[k] ?? '')).join(','));
        w.close();
        const params = new Set(rows.map((r) => r.param));
        if (params.has('sample-p') || params.has('replicas')) writeFileSync(join(out, 'detection-overhead.svg'), await renderSvg(detectionOverheadSpec(rows)));
        if (params.has('identities')) writeFileSync(join(out, 'sybil.svg'), await renderSvg(sybilSpec(rows)));
        if (params.has('noise')) writeFileSync(join(out, 'noise.svg'), await renderSvg(noiseSpec(rows)));
        if (cross?.param === 'quarantine' && (params.has('sample-p') || params.has('replicas'))) writeFileSync(join(out, 'defences.svg'), await renderSvg(defencesSpec(rows)));
      }
      if (json) process.stdout.write(JSON.stringify({ scenario, sweep: rows, elapsedMs: performance.now() - t0 }, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v)) + '\n');
      else process.stdout.write(formatSweepTable(rows));
      return 0;
    }

    const slotCsv = out ? new CsvFileWriter(join(out, 'slots.csv'), SLOT_CSV_HEADER) : null;
    let run;
    try {
      run = runSimulation(scenario, { vrf, ...(slotCsv ? { onSlot: (r) => slotCsv.row(slotCsvRow(r)) } : {}) });
    } finally {
      slotCsv?.close();
    }
    const summary = summarize(run);
    if (out) {
      const w = new CsvFileWriter(join(out, 'trainers.csv'), TRAINER_CSV_HEADER);
      for (const line of trainerCsvRows(run)) w.row(line);
      w.close();
      writeFileSync(join(out, 'block-share.svg'), await renderSvg(blockShareSpec(run)));
      writeFileSync(join(out, 'summary.json'), summaryJson(summary, 2) + '\n');
    }
    if (json) process.stdout.write(summaryJson(summary) + '\n');
    else {
      process.stdout.write(formatTable(summary));
      if (out) {
        process.stdout.write(`\nwrote ${join(out, 'trainers.csv')}, slots.csv, block-share.svg, summary.json\n`);
        if (summary.pod) process.stdout.write('(detection and overhead against p need several runs: add --sweep sample-p=0.05,0.1,0.2,0.5,1 --sweep replicas=2,3)\n');
      }
    }
    return 0;
  },
};
