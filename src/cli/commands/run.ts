/**
 * `drill run`: a partner's batch job on an embedded local grid.
 *   drill run --model M.onnx --input NAME=X.npy [...] --out DIR [--workers N] [--replicas R]
 *             [--audit P] [--unit-rows B] [--compare POLICY] [--batch-axis NAME=AXIS] [--broadcast NAME]
 *             [--cheaters K [--cheat MODE]] [--threads T] [--seed S] [--json]
 *   drill run --job job.json --out DIR [...]
 */
import type { Command } from '../command.ts';
import { parseArgs, str, list, int, num, bool, helpText } from '../args.ts';
import type { FlagSpec, ParsedArgs } from '../args.ts';
import { UserError } from '../../util/errors.ts';
import { CHEAT_MODES, parseCheatMode } from '../../worker/cheat.ts';
import type { CheatMode } from '../../worker/cheat.ts';
import { DEFAULT_POLICY } from '../../pod/policy.ts';
import { prepareJob, readJobManifest, DEFAULT_REPLICAS, inputAxis, outputAxis } from '../../coordinator/job.ts';
import type { JobRequest, JobSpec } from '../../coordinator/job.ts';
import type { JobReport } from '../../coordinator/service.ts';
import { LocalGrid } from '../../node/local-grid.ts';
import type { LocalGridOptions } from '../../node/local-grid.ts';
import { ProgressBar, formatSummary, summaryFields } from '../progress.ts';
import { LOG_FORMAT_FLAG, cliOutput, logFormatOf } from '../output.ts';
import type { CliOutput } from '../output.ts';
import { trace } from '../../util/trace.ts';

export const RUN_FLAGS: Record<string, FlagSpec> = {
  model: { type: 'string', help: 'the ONNX model file' },
  input: { type: 'string', multiple: true, help: 'NAME=FILE.npy, once per model input (FILE.npy alone for a single-input model)' },
  job: { type: 'string', help: 'a job manifest (JSON: model, inputs, policy, replicas, unitRows, batchAxes, broadcast) instead of --model/--input' },
  out: { type: 'string', help: 'output directory: <output name>.npy per model output, plus report.json', default: 'drill-out' },
  workers: { type: 'string', help: 'honest workers in the embedded grid', default: '3' },
  replicas: { type: 'string', help: `workers that run each unit (default ${DEFAULT_REPLICAS}, or 1 with --audit)` },
  audit: { type: 'string', help: 'spot checks: run each unit once (--replicas 1) and re-run this fraction of units, chosen at random after the result is committed, on a second random worker (e.g. 0.1)' },
  'unit-rows': { type: 'string', help: 'rows per work unit (default: ~40 GFLOP of work, at most 16 MiB of input and 1/32 of the rows, the last units smaller)' },
  compare: { type: 'string', help: 'PoD comparison policy: exact | argmax | allclose:RTOL,ATOL', default: DEFAULT_POLICY },
  'batch-axis': {
    type: 'string',
    multiple: true,
    help: "NAME=AXIS: split input NAME (or stitch output NAME) along AXIS. Default: the axis where the model's shared symbolic batch dim stands (e.g. 1 for a state [2, batch, 128]); axis 0 of a model fixed at batch 1 (run row by row)",
  },
  broadcast: { type: 'string', multiple: true, help: 'NAME: send input NAME whole to every unit (default for inputs without the batch dim: scalars, [1] settings); for an output: take it from the first unit, all units must agree' },
  cheaters: { type: 'string', help: 'extra workers that cheat, to watch PoD catch them', default: '0' },
  cheat: { type: 'string', help: `how the cheaters cheat: ${CHEAT_MODES.join(' | ')} (corrupt: one shared wrong answer, so they agree with each other; noise: each its own; lazy: zeros; error: fail every unit; stale: replay an earlier result)`, default: 'corrupt' },
  seed: { type: 'string', help: 'seed of the replica draws and audit coins, for a reproducible experiment (default: unpredictable)' },
  threads: { type: 'string', help: 'ONNX Runtime threads per worker (default: cores / workers)' },
  json: { type: 'boolean', help: 'print report.json to stdout instead of the summary table' },
  quiet: { type: 'boolean', help: 'no progress bar' },
  'log-format': LOG_FORMAT_FLAG,
  help: { type: 'boolean', help: 'show this help' },
};

const USAGE = 'usage: drill run --model FILE.onnx --input NAME=FILE.npy [...] --out DIR [flags]\n       drill run --job FILE.json --out DIR [flags]';

