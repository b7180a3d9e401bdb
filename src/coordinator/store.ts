/**
 * The coordinator's job store (SQLite through `node:sqlite`, WAL mode). A unit is marked done
 * only after its rows are written to the output file, so a finished unit is never lost and a
 * restarted coordinator resumes a job from where it stopped. Credit records are kept with the
 * unit that earned them. A finished job keeps its report here, so it stays queryable after its
 * files are freed; a job that came through the intake records its partner and upload folder.
 */
import { DatabaseSync } from 'node:sqlite';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { CreditRecord } from '../pod/credit.ts';
import { creditRecordId } from '../pod/credit.ts';
import type { FaultRecord } from '../pod/fault.ts';
import { faultRecordId } from '../pod/fault.ts';
import type { OutputLayout } from './output.ts';

export type JobStatus = 'running' | 'done' | 'failed';

export interface StoredJob {
  id: string;
  spec: string;
  status: JobStatus;
  error: string | null;
  layout: OutputLayout[] | null;
  createdAt: number;
  finishedAt: number | null;
  /** The partner that submitted it through the intake (null for a local job). */
  partner: string | null;
  /** The intake's upload folder (model, inputs, outputs), freed later. */
  uploadDir: string | null;
  /** The report (JSON) once the job ended. */
  report: string | null;
  /** When the upload folder was deleted (outputs fetched or expired). */
  freedAt: number | null;
}

/** Who submitted a job through the intake, and where its files are. */
export interface JobOwner {
  partner: string;
  uploadDir: string;
}

/** Columns added after the first release: created on an older store when missing. */
const ADDED_COLUMNS: Record<string, string> = { partner: 'TEXT', upload_dir: 'TEXT', report: 'TEXT', freed_at: 'INTEGER' };

export class JobStore {
  readonly #db: DatabaseSync;

