/**
 * A job's report: what the partner reads in `report.json` and `drill run` prints — rows,
 * units by PoD outcome, per-worker credit and runs, throughput, output paths.
 */
import { writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { formatPolicy } from '../pod/policy.ts';
import type { RunningJob } from './running.ts';
import { inputAxis, outputAxis } from './job.ts';
import type { WorkerRegistry } from './workers.ts';

export interface WorkerReport {
  peer: string;
  cheater: boolean;
  /** Verified FLOPs credited in this job. */
  credit: number;
  unitsAgreed: number;
  unitsFaulty: number;
  /** Units this worker ran (results revealed), whatever their outcome. */
  unitsRun: number;
  threads: number;
  device: string;
  profile: string;
}

export interface JobReport {
  job: string;
  name: string;
  status: 'done' | 'failed';
  error?: string;
  /** `costNotes`: what the cost model could not follow (docs/POD.md, "Cost model"). */
  model: { path: string; sha256: string; flopsPerRow: number; costNotes: string[] };
  rows: number;
  /** Which inputs were split into rows (on which axis) and which sent whole; on which axis each output was stitched. */
  batching: {
    inputs: Record<string, { split: boolean; axis: number | null }>;
    outputs: Record<string, { stitched: boolean; axis: number | null }>;
    /** Choices made where the model did not say (e.g. one unit for outputs of unknown size). */
    notes: string[];
  };
  unitRows: number;
  replicas: number;
  policy: string;
  units: { total: number; agreed: number; disputed: number; failed: number; unverified: number; reissued: number };
  workers: WorkerReport[];
  totalCredit: number;
  elapsedMs: number;
  rowsPerSecond: number;
  outputs: Record<string, string>;
  creditRecords: number;
}

/** Build the report of a job that ended (`status`) at `now`. */
export function buildReport(job: RunningJob, workers: WorkerRegistry, status: 'done' | 'failed', outputs: Record<string, string>, now: number): JobReport {
  const p = job.sched.progress();
  const elapsedMs = now - job.startedAt;
  const credit = job.ledger.window();
  const peers = new Set<string>([...credit.keys(), ...job.runs.keys()]);
  const rows: WorkerReport[] = [...peers].sort().map((peer) => {
    const c = credit.get(peer);
    const w = workers.get(peer);
    return {
      peer,
      cheater: w?.cheater ?? false,
      credit: Number(c?.credit ?? 0n),
      unitsAgreed: c?.unitsAgreed ?? 0,
      unitsFaulty: c?.unitsFaulty ?? 0,
      unitsRun: job.runs.get(peer) ?? 0,
      threads: w?.threads ?? 0,
      device: w?.device ?? 'unknown',
      profile: w?.profile ?? 'unknown',
    };
  });
  return {
    job: job.spec.id,
    name: job.spec.name,
    status,
    ...(job.failed ? { error: job.failed } : {}),
    model: { path: job.spec.modelPath, sha256: job.spec.modelHash, flopsPerRow: job.spec.flopsPerRow, costNotes: job.spec.costNotes ?? [] },
    rows: job.spec.rows,
    batching: {
      inputs: Object.fromEntries(Object.entries(job.spec.inputs).map(([n, i]) => [n, { split: inputAxis(i) !== null, axis: inputAxis(i) }])),
      outputs: Object.fromEntries(job.spec.outputNames.map((n) => [n, { stitched: outputAxis(job.spec, n) !== null, axis: outputAxis(job.spec, n) }])),
      notes: job.spec.planNotes ?? [],
    },
    unitRows: job.spec.unitRows,
    replicas: job.spec.replicas,
    policy: formatPolicy(job.spec.policy),
    units: { total: p.total, agreed: p.agreed, disputed: p.disputed, failed: p.failed, unverified: p.unverified, reissued: p.reissued },
    workers: rows,
    totalCredit: rows.reduce((a, w) => a + w.credit, 0),
    elapsedMs,
    rowsPerSecond: elapsedMs > 0 ? (p.rowsDone * 1000) / elapsedMs : 0,
    outputs,
    creditRecords: job.creditRecords,
  };
}

/** Write `DIR/report.json` atomically (temp file + rename). @throws fs errors. */
export async function writeReport(dir: string, report: JobReport): Promise<void> {
  const tmp = join(dir, `.report.json.${process.pid}`);
  await writeFile(tmp, JSON.stringify(report, null, 2) + '\n');
  await rename(tmp, join(dir, 'report.json'));
}