/** Build the JobRequest from flags (the manifest supplies defaults the flags override). */
export async function jobRequestFrom(p: ParsedArgs): Promise<JobRequest> {
  const jobPath = str(p, 'job');
  const inputs: Record<string, string> = {};
  for (const spec of list(p, 'input')) {
    const eq = spec.indexOf('=');
    const name = eq >= 0 ? spec.slice(0, eq) : '';
    const file = eq >= 0 ? spec.slice(eq + 1) : spec;
    if (!file) throw new UserError('--input', 'NAME=FILE.npy or FILE.npy', spec);
    if (name in inputs) throw new UserError(`--input ${name || '(unnamed)'}`, 'each input once', 'it twice');
    inputs[name] = file;
  }
  const flags = {
    replicas: int(p, 'replicas', 1, 16),
    audit: num(p, 'audit', 0, 1),
    unitRows: int(p, 'unit-rows', 1),
    policy: p.flags.compare !== RUN_FLAGS.compare!.default ? str(p, 'compare') : undefined,
  };
  const batchAxes = parseBatchAxes(list(p, 'batch-axis'));
  const broadcast = list(p, 'broadcast');
  const batching = (m?: { batchAxes?: Record<string, number>; broadcast?: string[] }): Pick<JobRequest, 'batchAxes' | 'broadcast'> => ({
    // Flags override the manifest, name by name.
    batchAxes: { ...Object.fromEntries(Object.entries(m?.batchAxes ?? {}).filter(([n]) => !broadcast.includes(n))), ...batchAxes },
    broadcast: [...(m?.broadcast ?? []).filter((n) => !(n in batchAxes)), ...broadcast],
  });
  if (jobPath) {
    if (str(p, 'model')) throw new UserError('--model', 'not together with --job (the manifest names the model)', str(p, 'model'));
    const m = await readJobManifest(jobPath);
    return {
      model: m.model,
      inputs: Object.keys(inputs).length ? inputs : m.inputs,
      outDir: str(p, 'out')!,
      replicas: flags.replicas ?? m.replicas,
      audit: flags.audit ?? m.audit,
      unitRows: flags.unitRows ?? m.unitRows,
      policy: flags.policy ?? m.policy,
      name: m.name,
      flopsPerRow: m.flopsPerRow,
      ...batching(m),
    };
  }
  const model = str(p, 'model');
  if (!model) throw new UserError('--model', 'a path to an .onnx file (or --job FILE.json)', undefined);
  if (Object.keys(inputs).length === 0) throw new UserError('--input', 'at least one NAME=FILE.npy', undefined);
  return { model, inputs, outDir: str(p, 'out')!, replicas: flags.replicas, audit: flags.audit, unitRows: flags.unitRows, policy: flags.policy, ...batching() };
}

/** `--batch-axis NAME=AXIS` flags → {NAME: AXIS}. @throws UserError for a malformed one. */
export function parseBatchAxes(specs: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const spec of specs) {
    const eq = spec.lastIndexOf('=');
    const name = spec.slice(0, eq);
    const axis = Number(spec.slice(eq + 1));
    if (eq <= 0 || !/^\d+$/.test(spec.slice(eq + 1)) || !Number.isSafeInteger(axis)) throw new UserError('--batch-axis', 'NAME=AXIS with AXIS a non-negative integer', spec);
    if (name in out) throw new UserError(`--batch-axis ${name}`, 'each name once', 'it twice');
    out[name] = axis;
  }
  return out;
}

/** One line per input and output: split on which axis, or sent whole. */
export function describeBatching(spec: JobSpec): string[] {
  const lines: string[] = [];
  for (const [name, i] of Object.entries(spec.inputs)) {
    const axis = inputAxis(i);
    lines.push(`  input ${name} [${i.dims.join(', ')}] ${i.dtype}: ${axis === null ? 'sent whole to every unit' : `split on axis ${axis}`}`);
  }
  const oneUnit = spec.unitRows >= spec.rows;
  for (const name of spec.outputNames) {
    const axis = outputAxis(spec, name);
    const whole = oneUnit ? 'written as the job\'s one unit gives it' : 'no batch axis (from the first unit; every unit must agree)';
    lines.push(`  output ${name}: ${axis === null ? whole : `stitched on axis ${axis}`}`);
  }
  for (const n of spec.planNotes ?? []) lines.push(`  note: ${n}`);
  return lines;
}

/** The --cheat flag. @throws UserError for an unknown mode. */
export function cheatFlag(p: ParsedArgs): CheatMode {
  return parseCheatMode(str(p, 'cheat') ?? 'corrupt');
}

export interface RunUi {
  /** Print report.json on stdout (the human lines then go to stderr). */
  json: boolean;
  quiet: boolean;
  /** Where the lines go; default human lines on stdout (stderr with `json`). */
  out?: CliOutput;
  /** Extra status text for the progress line (e.g. chain height). */
  status?: () => string;
  onGrid?: (grid: LocalGrid, bar: ProgressBar | null) => void | Promise<void>;
}

