/**
 * The grid against raw onnxruntime-node, every run a whole process timed from outside, in the
 * same run (`npm run bench`): what a partner sees, start-up included.
 *
 * Throughput, for three workloads (workloads/): cnn (compute-heavy, ~0.23 GFLOP and 40 B out a
 * row), mlp (tiny, ~25 kFLOP a row) and upscale (output-heavy, ~2.3 GFLOP and 1.2 MB out a row):
 *   1. calibrate: a short in-process raw run sizes the job so raw ORT takes about BENCH_SECONDS;
 *   2. write seeded inputs of that many rows (workloads/models.ts makeInputs) and a job.json;
 *   3. raw, as a process (bench/raw.ts): read the inputs, run every row, write the outputs —
 *      `split` (one single-threaded session per core in worker_threads) and `intra` (one session,
 *      intraOpThreads = cores); the better one is the baseline;
 *   4. the grid, as a process: `drill run --job job.json` on an embedded grid with the same total
 *      threads — R=1 (one worker owning every core), R=2 (two workers), and for the cnn R=1 with
 *      `--audit 0.1` (two workers: an auditor must be another one);
 *   5. raw again, so the baseline brackets the grid runs on a noisy machine.
 *   Every figure is rows/s as a ratio to the best raw run of the same workload.
 * Start-up: a 3-row mlp job, `drill run` (its defaults) against the raw process: the grid's fixed
 *   cost (median wall-clock difference) and the ratio.
 * Memory: the mlp at 1M and 4M rows (128 and 512 MB of input) with 16 MiB units under `drill run`'s
 *   defaults: the whole embedded grid's peak RSS (DRILL_RESOURCE_FILE).
 *
 *   node bench/grid.bench.ts                              # everything (npm run bench)
 *   BENCH_SECONDS=5 node bench/grid.bench.ts              # shorter jobs (figures less reliable)
 *   BENCH_ONLY=mlp,upscale node bench/grid.bench.ts       # workloads
 *   BENCH_MODES=r1 node bench/grid.bench.ts               # grid modes (r1,r2,r1a)
 *   BENCH_SECTIONS=throughput,startup,memory node bench/grid.bench.ts
 * Writes bench/results/grid.json.
 */
import { availableParallelism, tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { mkdtemp, mkdir, rm, writeFile, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { DirectSession } from '../src/worker/direct.ts';
import { encodeNpy } from '../src/util/npy.ts';
import { runRange } from './raw-thread.ts';
import type { JobReport } from '../src/coordinator/report.ts';
import { makeInputs, workloadSpec } from '../workloads/models.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..');
const DRILL = join(ROOT, 'bin', 'drill.js');

/** Target length of the raw job (s): whole-job figures need jobs well past start-up. */
const BENCH_SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CORES = availableParallelism();
type WorkloadName = 'cnn' | 'mlp' | 'upscale';
type Mode = 'r1' | 'r2' | 'r1a';
/** Targets from the issues: grid rows/s ÷ raw rows/s, whole processes. */
const TARGETS: Record<WorkloadName, Partial<Record<Mode, number>>> = {
  cnn: { r1: 0.9, r2: 0.45, r1a: 0.8 },
  mlp: { r1: 0.75, r2: 0.45 },
  upscale: { r1: 0.9, r2: 0.45 },
};
/** Spot-check probability of the `r1a` mode: R=1 with --audit 0.1 on the compute-heavy workload. */
const BENCH_AUDIT = 0.1;
/** Rows per ORT call in the raw runs: per-call overhead negligible, tensors cache-friendly. */
const RAW_CHUNK: Record<WorkloadName, number> = { cnn: 32, mlp: 8192, upscale: 2 };
/** Upper bound on generated rows (memory of the bench itself). */
const MAX_ROWS: Record<WorkloadName, number> = { cnn: 20_000, mlp: 8_000_000, upscale: 2_000 };
/** The grid's fixed cost over raw on a 3-row job must stay under this (issue target). */
const STARTUP_TARGET_MS = 1000;
/** Peak RSS targets of the memory section (issue): rows → bytes. */
const MEMORY_TARGETS: [number, number][] = [[1_000_000, 0.5e9], [4_000_000, 0.9e9]];
/** 16 MiB of mlp input a unit (128 B a row). */
const MEMORY_UNIT_ROWS = 131_072;
/** Runs of each start-up measurement (the median is reported). */
const STARTUP_RUNS = 3;

interface Job {
  name: WorkloadName;
  model: string;
  inputs: Record<string, string>;
  manifest: string;
  rows: number;
  dir: string;
}

interface Sample {
  workload: string;
  mode: string;
  rows: number;
  ms: number;
  rowsPerSecond: number;
  maxRssBytes?: number;
  detail?: Record<string, unknown>;
}

/** Run a child process to completion; its wall time, stdout and exit code. */
function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ ms: number; stdout: string; stderr: string; code: number | null }> {
  return new Promise((res, rej) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.once('error', rej);
    child.once('close', (code) => res({ ms: performance.now() - t0, stdout, stderr, code }));
  });
}

