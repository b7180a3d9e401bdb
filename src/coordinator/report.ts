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
  /** Started as a cheater by an embedded grid (demo); a worker never reports this itself. */
  cheater: boolean;
  /** Verified FLOPs credited in this job (0 when it ended quarantined: forfeited). */
  credit: number;
  unitsAgreed: number;
  unitsFaulty: number;
  /** Found faulty in this job and still quarantined at its end (a fault record was signed). */
  quarantined: boolean;
  /** Why, when quarantined: `minority:<unit>`, `reveal-mismatch`, `reveal-refused`, `bad-outputs`. */
  faultReasons: string[];
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
  units: {
    total: number;
    agreed: number;
    disputed: number;
    failed: number;
    unverified: number;
    reissued: number;
    /** Spot checks: units re-run by a second, randomly drawn worker. */
    audited: number;
    /** Spot checks: units accepted from one worker without a second run. */
    unaudited: number;
    /** Units decided again because a worker their decision rested on was found faulty. */
    reopened: number;
  };
  /** Spot-check probability of the job (0: every unit replicated `replicas` times). */
  audit: number;
  /** Rows whose accepted result no second worker checked (unaudited or unverified units). */
  rowsUnchecked: number;
  workers: WorkerReport[];
  totalCredit: number;
  elapsedMs: number;
  rowsPerSecond: number;
  outputs: Record<string, string>;
  creditRecords: number;
}

/** Build the report of a job that ended (`status`) at `now`. */
export function buildReport(job: RunningJob, workers: WorkerRegistry, status: 'done' | 'failed', outputs: Record<string, string>, now: number, isCheater: (peer: string) => boolean = () => false): JobReport {
  const p = job.sched.progress();
  const elapsedMs = now - job.startedAt;
  const credit = job.ledger.window();
  const quarantined = job.sched.quarantined();
  const peers = new Set<string>([...credit.keys(), ...job.runs.keys(), ...quarantined.keys()]);
  const rows: WorkerReport[] = [...peers].sort().map((peer) => {
    const c = credit.get(peer);
    const w = job.workerInfo.get(peer) ?? workers.get(peer);
    const q = quarantined.get(peer);
    return {
      peer,
      cheater: isCheater(peer),
      // The job ledger already applied the fault (forfeit); a negative sum means "nothing".
      credit: c && c.credit > 0n ? Number(c.credit) : 0,
      unitsAgreed: c?.unitsAgreed ?? 0,
      unitsFaulty: c?.unitsFaulty ?? 0,
      quarantined: q !== undefined,
      faultReasons: q ?? [],
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
    units: { total: p.total, agreed: p.agreed, disputed: p.disputed, failed: p.failed, unverified: p.unverified, reissued: p.reissued, audited: p.audited, unaudited: p.unaudited, reopened: p.reopened },
    audit: job.spec.audit ?? 0,
    rowsUnchecked: p.rowsUnchecked,
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