/** Prepare, run on a fresh embedded grid, print, return the report. */
export async function runOnLocalGrid(req: JobRequest, gridOpts: LocalGridOptions, ui: RunUi): Promise<JobReport> {
  // The grid starts while the job is checked (ONNX Runtime opens the model meanwhile); a job
  // that is refused stops it again before anything is printed but the refusal.
  const grid = new LocalGrid(gridOpts);
  const started = grid.start();
  started.catch(() => undefined);
  let spec: JobSpec;
  try {
    spec = await prepareJob(req);
    trace('run: job checked');
  } catch (e) {
    await started.catch(() => undefined);
    await grid.stop();
    throw e;
  }
  const out = ui.out ?? cliOutput('run', 'human', { stream: ui.json ? process.stderr : process.stdout });
  const say = out.say;
  const workers = gridOpts.workers ?? 3;
  const cheaters = gridOpts.cheaters ?? 0;
  say(`job ${spec.name}: ${spec.rows} rows, ${Object.keys(spec.inputs).length} input(s), outputs ${spec.outputNames.join(', ')}; ${(spec.flopsPerRow / 1e6).toFixed(2)} MFLOP/row${spec.rowByRow ? ', run row by row (batch fixed at 1)' : ''}`, {
    name: spec.name,
    rows: spec.rows,
    inputs: Object.keys(spec.inputs),
    outputs: spec.outputNames,
    flopsPerRow: spec.flopsPerRow,
    rowByRow: spec.rowByRow,
  });
  for (const line of describeBatching(spec)) say(line);
  const checking = spec.audit > 0 ? `1 replica per unit, ${Math.round(spec.audit * 1000) / 10}% of units audited by a second worker` : `${spec.replicas} replicas per unit`;
  say(`starting an embedded grid: 1 coordinator + ${workers} workers${cheaters ? ` + ${cheaters} cheating worker(s) (${gridOpts.cheat ?? 'corrupt'})` : ''} on 127.0.0.1; ${checking}, policy ${req.policy ?? DEFAULT_POLICY}`, {
    workers,
    cheaters,
    ...(cheaters ? { cheat: gridOpts.cheat ?? 'corrupt' } : {}),
    replicas: spec.replicas,
    audit: spec.audit,
    policy: req.policy ?? DEFAULT_POLICY,
  });
  try {
    await started;
    // Every worker gets the model and loads its sessions before the first lease.
    await grid.warm(spec.modelHash, spec.modelPath);
    const bar = ui.quiet ? null : new ProgressBar(spec.rows, out.format === 'json' ? { record: say } : {});
    await ui.onGrid?.(grid, bar);
    const handle = await grid.coordinator.submit(spec);
    trace('run: job submitted');
    if (bar) {
      handle.events.on('progress', (pr) => {
        if (ui.status) bar.extra = ui.status();
        bar.update(pr);
      });
    }
    const report = await handle.result;
    trace('run: job done');
    if (bar) {
      if (ui.status) bar.extra = ui.status();
      bar.update(handle.progress(), true);
      bar.done();
    }
    if (ui.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
    if (out.format === 'json') say(`job ${report.name} (${report.job}): ${report.status === 'done' ? 'DONE' : 'FAILED'}`, summaryFields(report, spec.outDir));
    else if (!ui.json) say('\n' + formatSummary(report, spec.outDir));
    return report;
  } finally {
    await grid.stop();
  }
}

export const command: Command = {
  name: 'run',
  summary: 'run a batch inference job on an embedded local grid',
  async run(argv) {
    const p = parseArgs(argv, RUN_FLAGS);
    if (bool(p, 'help')) {
      process.stdout.write(helpText(USAGE, RUN_FLAGS));
      return 0;
    }
    const json = bool(p, 'json');
    const out = cliOutput('run', logFormatOf(p), { stream: json ? process.stderr : process.stdout });
    const req = await jobRequestFrom(p);
    const seed = str(p, 'seed');
    const report = await runOnLocalGrid(
      req,
      { workers: int(p, 'workers', 1, 64), cheaters: int(p, 'cheaters', 0, 64), cheat: cheatFlag(p), threadsPerWorker: int(p, 'threads', 1, 256), logger: out.log, ...(seed !== undefined ? { coordinator: { seed } } : {}) },
      { json, quiet: bool(p, 'quiet'), out },
    );
    if (report.status !== 'done') {
      if (out.format === 'json') out.log.error(`job failed: ${report.error}`, { job: report.job });
      else process.stderr.write(`drill run: job failed: ${report.error}\n`);
      return 1;
    }
    return 0;
  },
};
