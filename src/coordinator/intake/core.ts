/**
 * The intake core: everything about remote jobs that does not depend on the transport. The
 * libp2p intake (`libp2p.ts`, used by `drill submit`) sits on it, and so can an HTTP API.
 *
 *   authorize(partner)                      may this partner submit? (throws PARTNER_REFUSED)
 *   beginUpload(partner, {files})           → upload id; files declared with their sizes (or later)
 *   writeChunk(partner, upload, file, offset, bytes)      positional chunks (resumable, no gaps)
 *   writeStream(partner, upload, file | decl, source)     a whole file from a stream (multipart)
 *   submit(partner, upload, options)        validate (prepareJob + unit limits) and start the job
 *   status / list / waitForUpdate / cancel  the partner's jobs (running ones live, ended ones from SQLite)
 *   listAll / statusAny                     every job, whoever submitted it (an operator's view)
 *   outputFile(partner, job, file)          path and size of an output file (serve it with Range)
 *   release(partner, job)                   outputs fetched: free the job's files now
 *
 * Every call names the partner and only sees that partner's uploads and jobs: another
 * partner's job is JOB_UNKNOWN, never "not yours". Limits (`limits.ts`) are enforced as bytes
 * arrive and when the job is submitted. A finished job's folder (model, inputs, outputs) is
 * deleted when the partner releases it or `outputTtlMs` after it ended (a failed job's at once);
 * its status and report stay in the job store. Uploads that stop receiving bytes for
 * `uploadIdleMs` are dropped. The coordinator's model blob is freed by the coordinator when the
 * job ends.
 */