// ------------------------------------------------------------------------------- runs

async function raw(job: Job, mode: 'split' | 'intra'): Promise<Sample> {
  const out = join(job.dir, `out-raw-${mode}`);
  const args = ['bench/raw.ts', '--model', job.model, ...Object.entries(job.inputs).flatMap(([k, p]) => ['--input', `${k}=${p}`]), '--out', out, '--threads', String(CORES), '--mode', mode, '--chunk', String(RAW_CHUNK[job.name])];
  const r = await timed(process.execPath, args);
  if (r.code !== 0) throw new Error(`raw ${mode} on ${job.name} failed (${r.code}): ${r.stderr.slice(-2000)}`);
  const j = JSON.parse(r.stdout.trim().split('\n').pop()!) as { rows: number; maxRssBytes: number };
  await rm(out, { recursive: true, force: true });
  return { workload: job.name, mode: `raw-${mode}`, rows: job.rows, ms: r.ms, rowsPerSecond: (job.rows * 1000) / r.ms, maxRssBytes: j.maxRssBytes };
}

interface GridRun {
  replicas: number;
  audit?: number;
  workers: number;
  threads?: number;
  unitRows?: number;
  label: string;
}

async function grid(job: Job, g: GridRun): Promise<Sample> {
  const out = join(job.dir, `out-${g.label}`);
  const resFile = join(job.dir, `resources-${g.label}.json`);
  const args = [
    DRILL, 'run', '--job', job.manifest, '--out', out, '--replicas', String(g.replicas), '--workers', String(g.workers),
    ...(g.threads ? ['--threads', String(g.threads)] : []), ...(g.audit ? ['--audit', String(g.audit)] : []), ...(g.unitRows ? ['--unit-rows', String(g.unitRows)] : []),
    '--json', '--quiet',
  ];
  const r = await timed(process.execPath, args, { DRILL_RESOURCE_FILE: resFile });
  if (r.code !== 0) throw new Error(`grid ${g.label} on ${job.name} failed (${r.code}): ${r.stderr.slice(-2000)}`);
  const report = JSON.parse(r.stdout) as JobReport;
  const res = JSON.parse(await readFile(resFile, 'utf8')) as { maxRssBytes: number; cpuMs: number };
  await rm(out, { recursive: true, force: true });
  return {
    workload: job.name,
    mode: `grid-${g.label}`,
    rows: job.rows,
    ms: r.ms,
    rowsPerSecond: (job.rows * 1000) / r.ms,
    maxRssBytes: res.maxRssBytes,
    detail: {
      workers: g.workers, replicas: g.replicas, ...(g.audit ? { audit: g.audit, audited: report.units.audited } : {}), unitRows: report.unitRows, units: report.units.total,
      jobMs: Math.round(report.elapsedMs), processMs: Math.round(r.ms), cpuShare: +(res.cpuMs / (CORES * r.ms)).toFixed(2),
    },
  };
}

// ------------------------------------------------------------------------------- setup

/** Raw rows per second right now (in-process, all cores): sizes the job to ~BENCH_SECONDS of raw ORT. */
async function calibrate(name: WorkloadName, model: string): Promise<number> {
  const probeRows = name === 'cnn' ? 64 : name === 'upscale' ? 8 : 262_144;
  const inputs = makeInputs(name, probeRows, 7);
  const s = await DirectSession.open(model, { intraOpThreads: CORES, allowSpinning: true });
  await runRange(s, inputs, 0, 0, Math.min(probeRows, RAW_CHUNK[name]), RAW_CHUNK[name]); // warm-up
  const t0 = performance.now();
  await runRange(s, inputs, 0, 0, probeRows, RAW_CHUNK[name]);
  const rate = (probeRows * 1000) / (performance.now() - t0);
  await s.release();
  return rate;
}