  constructor(path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.#db = new DatabaseSync(path);
    this.#db.exec(`
      PRAGMA journal_mode = WAL;
      PRAGMA synchronous = NORMAL;
      CREATE TABLE IF NOT EXISTS jobs (
        id TEXT PRIMARY KEY, spec TEXT NOT NULL, status TEXT NOT NULL, error TEXT,
        layout TEXT, created_at INTEGER NOT NULL, finished_at INTEGER);
      CREATE TABLE IF NOT EXISTS units (
        job TEXT NOT NULL, unit INTEGER NOT NULL, status TEXT NOT NULL, digest TEXT NOT NULL,
        workers TEXT NOT NULL, credited TEXT NOT NULL, faulty TEXT NOT NULL, done_at INTEGER NOT NULL,
        PRIMARY KEY (job, unit));
      CREATE TABLE IF NOT EXISTS credits (
        id TEXT PRIMARY KEY, job TEXT NOT NULL, unit INTEGER NOT NULL, record TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS quarantine (
        job TEXT NOT NULL, worker TEXT NOT NULL, reasons TEXT NOT NULL, PRIMARY KEY (job, worker));
      CREATE TABLE IF NOT EXISTS faults (
        id TEXT PRIMARY KEY, job TEXT NOT NULL, worker TEXT NOT NULL, record TEXT NOT NULL);
    `);
    const have = new Set((this.#db.prepare('PRAGMA table_info(jobs)').all() as { name: string }[]).map((c) => c.name));
    for (const [col, type] of Object.entries(ADDED_COLUMNS)) if (!have.has(col)) this.#db.exec(`ALTER TABLE jobs ADD COLUMN ${col} ${type}`);
    this.#db.exec('CREATE INDEX IF NOT EXISTS jobs_partner ON jobs (partner, created_at)');
  }

  createJob(id: string, spec: unknown, now: number, owner?: JobOwner): void {
    this.#db
      .prepare('INSERT INTO jobs (id, spec, status, created_at, partner, upload_dir) VALUES (?, ?, ?, ?, ?, ?)')
      .run(id, JSON.stringify(spec), 'running', now, owner?.partner ?? null, owner?.uploadDir ?? null);
  }


  /** The job's upload folder was deleted. */
  markFreed(id: string, now: number): void {
    this.#db.prepare('UPDATE jobs SET freed_at = ? WHERE id = ?').run(now, id);
  }

  /** A partner's jobs, newest first (at most `limit`). */
  partnerJobs(partner: string, limit: number): StoredJob[] {
    return (this.#db.prepare('SELECT * FROM jobs WHERE partner = ? ORDER BY created_at DESC, id LIMIT ?').all(partner, limit) as Record<string, unknown>[]).map(rowToJob);
  }

  /** Finished intake jobs whose upload folder still exists. */
  unfreedFinished(): StoredJob[] {
    return (this.#db.prepare("SELECT * FROM jobs WHERE upload_dir IS NOT NULL AND freed_at IS NULL AND status != 'running' ORDER BY finished_at").all() as Record<string, unknown>[]).map(rowToJob);
  }

  /** Every upload folder a job still refers to (running or not yet freed). */
  liveUploadDirs(): string[] {
    return (this.#db.prepare('SELECT upload_dir FROM jobs WHERE upload_dir IS NOT NULL AND freed_at IS NULL').all() as { upload_dir: string }[]).map((r) => r.upload_dir);
  }

  /** Every job, newest first (at most `limit`): an operator's view. */
  recentJobs(limit: number): StoredJob[] {
    return (this.#db.prepare('SELECT * FROM jobs ORDER BY created_at DESC, id LIMIT ?').all(limit) as Record<string, unknown>[]).map(rowToJob);
  }

  /** Jobs per status (metrics). */
  countByStatus(): Record<JobStatus, number> {
    const out: Record<JobStatus, number> = { running: 0, done: 0, failed: 0 };
    for (const r of this.#db.prepare('SELECT status, COUNT(*) AS n FROM jobs GROUP BY status').all() as { status: JobStatus; n: number }[]) out[r.status] = Number(r.n);
    return out;
  }

  /**
   * Per worker, over every job this coordinator ran: units it ran (results compared), units it
   * was credited for and the verified FLOPs credited — except in jobs it was found faulty in
   * (a fault record forfeits the job's credit) — and its fault records.
   */
  workerTotals(): Map<string, { units: number; unitsCredited: number; credit: number; faults: number }> {
    const out = new Map<string, { units: number; unitsCredited: number; credit: number; faults: number }>();
    const get = (w: string): { units: number; unitsCredited: number; credit: number; faults: number } => {
      let e = out.get(w);
      if (!e) out.set(w, (e = { units: 0, unitsCredited: 0, credit: 0, faults: 0 }));
      return e;
    };
    for (const r of this.#db.prepare('SELECT j.value AS w, COUNT(*) AS n FROM units, json_each(units.workers) AS j GROUP BY j.value').all() as { w: string; n: number }[]) get(r.w).units = Number(r.n);
    const credited = this.#db.prepare(`
      SELECT j.value AS w, COUNT(*) AS n, SUM(json_extract(c.record, '$.flops')) AS flops
      FROM credits AS c, json_each(json_extract(c.record, '$.credited')) AS j
      WHERE NOT EXISTS (SELECT 1 FROM faults AS f WHERE f.worker = j.value AND f.job = c.job)
      GROUP BY j.value`).all() as { w: string; n: number; flops: number }[];
    for (const r of credited) {
      const e = get(r.w);
      e.unitsCredited = Number(r.n);
      e.credit = Number(r.flops);
    }
    for (const r of this.#db.prepare('SELECT worker AS w, COUNT(*) AS n FROM faults GROUP BY worker').all() as { w: string; n: number }[]) get(r.w).faults = Number(r.n);
    return out;
  }

  setLayout(id: string, layout: OutputLayout[]): void {
    this.#db.prepare('UPDATE jobs SET layout = ? WHERE id = ?').run(JSON.stringify(layout), id);
  }

  /** A job ended; its report (when there is one) stays queryable after its files are freed. */
  finishJob(id: string, status: 'done' | 'failed', now: number, error?: string, report?: unknown): void {
    this.#db.prepare('UPDATE jobs SET status = ?, error = ?, finished_at = ?, report = ? WHERE id = ?').run(status, error ?? null, now, report === undefined ? null : JSON.stringify(report), id);
  }

  getJob(id: string): StoredJob | undefined {
    const r = this.#db.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as Record<string, unknown> | undefined;
    return r ? rowToJob(r) : undefined;
  }

  runningJobs(): StoredJob[] {
    return (this.#db.prepare("SELECT * FROM jobs WHERE status = 'running' ORDER BY created_at").all() as Record<string, unknown>[]).map(rowToJob);
  }

  /** Record a finished unit and its credit record in one transaction. */
  unitDone(job: string, unit: number, status: string, digest: string, workers: string[], credited: string[], faulty: string[], record: CreditRecord | null, now: number): void {
    this.#db.exec('BEGIN');
    try {
      this.#db
        .prepare('INSERT OR REPLACE INTO units (job, unit, status, digest, workers, credited, faulty, done_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
        .run(job, unit, status, digest, JSON.stringify(workers), JSON.stringify(credited), JSON.stringify(faulty), now);
      if (record) this.#db.prepare('INSERT OR IGNORE INTO credits (id, job, unit, record) VALUES (?, ?, ?, ?)').run(creditRecordId(record), job, unit, JSON.stringify(record));
      this.#db.exec('COMMIT');
    } catch (e) {
      this.#db.exec('ROLLBACK');
      throw e;
    }
  }

  /**
   * Finished units of a job: PoD outcome (agreed / resolved / unaudited / unverified), the
   * workers the decision rests on, and every worker ever credited for the unit.
   */
  doneUnits(job: string): Map<number, { status: string; workers: string[]; credited: string[] }> {
    const rows = this.#db.prepare('SELECT unit, status, workers, credited FROM units WHERE job = ?').all(job) as { unit: number; status: string; workers: string; credited: string }[];
    return new Map(rows.map((r) => [r.unit, { status: r.status, workers: JSON.parse(r.workers) as string[], credited: JSON.parse(r.credited) as string[] }]));
  }

  /** A done unit was reopened (a worker its decision rested on was found faulty): it is no longer done. */
  unitReopened(job: string, unit: number): void {
    this.#db.prepare('DELETE FROM units WHERE job = ? AND unit = ?').run(job, unit);
  }

  /** The worker's quarantine marks in the job (none = released). */
  setQuarantine(job: string, worker: string, reasons: string[]): void {
    if (reasons.length === 0) this.#db.prepare('DELETE FROM quarantine WHERE job = ? AND worker = ?').run(job, worker);
    else this.#db.prepare('INSERT OR REPLACE INTO quarantine (job, worker, reasons) VALUES (?, ?, ?)').run(job, worker, JSON.stringify(reasons));
  }

  quarantined(job: string): Map<string, string[]> {
    const rows = this.#db.prepare('SELECT worker, reasons FROM quarantine WHERE job = ?').all(job) as { worker: string; reasons: string }[];
    return new Map(rows.map((r) => [r.worker, JSON.parse(r.reasons) as string[]]));
  }

  addFault(record: FaultRecord): void {
    this.#db.prepare('INSERT OR IGNORE INTO faults (id, job, worker, record) VALUES (?, ?, ?, ?)').run(faultRecordId(record), record.job, record.worker, JSON.stringify(record));
  }

  faults(job?: string): FaultRecord[] {
    const rows = (job ? this.#db.prepare('SELECT record FROM faults WHERE job = ? ORDER BY rowid').all(job) : this.#db.prepare('SELECT record FROM faults ORDER BY rowid').all()) as { record: string }[];
    return rows.map((r) => JSON.parse(r.record) as FaultRecord);
  }

  unitStats(job: string): { status: string; workers: string[]; credited: string[]; faulty: string[] }[] {
    return (this.#db.prepare('SELECT status, workers, credited, faulty FROM units WHERE job = ? ORDER BY unit').all(job) as Record<string, string>[]).map((r) => ({
      status: r.status!,
      workers: JSON.parse(r.workers!) as string[],
      credited: JSON.parse(r.credited!) as string[],
      faulty: JSON.parse(r.faulty!) as string[],
    }));
  }

  credits(job?: string): CreditRecord[] {
    const rows = (job ? this.#db.prepare('SELECT record FROM credits WHERE job = ? ORDER BY unit').all(job) : this.#db.prepare('SELECT record FROM credits ORDER BY rowid').all()) as { record: string }[];
    return rows.map((r) => JSON.parse(r.record) as CreditRecord);
  }

  close(): void {
    this.#db.close();
  }
}

function rowToJob(r: Record<string, unknown>): StoredJob {
  return {
    id: r.id as string,
    spec: r.spec as string,
    status: r.status as JobStatus,
    error: (r.error as string | null) ?? null,
    layout: r.layout ? (JSON.parse(r.layout as string) as OutputLayout[]) : null,
    createdAt: r.created_at as number,
    finishedAt: (r.finished_at as number | null) ?? null,
    partner: (r.partner as string | null) ?? null,
    uploadDir: (r.upload_dir as string | null) ?? null,
    report: (r.report as string | null) ?? null,
    freedAt: (r.freed_at as number | null) ?? null,
  };
}