import { readdir, rm, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../../util/log.ts';
import { silentLogger } from '../../util/log.ts';
import type { JobHandle, JobReport } from '../service.ts';
import { CANCELLED_MESSAGE } from '../service.ts';
import type { JobStore, JobOwner, StoredJob } from '../store.ts';
import type { JobSpec } from '../job.ts';
import { prepareJob, splitRowBytes } from '../job.ts';
import type { Progress } from '../scheduler.ts';
import { IntakeError, IntakeErrorCode } from './errors.ts';
import type { IntakeLimits, PartnerPolicy } from './limits.ts';
import { defaultIntakeLimits, closedPolicy, authorizePartner, checkUnitRows } from './limits.ts';
import { Upload } from './upload.ts';
import type { UploadFileDecl, UploadFileState } from './upload.ts';

/** What the intake needs from the coordinator (`Coordinator` has it). */
export interface IntakeCoordinator {
  submit(spec: JobSpec, owner?: JobOwner): Promise<JobHandle>;
  cancel(id: string): Promise<boolean>;
  job(id: string): JobHandle | undefined;
  resumedJobs(): JobHandle[];
  store(): JobStore;
}

export interface IntakeCoreOptions {
  /** Uploads live in `<dataDir>/jobs/<upload id>/` (model.onnx, inputs/, out/). */
  dataDir: string;
  /** Who may submit; default closed (nobody until partners are listed). */
  policy?: PartnerPolicy;
  limits?: Partial<IntakeLimits>;
  logger?: Logger;
  now?: () => number;
}

/** Job options a partner chooses at submit (as `drill run` flags). */
export interface IntakeSubmitOptions {
  name?: string;
  replicas?: number;
  /** Spot-check probability (with replicas 1). */
  audit?: number;
  unitRows?: number;
  /** Comparison policy, e.g. 'allclose:1e-3,1e-4'. */
  policy?: string;
  /** Input/output name → batch axis (as `--batch-axis`). */
  batchAxes?: Record<string, number>;
  /** Inputs sent whole / outputs taken whole (as `--broadcast`). */
  broadcast?: string[];
}

export interface UploadInfo {
  upload: string;
  files: { index: number; role: 'model' | 'input'; name: string; bytes: number | undefined; received: number }[];
  /** Bytes this upload may still add. */
  bytesLeft: number;
}

export interface IntakeJobStatus {
  job: string;
  partner: string;
  name: string;
  /** Rows of the job's inputs. */
  rows?: number;
  status: 'running' | 'done' | 'failed';
  error?: string;
  /** The partner cancelled it (status 'failed'). */
  cancelled: boolean;
  /** Live while running; the final counts once it ended. */
  progress?: Progress;
  report?: JobReport;
  createdAt: number;
  finishedAt?: number;
  /** Files that can be fetched now (`report.json` and the outputs, once done and until freed). */
  files: string[];
  /** The job's files were deleted (released or expired); status and report remain. */
  freed: boolean;
}

/** How often expiries are checked: often enough for the shortest TTL, at most once a minute. */
const MAX_SWEEP_MS = 60_000;
/** Most jobs `list` returns. */
export const MAX_LIST = 1000;

export class IntakeCore {
  readonly #coord: IntakeCoordinator;
  readonly #dir: string;
  readonly #limits: IntakeLimits;
  readonly #log: Logger;
  readonly #now: () => number;
  #policy: PartnerPolicy;
  readonly #uploads = new Map<string, Upload>();
  /** Running intake jobs → their partner. */
  readonly #running = new Map<string, string>();
  #timer: NodeJS.Timeout | null = null;
  #sweeping: Promise<void> | null = null;

  constructor(coordinator: IntakeCoordinator, opts: IntakeCoreOptions) {
    this.#coord = coordinator;
    this.#dir = resolve(opts.dataDir, 'jobs');
    this.#limits = { ...defaultIntakeLimits, ...opts.limits };
    this.#policy = opts.policy ?? closedPolicy;
    this.#log = (opts.logger ?? silentLogger).child('intake');
    this.#now = opts.now ?? Date.now;
  }

  get limits(): Readonly<IntakeLimits> {
    return this.#limits;
  }

  get policy(): PartnerPolicy {
    return this.#policy;
  }

  /** Replace the partner policy (e.g. a reloaded partners file); running jobs are unaffected. */
  setPolicy(policy: PartnerPolicy): void {
    this.#policy = policy;
  }

  /**
   * Follow the coordinator's resumed jobs, delete upload folders no job refers to (uploads cut
   * short by a restart), free what expired meanwhile, and start the expiry timer.
   */
  async start(): Promise<void> {
    const store = this.#coord.store();
    for (const h of this.#coord.resumedJobs()) {
      const partner = store.getJob(h.id)?.partner;
      if (partner) this.#follow(h.id, partner, h);
    }
    const live = new Set(store.liveUploadDirs().map((d) => resolve(d)));
    for (const name of await readdir(this.#dir).catch(() => [] as string[])) {
      const dir = join(this.#dir, name);
      if (!live.has(dir)) await rm(dir, { recursive: true, force: true });
    }
    await this.sweep();
    const every = Math.max(1000, Math.min(MAX_SWEEP_MS, this.#limits.outputTtlMs / 4, this.#limits.uploadIdleMs / 4));
    this.#timer = setInterval(() => void this.sweep(), every);
    this.#timer.unref();
  }

  /** Stop the timer and drop uploads in progress (running jobs belong to the coordinator). */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#sweeping;
    for (const u of [...this.#uploads.values()]) await u.destroy();
    this.#uploads.clear();
  }

  /** @throws IntakeError PARTNER_REFUSED */
  authorize(partner: string): void {
    authorizePartner(this.#policy, partner);
  }

  /**
   * Start an upload; `files` may be declared now (with sizes) or streamed later.
   * @throws IntakeError PARTNER_REFUSED, TOO_MANY_JOBS, INTAKE_FULL, UPLOAD_BAD, UPLOAD_TOO_LARGE.
   */
  async beginUpload(partner: string, req: { files?: UploadFileDecl[] } = {}): Promise<UploadInfo> {
    this.authorize(partner);
    const mine = this.#jobsOf(partner);
    if (mine >= this.#limits.maxJobsPerPartner) {
      throw new IntakeError(IntakeErrorCode.TOO_MANY_JOBS, `partner ${partner}: expected at most ${this.#limits.maxJobsPerPartner} jobs at once (running or uploading), received a new one while ${mine} are: wait for one to finish`, { limit: this.#limits.maxJobsPerPartner });
    }
    if (this.#uploads.size + this.#running.size >= this.#limits.maxJobsTotal) {
      throw new IntakeError(IntakeErrorCode.INTAKE_FULL, `this coordinator runs its maximum of ${this.#limits.maxJobsTotal} partner jobs: try again later`, { limit: this.#limits.maxJobsTotal });
    }
    if (req.files !== undefined && (!Array.isArray(req.files) || req.files.length > 65)) throw new IntakeError(IntakeErrorCode.UPLOAD_BAD, 'files: expected a list of at most 65 files (a model and its inputs)');
    const id = `up-${this.#now().toString(36)}-${randomBytes(8).toString('hex')}`;
    const up = new Upload(id, partner, join(this.#dir, id), { maxBytes: this.#limits.maxJobBytes, maxModelBytes: this.#limits.maxModelBytes }, this.#now());
    // Declared before anything awaits, so the slot counts at once (no race past the limit).
    for (const f of req.files ?? []) up.declare(f);
    this.#uploads.set(id, up);
    try {
      await up.init();
    } catch (e) {
      this.#uploads.delete(id);
      await up.destroy();
      throw e;
    }
    this.#log.info('upload begun', { partner, upload: id, bytes: up.bytes });
    return this.#uploadInfo(up);
  }

  /** @throws IntakeError UPLOAD_UNKNOWN, UPLOAD_BAD, UPLOAD_TOO_LARGE; fs errors. */
  async writeChunk(partner: string, upload: string, file: number, offset: number, bytes: Uint8Array): Promise<{ received: number }> {
    const up = this.#upload(partner, upload);
    return { received: await up.writeChunk(file, offset, bytes, this.#now()) };
  }

  /**
   * Stream a file (a declared one by index, or a new one) from its start, enforcing the limits
   * while writing.
   * @throws IntakeError UPLOAD_UNKNOWN, UPLOAD_BAD, UPLOAD_TOO_LARGE; the source's errors.
   */
  async writeStream(partner: string, upload: string, file: number | UploadFileDecl, source: AsyncIterable<Uint8Array>): Promise<{ file: number; bytes: number }> {
    const up = this.#upload(partner, upload);
    const index = typeof file === 'number' ? file : up.declare(file);
    return { file: index, bytes: await up.writeStream(index, source, this.#now) };
  }

  /** Drop an upload and its bytes. @throws IntakeError UPLOAD_UNKNOWN */
  async abortUpload(partner: string, upload: string): Promise<void> {
    const up = this.#upload(partner, upload);
    this.#uploads.delete(upload);
    await up.destroy();
  }

  /**
   * Check the upload is complete, validate the job (the same checks as `drill run`) and its unit
   * plan against the limits, and start it. The upload is consumed either way: a refused job's
   * bytes are deleted.
   * @throws IntakeError UPLOAD_UNKNOWN, UPLOAD_BAD, UNITS_REFUSED; UserError for the job itself
   *   (model, inputs, options).
   */
  async submit(partner: string, upload: string, opts: IntakeSubmitOptions = {}): Promise<{ job: string; rows: number; units: number; unitRows: number }> {
    const up = this.#upload(partner, upload);
    if (opts.name !== undefined && (typeof opts.name !== 'string' || opts.name.length > 256)) throw new IntakeError(IntakeErrorCode.UPLOAD_BAD, 'name: expected at most 256 characters');
    if (opts.policy !== undefined && (typeof opts.policy !== 'string' || opts.policy.length > 256)) throw new IntakeError(IntakeErrorCode.UPLOAD_BAD, 'policy: expected at most 256 characters');
    const files = up.complete();
    await up.close();
    try {
      // An uploaded model must be self-contained: external data would make us read our own files.
      const spec = await prepareJob({
        model: files.model, inputs: files.inputs, outDir: join(up.dir, 'out'), workDir: up.dir, allowExternalData: false,
        replicas: opts.replicas, audit: opts.audit, unitRows: opts.unitRows, policy: opts.policy, batchAxes: opts.batchAxes, broadcast: opts.broadcast,
        ...(opts.name ? { name: opts.name } : {}),
      });
      const rowBytes = splitRowBytes(spec);
      spec.unitRows = checkUnitRows(spec.rows, rowBytes, spec.unitRows, opts.unitRows !== undefined, this.#limits);
      const handle = await this.#coord.submit(spec, { partner, uploadDir: up.dir });
      this.#uploads.delete(upload);
      this.#follow(spec.id, partner, handle);
      this.#log.info('job submitted', { partner, job: spec.id, rows: spec.rows, units: handle.progress().total });
      return { job: spec.id, rows: spec.rows, units: handle.progress().total, unitRows: spec.unitRows };
    } catch (e) {
      this.#uploads.delete(upload);
      await up.destroy();
      throw e;
    }
  }

  /** @throws IntakeError JOB_UNKNOWN */
  status(partner: string, job: string): IntakeJobStatus {
    return this.#status(this.#stored(partner, job));
  }

  /** The partner's jobs, newest first. */
  list(partner: string, opts: { limit?: number } = {}): IntakeJobStatus[] {
    const limit = Math.max(1, Math.min(MAX_LIST, opts.limit ?? MAX_LIST));
    return this.#coord.store().partnerJobs(partner, limit).map((r) => this.#status(r));
  }

  /** Every job (any partner's, or a local one), newest first: the operator's view. */
  listAll(opts: { limit?: number } = {}): IntakeJobStatus[] {
    const limit = Math.max(1, Math.min(MAX_LIST, opts.limit ?? MAX_LIST));
    return this.#coord.store().recentJobs(limit).map((r) => this.#status(r));
  }

  /** Any job's status (the operator's view). @throws IntakeError JOB_UNKNOWN */
  statusAny(job: string): IntakeJobStatus {
    const row = typeof job === 'string' && job.length <= 128 ? this.#coord.store().getJob(job) : undefined;
    if (!row) throw new IntakeError(IntakeErrorCode.JOB_UNKNOWN, `job ${JSON.stringify(String(job).slice(0, 80))}: no such job`);
    return this.#status(row);
  }

  /**
   * Long poll: resolves with the status once more than `seen` units are done, the job ends, or
   * `timeoutMs` passes (or `signal` aborts).
   * @throws IntakeError JOB_UNKNOWN
   */
  async waitForUpdate(partner: string, job: string, seen: number, timeoutMs: number, signal?: AbortSignal): Promise<IntakeJobStatus> {
    this.#stored(partner, job);
    const h = this.#coord.job(job);
    if (h && h.progress().done <= seen && !signal?.aborted) {
      await new Promise<void>((done) => {
        const finish = (): void => {
          clearTimeout(t);
          h.events.off('progress', finish);
          h.events.off('done', finish);
          signal?.removeEventListener('abort', finish);
          done();
        };
        const t = setTimeout(finish, timeoutMs);
        h.events.on('progress', finish);
        h.events.on('done', finish);
        signal?.addEventListener('abort', finish, { once: true });
      });
      // Let the coordinator record the report before reading the store.
      await new Promise<void>((r) => setImmediate(r));
    }
    return this.status(partner, job);
  }

  /**
   * Cancel a running job (it fails with 'cancelled by the partner'); an ended job is left as it is.
   * @throws IntakeError JOB_UNKNOWN
   */
  async cancel(partner: string, job: string): Promise<IntakeJobStatus> {
    this.#stored(partner, job);
    if (await this.#coord.cancel(job)) this.#log.info('job cancelled by its partner', { partner, job });
    await new Promise<void>((r) => setImmediate(r));
    return this.status(partner, job);
  }

  /**
   * Where an output file of a done job is, for the transport to stream (Range requests welcome).
   * @throws IntakeError JOB_UNKNOWN, NO_OUTPUT (not done, freed, or no such file).
   */
  async outputFile(partner: string, job: string, file: string): Promise<{ path: string; size: number }> {
    const row = this.#stored(partner, job);
    const st = this.#status(row);
    if (!st.files.includes(file)) {
      const why = st.freed ? 'its files were freed (released or expired)' : st.status !== 'done' ? `it is ${st.status}` : `it has ${st.files.join(', ')}`;
      throw new IntakeError(IntakeErrorCode.NO_OUTPUT, `job ${job}: expected one of its output files, received ${JSON.stringify(file.slice(0, 80))} (${why})`);
    }
    const path = join((JSON.parse(row.spec) as JobSpec).outDir, file);
    return { path, size: (await stat(path)).size };
  }

  /**
   * The partner fetched its outputs: delete the job's files now (status and report remain).
   * @throws IntakeError JOB_UNKNOWN, NO_OUTPUT (the job is still running: cancel it instead).
   */
  async release(partner: string, job: string): Promise<void> {
    const row = this.#stored(partner, job);
    if (row.status === 'running') throw new IntakeError(IntakeErrorCode.NO_OUTPUT, `job ${job}: expected an ended job, received a running one (cancel it first)`);
    await this.#free(row, 'released');
  }

  /** Delete what expired: idle uploads, finished jobs past the TTL, failed jobs' files. */
  sweep(): Promise<void> {
    this.#sweeping ??= this.#sweep().finally(() => (this.#sweeping = null));
    return this.#sweeping;
  }

  async #sweep(): Promise<void> {
    const now = this.#now();
    for (const up of [...this.#uploads.values()]) {
      if (now - up.lastActivity >= this.#limits.uploadIdleMs) {
        this.#uploads.delete(up.id);
        this.#log.warn('upload idle; dropped', { partner: up.partner, upload: up.id });
        await up.destroy();
      }
    }
    let store: JobStore;
    try {
      store = this.#coord.store();
    } catch {
      return; // coordinator stopped
    }
    for (const row of store.unfreedFinished()) {
      if (row.status === 'failed' || now - (row.finishedAt ?? 0) >= this.#limits.outputTtlMs) await this.#free(row, row.status === 'failed' ? 'failed' : 'expired');
    }
  }

  #follow(id: string, partner: string, h: JobHandle): void {
    this.#running.set(id, partner);
    void h.result.then(async (r) => {
      this.#running.delete(id);
      if (r.status === 'failed') {
        const row = this.#coord.store().getJob(id);
        if (row) await this.#free(row, 'failed');
      }
    }).catch((e: unknown) => this.#log.error('cleaning up a job failed', { job: id, error: String(e) }));
  }

  async #free(row: StoredJob, why: string): Promise<void> {
    if (!row.uploadDir || row.freedAt !== null) return;
    const dir = resolve(row.uploadDir);
    // Only ever delete inside our own jobs folder (the path comes from our store, but be sure).
    if (dir.startsWith(this.#dir + '/')) await rm(dir, { recursive: true, force: true });
    try {
      this.#coord.store().markFreed(row.id, this.#now());
    } catch {
      return;
    }
    this.#log.info('job files freed', { job: row.id, partner: row.partner, why });
  }

  #jobsOf(partner: string): number {
    let n = 0;
    for (const u of this.#uploads.values()) if (u.partner === partner) n++;
    for (const p of this.#running.values()) if (p === partner) n++;
    return n;
  }

  #upload(partner: string, id: string): Upload {
    const up = typeof id === 'string' ? this.#uploads.get(id) : undefined;
    if (!up || up.partner !== partner) throw new IntakeError(IntakeErrorCode.UPLOAD_UNKNOWN, `upload ${JSON.stringify(String(id).slice(0, 80))}: no such upload of partner ${partner} (never begun, already submitted, or dropped after ${this.#limits.uploadIdleMs} ms idle)`);
    return up;
  }

  #uploadInfo(up: Upload): UploadInfo {
    return {
      upload: up.id,
      files: up.files().map((f: Readonly<UploadFileState>) => ({ index: f.index, role: f.role, name: f.name, bytes: f.bytes, received: f.received })),
      bytesLeft: this.#limits.maxJobBytes - up.bytes,
    };
  }

  #stored(partner: string, job: string): StoredJob {
    const row = typeof job === 'string' && job.length <= 128 ? this.#coord.store().getJob(job) : undefined;
    if (!row || row.partner !== partner) throw new IntakeError(IntakeErrorCode.JOB_UNKNOWN, `job ${JSON.stringify(String(job).slice(0, 80))}: no such job of partner ${partner}`);
    return row;
  }

  #status(row: StoredJob): IntakeJobStatus {
    const spec = JSON.parse(row.spec) as JobSpec;
    const report = row.report ? (JSON.parse(row.report) as JobReport) : undefined;
    const live = row.status === 'running' ? this.#coord.job(row.id) : undefined;
    const freed = row.freedAt !== null;
    const files = row.status === 'done' && !freed && report ? ['report.json', ...Object.values(report.outputs).map((p) => basename(p))] : [];
    const progress = live?.progress() ?? (report ? progressOf(report) : undefined);
    return {
      job: row.id,
      partner: row.partner ?? '',
      name: spec.name,
      rows: spec.rows,
      status: row.status,
      ...(row.error ? { error: row.error } : {}),
      cancelled: row.error === CANCELLED_MESSAGE,
      ...(progress ? { progress } : {}),
      ...(report ? { report } : {}),
      createdAt: row.createdAt,
      ...(row.finishedAt !== null ? { finishedAt: row.finishedAt } : {}),
      files,
      freed,
    };
  }
}

/** The final progress counters of an ended job, from its report. */
function progressOf(r: JobReport): Progress {
  const done = r.units.agreed + r.units.disputed + r.units.unverified + r.units.unaudited;
  return {
    total: r.units.total, done, agreed: r.units.agreed, disputed: r.units.disputed, failed: r.units.failed, unverified: r.units.unverified,
    unaudited: r.units.unaudited, audited: r.units.audited, inflight: 0, reissued: r.units.reissued, reopened: r.units.reopened,
    rowsDone: r.status === 'done' ? r.rows : Math.round(r.rowsPerSecond * r.elapsedMs / 1000), rowsUnchecked: r.rowsUnchecked,
    quarantined: r.workers.filter((w) => w.quarantined).length,
  };
}