/** Write a job of `rows` rows (or ~BENCH_SECONDS of raw work) of workload `name` under `root`. */
async function makeJob(name: WorkloadName, root: string, rows?: number, tag = ''): Promise<Job> {
  const model = join(ROOT, 'workloads', name, 'model.onnx');
  const chunk = RAW_CHUNK[name];
  let n = rows;
  if (n === undefined) {
    const rate = await calibrate(name, model);
    n = Math.min(MAX_ROWS[name], Math.max(chunk * CORES, Math.ceil((rate * BENCH_SECONDS) / chunk) * chunk));
    console.log(`# ${name}: calibrated ${rate.toFixed(0)} rows/s raw → ${n} rows (~${BENCH_SECONDS} s of raw ORT)`);
  }
  const dir = join(root, `${name}${tag}`);
  await mkdir(join(dir, 'inputs'), { recursive: true });
  const spec = workloadSpec(name);
  const inputs: Record<string, string> = {};
  for (const [k, t] of Object.entries(makeInputs(name, n, spec.inputSeed))) {
    inputs[k] = join(dir, 'inputs', `${k}.npy`);
    await writeFile(inputs[k]!, encodeNpy(t));
  }
  const manifest = join(dir, 'job.json');
  await writeFile(manifest, JSON.stringify({ name, model, inputs, policy: spec.policy }));
  return { name, model, inputs, manifest, rows: n, dir };
}

// ------------------------------------------------------------------------------- report

