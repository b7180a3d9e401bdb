/**
 * The coordinator service: the composition root of the coordinator's rooms. It owns the job
 * table and the life of each job (accept, resume after a restart, announce open units, expire
 * leases, fail stalled units, finish), and wires the rooms to the network:
 *  - workers.ts  who is registered and connected;
 *  - leases.ts   the requests workers send: hello, claim, commit (+ claim), error;
 *  - inputs.ts   input rows read per lease;
 *  - reveal.ts   pulling committed results, PoD, and writing decided units with their credit;
 *  - output.ts   the output files; report.ts the job report.
 */
import { writeFile, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import type { DrillNode } from '../net/node.ts';
import { BlobServer } from '../net/blobs.ts';
import { MAX_INLINED_MODEL_BYTES } from './model.ts';
import type { Logger } from '../util/log.ts';
import { silentLogger } from '../util/log.ts';
import { DrillError } from '../util/errors.ts';
import { formatPolicy } from '../pod/policy.ts';
import type { CreditRecord } from '../pod/credit.ts';
import { PROTOCOL, UNITS_TOPIC } from '../protocol/grid.ts';
import type { Lease } from './scheduler.ts';
import { JobStore } from './store.ts';
import type { JobSpec } from './job.ts';
import { createRunningJob, jobHandle } from './running.ts';
import type { RunningJob, JobHandle } from './running.ts';
import { WorkerRegistry } from './workers.ts';
import { LeaseDesk } from './leases.ts';
import { RevealDesk } from './reveal.ts';
import { buildReport, writeReport } from './report.ts';

export type { JobReport, WorkerReport } from './report.ts';
export type { JobEvents, JobHandle } from './running.ts';

export interface CoordinatorOptions {
  /** Where the job store lives (`coordinator.sqlite`). */
  dataDir: string;
  /**
   * A worker must commit within this time of leasing a unit, else the unit is re-issued.
   * 120 s: a default unit is ~40 GFLOP (under a second on a current CPU core, seconds on an old one); the slack covers
   * a first model download and a busy machine. Departed workers are detected at once by their
   * disconnect, not by this deadline.
   */
  leaseMs?: number;
  /**
   * Open units are re-announced this often (new workers, lost gossip). 1 s is far below any
   * job's length and costs one small gossip message per job per second.
   */
  announceMs?: number;
  /**
   * A unit that needs another replica which no connected worker may run (all ran it) fails the
   * job after this long. 30 s gives new workers time to join a public coordinator; an embedded
   * grid sets 0 (nobody else will join).
   */
  stallMs?: number;
  /** Un-committed leases per worker = its threads × this. 2 keeps a unit queued behind each running one. */
  inflightPerThread?: number;
  /** Called with every signed credit record (the chain publishes them to block producers). */
  onCredit?: (r: CreditRecord) => void;
  logger?: Logger;
  now?: () => number;
}

export const defaultCoordinatorOptions = {
  leaseMs: 120_000,
  announceMs: 1_000,
  stallMs: 30_000,
  inflightPerThread: 2,
} as const;

type ResolvedOptions = Required<Omit<CoordinatorOptions, 'onCredit' | 'logger' | 'now'>> & Pick<CoordinatorOptions, 'onCredit'>;


export class Coordinator {
  readonly #node: DrillNode;
  readonly #seed: Uint8Array;
  readonly #opts: ResolvedOptions;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #workers = new WorkerRegistry();
  readonly #jobs = new Map<string, RunningJob>();
  #store: JobStore | null = null;
  /** Random per start: lease ids from before a restart never match new ones. */
  readonly #leaseTag = randomBytes(3).toString('hex') + '-';
  readonly #resumed: JobHandle[] = [];
  #fsProbe: { path: string; token: string } | null = null;
  #blobs: BlobServer | null = null;
  #timer: NodeJS.Timeout | null = null;
  #offPeer: (() => void) | null = null;

  constructor(node: DrillNode, opts: CoordinatorOptions) {
    this.#node = node;
    // Credit records are signed with the coordinator's libp2p Ed25519 identity (raw = seed ‖ pub).
    this.#seed = node.privateKey.raw.subarray(0, 32);
    this.#opts = { ...defaultCoordinatorOptions, ...opts };
    this.#log = (opts.logger ?? silentLogger).child('coordinator');
    this.#now = opts.now ?? Date.now;
  }

  get peerId(): string {
    return this.#node.peerId;
  }

  async start(): Promise<void> {
    this.#store = new JobStore(join(this.#opts.dataDir, 'coordinator.sqlite'));
    // The same-filesystem probe: a fresh random token only a process on our filesystem can read.
    const token = randomBytes(32).toString('hex');
    const probe = resolve(this.#opts.dataDir, `fs-probe-${this.#node.peerId.slice(-12)}`);
    try {
      await writeFile(probe, token, { mode: 0o600 });
      this.#fsProbe = { path: probe, token };
    } catch (e) {
      this.#log.warn('cannot write the filesystem probe; every lease will carry its input bytes', { error: String(e) });
    }
    // It serves the models of the jobs it accepted: as large as intake lets a model be (2 GiB).
    this.#blobs = new BlobServer(this.#node, { maxBlobBytes: MAX_INLINED_MODEL_BYTES });
    await this.#blobs.start();
    const reveals = new RevealDesk({
      node: this.#node,
      log: this.#log,
      seed: this.#seed,
      now: this.#now,
      store: () => this.#store,
      announce: (job) => void this.#announce(job),
      fail: (job, m) => this.#fail(job, m),
      finish: (job) => this.#finish(job),
      ...(this.#opts.onCredit ? { onCredit: this.#opts.onCredit } : {}),
    });
    const leases = new LeaseDesk({
      peerId: this.#node.peerId,
      log: this.#log,
      workers: this.#workers,
      now: this.#now,
      jobs: () => [...this.#jobs.values()].filter((j) => !j.finishing),
      jobOfLease: (id) => this.#jobOfLease(id),
      announce: (job) => void this.#announce(job),
      fail: (job, m) => this.#fail(job, m),
      reveal: (job: RunningJob, l: Lease) => void reveals.reveal(job, l),
    }, { inflightPerThread: this.#opts.inflightPerThread, fsProbe: this.#fsProbe });
    // Subscribing makes us a mesh member of the units topic, so our announcements propagate.
    this.#node.subscribe(UNITS_TOPIC, () => undefined);
    await this.#node.handle(PROTOCOL.hello, (req, from) => leases.onHello(req, from));
    await this.#node.handle(PROTOCOL.claim, (req, from) => leases.onClaim(req, from));
    await this.#node.handle(PROTOCOL.commit, (req, from) => leases.onCommit(req, from));
    await this.#node.handle(PROTOCOL.error, (req, from) => leases.onError(req, from));
    this.#offPeer = this.#node.onPeer('disconnect', (peer) => this.#onWorkerGone(peer));
    await this.#resumeJobs(this.#store);
    this.#timer = setInterval(() => this.#tick(), this.#opts.announceMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#offPeer?.();
    for (const p of Object.values(PROTOCOL)) if (p !== PROTOCOL.reveal) await this.#node.unhandle(p).catch(() => undefined);
    for (const j of this.#jobs.values()) if (!j.finishing) await this.#fail(j, 'coordinator stopped');
    await this.#blobs?.stop();
    if (this.#fsProbe) await rm(this.#fsProbe.path, { force: true });
    this.#fsProbe = null;
    this.#store?.close();
    this.#store = null;
  }

  /** Registered workers (connected or not). */
  workers(): { peer: string; connected: boolean; threads: number; device: string; score: number; cheater: boolean }[] {
    return this.#workers.all().map((w) => ({ peer: w.peer, connected: w.connected, threads: w.threads, device: w.device, score: w.score, cheater: w.cheater }));
  }

  /** Resolves once `n` workers have registered (event-driven). @throws DrillError WORKERS_TIMEOUT */
  waitForWorkers(n: number, timeoutMs = 60_000): Promise<void> {
    return this.#workers.waitFor(n, timeoutMs);
  }

  /** Start a validated job. */
  async submit(spec: JobSpec): Promise<JobHandle> {
    const store = this.#mustStore();
    const hash = await this.#blobs!.addFile(spec.modelPath);
    if (hash !== spec.modelHash) throw new DrillError('MODEL_CHANGED', `model file ${spec.modelPath} changed since the job was prepared`);
    store.createJob(spec.id, spec, this.#now());
    const job = this.#addJob(spec, new Map(), this.#now());
    this.#log.info('job accepted', { job: spec.id, rows: spec.rows, units: job.sched.progress().total, replicas: spec.replicas, policy: formatPolicy(spec.policy) });
    void this.#announce(job);
    return jobHandle(job);
  }

  /** Jobs that were running when the coordinator last stopped and were resumed by start(). */
  resumedJobs(): JobHandle[] {
    return this.#resumed;
  }

  #addJob(spec: JobSpec, doneUnits: ReadonlyMap<number, string>, startedAt: number): RunningJob {
    const job = createRunningJob(spec, { leaseMs: this.#opts.leaseMs, leaseTag: this.#leaseTag }, doneUnits, startedAt);
    this.#jobs.set(spec.id, job);
    return job;
  }

  /**
   * Resume the jobs the store still marks running (the coordinator stopped or crashed): units
   * recorded done keep their rows in the partial output files and their credit; the rest are
   * scheduled again. A job that cannot be resumed (inputs or partial outputs gone) is marked
   * failed with the reason.
   */
  async #resumeJobs(store: JobStore): Promise<void> {
    for (const sj of store.runningJobs()) {
      const spec = JSON.parse(sj.spec) as JobSpec;
      try {
        const hash = await this.#blobs!.addFile(spec.modelPath);
        if (hash !== spec.modelHash) throw new DrillError('MODEL_CHANGED', `model file ${spec.modelPath} changed`);
        const done = store.doneUnits(spec.id);
        const job = this.#addJob(spec, done, sj.createdAt);
        if (sj.layout) await job.out.resume(sj.layout);
        else if (done.size > 0) throw new DrillError('RESUME', 'units are recorded done but the output layout is missing');
        for (const r of store.credits(spec.id)) {
          job.ledger.apply(r);
          job.creditRecords++;
        }
        for (const u of store.unitStats(spec.id)) for (const w of u.workers) job.runs.set(w, (job.runs.get(w) ?? 0) + 1);
        this.#resumed.push(jobHandle(job));
        this.#log.warn('resumed job after a restart', { job: spec.id, unitsDone: done.size, units: job.sched.progress().total });
        if (job.sched.isFinished()) await this.#finish(job);
        else void this.#announce(job);
      } catch (e) {
        this.#jobs.delete(spec.id);
        store.finishJob(spec.id, 'failed', this.#now(), `cannot resume after a restart: ${(e as Error).message}`);
        this.#log.error('cannot resume job', { job: spec.id, error: String(e) });
      }
    }
  }

  #mustStore(): JobStore {
    if (!this.#store) throw new DrillError('NOT_STARTED', 'coordinator is not started');
    return this.#store;
  }

  #jobOfLease(leaseId: string): RunningJob | undefined {
    const id = leaseId.slice(0, leaseId.indexOf('/'));
    const j = this.#jobs.get(id);
    return j && !j.finishing ? j : undefined;
  }

  #onWorkerGone(peer: string): void {
    if (!this.#workers.gone(peer)) return;
    for (const job of this.#jobs.values()) {
      const dropped = job.sched.workerGone(peer);
      if (dropped.length) {
        this.#log.warn('worker left; re-issuing its units', { peer, units: dropped.map((l) => l.unit) });
        void this.#announce(job);
      }
    }
  }

  #tick(): void {
    const now = this.#now();
    const connected = this.#workers.connected();
    for (const job of this.#jobs.values()) {
      if (job.finishing) continue;
      const late = job.sched.expire(now);
      if (late.length) this.#log.warn('leases expired; re-issuing', { job: job.spec.id, units: late.map((l) => l.unit) });
      const stalled = new Set(job.sched.stalledUnits(connected));
      for (const u of [...job.stalledSince.keys()]) if (!stalled.has(u)) job.stalledSince.delete(u);
      for (const u of stalled) {
        const since = job.stalledSince.get(u) ?? now;
        job.stalledSince.set(u, since);
        if (now - since >= this.#opts.stallMs) {
          void this.#fail(job, `unit ${u} needs another replica to settle a disagreement, but all ${connected.length} connected workers already ran it: start more workers (a disputed unit needs at least replicas + 1 distinct workers)`);
          break;
        }
      }
      if (!job.finishing) void this.#announce(job);
    }
  }

  async #announce(job: RunningJob): Promise<void> {
    let need = 0;
    let first = -1;
    let rows = 0;
    for (const u of job.sched.openUnits()) {
      if (first < 0) {
        first = u.unit;
        rows = u.end - u.start;
      }
      need += u.need;
    }
    if (first < 0) return;
    try {
      await this.#node.publish(UNITS_TOPIC, { coordinator: this.#node.peerId, job: job.spec.id, unit: first, modelHash: job.spec.modelHash, rows, flops: job.spec.flopsPerRow * rows, need: Math.min(64, need), at: this.#now() });
    } catch (e) {
      this.#log.debug('announce failed', { error: String(e) });
    }
  }

  async #finish(job: RunningJob): Promise<void> {
    if (job.finishing) return;
    job.finishing = true;
    const outputs = await job.out.finish();
    this.#store?.finishJob(job.spec.id, 'done', this.#now());
    await this.#complete(job, 'done', outputs);
  }

  async #fail(job: RunningJob, message: string): Promise<void> {
    if (job.finishing) return;
    job.finishing = true;
    job.failed = message;
    this.#log.error('job failed', { job: job.spec.id, message });
    await Promise.allSettled([...job.pendingWrites]);
    await job.out.abort();
    this.#store?.finishJob(job.spec.id, 'failed', this.#now(), message);
    await this.#complete(job, 'failed', {});
  }

  async #complete(job: RunningJob, status: 'done' | 'failed', outputs: Record<string, string>): Promise<void> {
    const report = buildReport(job, this.#workers, status, outputs, this.#now());
    try {
      await writeReport(job.spec.outDir, report);
    } catch (e) {
      this.#log.error('cannot write report.json', { error: String(e) });
    }
    await job.inputs.close();
    this.#jobs.delete(job.spec.id);
    job.events.emit('done', report);
    job.resolve(report);
  }
}