function fmt(n: number, w: number): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: w, minimumFractionDigits: w });
}
/** A ratio to 3 decimals, rounded down, so a printed 0.900 never reads as a FAIL against 0.90. */
function fmtRatio(r: number): string {
  return (Math.floor(r * 1000) / 1000).toFixed(3);
}
const mb = (b: number | undefined): string => (b === undefined ? '?' : `${fmt(b / 1e6, 0)} MB`);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const only = (process.env.BENCH_ONLY ?? 'cnn,mlp,upscale').split(',').map((s) => s.trim()) as WorkloadName[];
  const modes = (process.env.BENCH_MODES ?? 'r1,r2,r1a').split(',').map((s) => s.trim()) as Mode[];
  const sections = (process.env.BENCH_SECTIONS ?? 'throughput,startup,memory').split(',').map((s) => s.trim());
  for (const n of only) if (!(n in TARGETS)) throw new Error(`BENCH_ONLY: expected cnn, mlp and/or upscale, received ${n}`);
  const root = await mkdtemp(join(tmpdir(), 'matrix-drill-bench-'));
  const t00 = performance.now();
  console.log(`# matrix-drill bench: ${CORES} cores, node ${process.version}; every run a whole process; ratios vs the best raw process of the same workload`);
  const samples: Sample[] = [];
  const log = (s: Sample): void => {
    samples.push(s);
    console.log(`  ${s.workload} ${s.mode.padEnd(12)} ${fmt(s.rowsPerSecond, 1).padStart(11)} rows/s  ${fmt(s.ms / 1000, 2)} s  peak RSS ${mb(s.maxRssBytes)}${s.detail ? '  ' + JSON.stringify(s.detail) : ''}`);
  };
  const result: Record<string, unknown> = { date: new Date().toISOString(), cores: CORES, node: process.version, benchSeconds: BENCH_SECONDS };
  let allPass = true;
  try {
    // ---- throughput
    if (sections.includes('throughput')) {
      for (const name of only) {
        const job = await makeJob(name, root);
        const half = Math.max(1, Math.floor(CORES / 2));
        const a = await raw(job, 'split');
        log(a);
        if (modes.includes('r1')) log(await grid(job, { replicas: 1, workers: 1, threads: CORES, label: 'r1' }));
        const b = await raw(job, 'intra');
        log(b);
        if (modes.includes('r2')) log(await grid(job, { replicas: 2, workers: 2, threads: half, label: 'r2' }));
        if (modes.includes('r1a') && TARGETS[name].r1a !== undefined) log(await grid(job, { replicas: 1, audit: BENCH_AUDIT, workers: 2, threads: half, label: 'r1a' }));
        log(await raw(job, a.rowsPerSecond >= b.rowsPerSecond ? 'split' : 'intra'));
        await rm(job.dir, { recursive: true, force: true });
      }
      const rows: Record<string, unknown>[] = [];
      console.log('');
      console.log('workload  mode             rows/s   ratio  target  result  peak RSS');
      console.log('--------  ------------  ---------  -----  ------  ------  --------');
      for (const name of only) {
        const raws = samples.filter((s) => s.workload === name && s.mode.startsWith('raw'));
        if (raws.length === 0) continue;
        const best = Math.max(...raws.map((s) => s.rowsPerSecond));
        for (const s of samples.filter((x) => x.workload === name)) {
          const ratio = s.rowsPerSecond / best;
          const key = s.mode.startsWith('grid-') ? (s.mode.slice(5) as Mode) : null;
          const target = key ? (TARGETS[name][key] ?? null) : null;
          const pass = target === null ? null : ratio >= target;
          if (pass === false) allPass = false;
          console.log(`${name.padEnd(8)}  ${s.mode.padEnd(12)}  ${fmt(s.rowsPerSecond, 1).padStart(9)}  ${fmtRatio(ratio).padStart(5)}  ${target === null ? (s.rowsPerSecond === best ? '  base' : '      ') : ('≥' + fmt(target, 2)).padStart(6)}  ${pass === null ? '      ' : pass ? 'PASS  ' : 'FAIL  '}  ${mb(s.maxRssBytes).padStart(8)}`);
          rows.push({ workload: name, mode: s.mode, rows: s.rows, seconds: +(s.ms / 1000).toFixed(2), rowsPerSecond: +s.rowsPerSecond.toFixed(1), ratio: +ratio.toFixed(3), target, pass, maxRssBytes: s.maxRssBytes, ...(s.detail ? { detail: s.detail } : {}) });
        }
      }
      result.throughput = rows;
    }

    // ---- start-up: a 3-row job
    if (sections.includes('startup')) {
      const job = await makeJob('mlp', root, 3, '-startup');
      const rawMs: number[] = [];
      const gridMs: number[] = [];
      for (let i = 0; i < STARTUP_RUNS; i++) {
        rawMs.push((await raw(job, 'intra')).ms);
        gridMs.push((await grid(job, { replicas: 2, workers: 3, label: `startup-${i}` })).ms);
      }
      const r = median(rawMs);
      const g = median(gridMs);
      const fixed = g - r;
      const pass = fixed <= STARTUP_TARGET_MS;
      if (!pass) allPass = false;
      console.log('');
      console.log(`start-up, a 3-row mlp job (median of ${STARTUP_RUNS}): raw process ${fmt(r, 0)} ms, drill run (3 workers, R=2) ${fmt(g, 0)} ms → fixed cost ${fmt(fixed, 0)} ms (target ≤ ${STARTUP_TARGET_MS} ms: ${pass ? 'PASS' : 'FAIL'}), ratio ${fmtRatio(r / g)}`);
      result.startup = { rawMs: rawMs.map(Math.round), gridMs: gridMs.map(Math.round), fixedCostMs: Math.round(fixed), ratio: +(r / g).toFixed(3), targetMs: STARTUP_TARGET_MS, pass };
    }

    // ---- memory: peak RSS of the whole embedded grid by job size
    if (sections.includes('memory')) {
      const mem: Record<string, unknown>[] = [];
      console.log('');
      for (const [rows, limit] of MEMORY_TARGETS) {
        const job = await makeJob('mlp', root, rows, `-mem-${rows}`);
        const s = await grid(job, { replicas: 2, workers: 3, unitRows: MEMORY_UNIT_ROWS, label: `mem-${rows}` });
        const pass = (s.maxRssBytes ?? Infinity) <= limit;
        if (!pass) allPass = false;
        console.log(`memory: mlp ${fmt(rows, 0)} rows (${mb(rows * 128)} of input, 16 MiB units, drill run defaults): peak RSS ${mb(s.maxRssBytes)} (target ≤ ${mb(limit)}: ${pass ? 'PASS' : 'FAIL'}), ${fmt(s.rowsPerSecond, 0)} rows/s`);
        mem.push({ rows, inputBytes: rows * 128, maxRssBytes: s.maxRssBytes, limitBytes: limit, pass, seconds: +(s.ms / 1000).toFixed(2) });
        await rm(job.dir, { recursive: true, force: true });
      }
      result.memory = mem;
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
  result.allPass = allPass;
  result.totalSeconds = +((performance.now() - t00) / 1000).toFixed(1);
  await mkdir(join(HERE, 'results'), { recursive: true });
  await writeFile(join(HERE, 'results', 'grid.json'), JSON.stringify(result, null, 2) + '\n');
  console.log(`\n${allPass ? 'ALL PASS' : 'SOME FAIL'} — ${result.totalSeconds} s; written bench/results/grid.json`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
