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
import { EventEmitter } from 'node:events';
import { writeFile, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import type { DrillNode } from '../net/node.ts';
import { BlobServer } from '../net/blobs.ts';
import type { Logger } from '../util/log.ts';
import { silentLogger } from '../util/log.ts';
import { DrillError } from '../util/errors.ts';
import { formatPolicy } from '../pod/policy.ts';
import type { CreditRecord } from '../pod/credit.ts';
import type { FaultRecord } from '../pod/fault.ts';
import { cryptoRandom, seededRandom } from '../util/random.ts';
import { PROTOCOL, UNITS_TOPIC, formatFsProbe } from '../protocol/grid.ts';
import type { Lease, ResumedState } from './scheduler.ts';
import { JobStore } from './store.ts';
import type { JobOwner } from './store.ts';
import type { JobSpec } from './job.ts';
import { createRunningJob, jobHandle } from './running.ts';
import type { RunningJob, JobHandle } from './running.ts';
import { WorkerRegistry, defaultWorkerRegistryOptions } from './workers.ts';
import { LeaseDesk } from './leases.ts';
import { RevealDesk } from './reveal.ts';
import { ResultSpool } from './spool.ts';
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
  /**
   * A drawn replica waits this long for its worker to claim it before another worker is drawn
   * (scheduler.ts defaultSchedulerOptions.reserveMs).
   */
  reserveMs?: number;
  /**
   * Threads a worker's hello may claim; more are clamped to this. Each thread earns a worker
   * `inflightPerThread` leases (units it can sit on until its deadline) and weight in the replica
   * draws: 64 threads (128 leases) covers one session per core of all but the largest servers,
   * while one peer claiming the protocol's maximum of 1,024 threads could otherwise hold 2,048
   * units hostage and be drawn for most replicas.
   */
  maxWorkerThreads?: number;
  /** Forget a disconnected worker this long after it left (the registry stays bounded). */
  forgetWorkerMs?: number;
  /** Called with every signed credit record (the chain publishes them to block producers). */
  onCredit?: (r: CreditRecord) => void;
  /** Called with a signed fault record for each worker still quarantined when a job ends. */
  onFault?: (r: FaultRecord) => void;
  /**
   * Seed of the replica draws and audit coins, for reproducible experiments and tests. Absent
   * (the default), draws use the OS CSPRNG so no worker can foresee them.
   */
  seed?: string;
  /**
   * Which workers an embedded grid started as cheaters (demo): reports mark them. A worker
   * never says so itself.
   */
  isCheater?: (peer: string) => boolean;
  logger?: Logger;
  now?: () => number;
}

/** What a coordinator tells observers (the HTTP API's event stream and metrics). */
export interface CoordinatorEvents {
  /** A job started (submitted, or resumed after a restart): follow its handle's events. */
  job: [JobHandle];
  /** A worker said hello (connected) or left. */
  worker: [{ peer: string; connected: boolean }];
  /** A lease was committed this many ms after it was issued. */
  lease: [number];
}

/** The error of a job its partner cancelled. */
export const CANCELLED_MESSAGE = 'cancelled by the partner';

export const defaultCoordinatorOptions = {
  leaseMs: 120_000,
  announceMs: 1_000,
  stallMs: 30_000,
  inflightPerThread: 2,
  maxWorkerThreads: 64,
  forgetWorkerMs: defaultWorkerRegistryOptions.forgetAfterMs,
} as const;

type ResolvedOptions = Required<Omit<CoordinatorOptions, 'onCredit' | 'onFault' | 'logger' | 'now' | 'seed' | 'isCheater' | 'reserveMs'>> &
  Pick<CoordinatorOptions, 'onCredit' | 'onFault' | 'seed' | 'isCheater' | 'reserveMs'>;

/** Announcements of one job are coalesced within this window: claims draw replicas many times a
 * second, and one gossip message wakes every drawn worker. */
const ANNOUNCE_COALESCE_MS = 20;


export class Coordinator {
  readonly #node: DrillNode;
  readonly #seed: Uint8Array;
  readonly #opts: ResolvedOptions;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #workers: WorkerRegistry;
  readonly #jobs = new Map<string, RunningJob>();
  #store: JobStore | null = null;
  /** Random per start: lease ids from before a restart never match new ones. */
  readonly #leaseTag = randomBytes(3).toString('hex') + '-';
  readonly #resumed: JobHandle[] = [];
  #fsProbe: { path: string; token: string } | null = null;
  /** Results of workers on our filesystem come through here (spool.ts); null without the probe. */
  #spool: ResultSpool | null = null;
  #blobs: BlobServer | null = null;
  #reveals: RevealDesk | null = null;
  #timer: NodeJS.Timeout | null = null;
  readonly #announcing = new Set<string>();
  #offPeer: (() => void) | null = null;
  /** Jobs starting, workers coming and going, lease latencies (see CoordinatorEvents). */
  readonly events = new EventEmitter<CoordinatorEvents>();

  constructor(node: DrillNode, opts: CoordinatorOptions) {
    this.#node = node;
    // Credit records are signed with the coordinator's libp2p Ed25519 identity (raw = seed ‖ pub).
    this.#seed = node.privateKey.raw.subarray(0, 32);
    this.#opts = { ...defaultCoordinatorOptions, ...opts };
    this.#workers = new WorkerRegistry({ forgetAfterMs: this.#opts.forgetWorkerMs });
    this.#workers.changes.on('change', (c) => this.events.emit('worker', c));
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
      await writeFile(probe, formatFsProbe(this.#node.peerId, token), { mode: 0o600 });
      this.#fsProbe = { path: probe, token };
      const spool = new ResultSpool(resolve(this.#opts.dataDir, 'spool'));
      await spool.start();
      this.#spool = spool;
    } catch (e) {
      this.#log.warn('cannot write the filesystem probe or the result spool; every lease and reveal will carry its bytes', { error: String(e) });
    }
    this.#blobs = new BlobServer(this.#node);
    await this.#blobs.start();
    const reveals = new RevealDesk({
      node: this.#node,
      log: this.#log,
      seed: this.#seed,
      now: this.#now,
      store: () => this.#store,
      spool: this.#spool,
      announce: (job) => this.#announceSoon(job),
      fail: (job, m) => void this.#fail(job, m),
      finish: (job) => void this.#finish(job),
      ...(this.#opts.onCredit ? { onCredit: this.#opts.onCredit } : {}),
      ...(this.#opts.onFault ? { onFault: this.#opts.onFault } : {}),
    });
    this.#reveals = reveals;
    const leases = new LeaseDesk({
      peerId: this.#node.peerId,
      log: this.#log,
      workers: this.#workers,
      now: this.#now,
      jobs: () => [...this.#jobs.values()].filter((j) => !j.finishing),
      jobOfLease: (id) => this.#jobOfLease(id),
      announce: (job) => this.#announceSoon(job),
      fail: (job, m) => void this.#fail(job, m),
      reveal: (job: RunningJob, l: Lease) => void reveals.reveal(job, l),
      unitError: (job, lease, worker, message) => reveals.error(job, lease, worker, message),
      remoteIp: (peer) => this.#node.remoteIp(peer),
      process: (job) => void reveals.process(job),
      committed: (ms) => {
        if (this.events.listenerCount('lease') > 0) this.events.emit('lease', ms);
      },
    }, { inflightPerThread: this.#opts.inflightPerThread, maxWorkerThreads: this.#opts.maxWorkerThreads, fsProbe: this.#fsProbe, spool: this.#spool });
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
    for (const j of [...this.#jobs.values()]) {
      void this.#fail(j, 'coordinator stopped');
      await j.queue;
    }
    await this.#blobs?.stop();
    if (this.#fsProbe) await rm(this.#fsProbe.path, { force: true });
    this.#fsProbe = null;
    await this.#spool?.stop();
    this.#spool = null;
    this.#store?.close();
    this.#store = null;
  }

  /**
   * Registered workers (connected or not; `leftAt` when they left). `cheater` only for workers
   * an embedded grid started as such.
   */
  workers(): { peer: string; connected: boolean; threads: number; device: string; score: number; cheater: boolean; leftAt?: number }[] {
    const cheat = this.#opts.isCheater ?? (() => false);
    return this.#workers.all().map((w) => ({ peer: w.peer, connected: w.connected, threads: w.threads, device: w.device, score: w.score, cheater: cheat(w.peer), ...(w.leftAt !== undefined && !w.connected ? { leftAt: w.leftAt } : {}) }));
  }

  /** Handles of the jobs running now. */
  runningJobs(): JobHandle[] {
    return [...this.#jobs.values()].filter((j) => !j.finishing).map(jobHandle);
  }

  /** Resolves once `n` workers have registered (event-driven). @throws DrillError WORKERS_TIMEOUT */
  waitForWorkers(n: number, timeoutMs = 60_000): Promise<void> {
    return this.#workers.waitFor(n, timeoutMs);
  }

  /**
   * Start a validated job. `owner`: the partner that submitted it through the intake and the
   * folder holding its files (recorded with the job, so a restart keeps who owns it).
   * @throws DrillError NOT_STARTED, MODEL_CHANGED; the model file's read errors.
   */
  async submit(spec: JobSpec, owner?: JobOwner): Promise<JobHandle> {
    const store = this.#mustStore();
    const hash = await this.#blobs!.addFile(spec.modelPath);
    if (hash !== spec.modelHash) throw new DrillError('MODEL_CHANGED', `model file ${spec.modelPath} changed since the job was prepared`);
    store.createJob(spec.id, spec, this.#now(), owner);
    const job = this.#addJob(spec, undefined, this.#now());
    this.#log.info('job accepted', { job: spec.id, rows: spec.rows, units: job.sched.progress().total, replicas: spec.replicas, audit: spec.audit, policy: formatPolicy(spec.policy) });
    void this.#announce(job);
    const handle = jobHandle(job);
    this.events.emit('job', handle);
    return handle;
  }

  /** Jobs that were running when the coordinator last stopped and were resumed by start(). */
  resumedJobs(): JobHandle[] {
    return this.#resumed;
  }

  /** A running job's handle (undefined once it ended: its report is in the store). */
  job(id: string): JobHandle | undefined {
    const j = this.#jobs.get(id);
    return j && !j.finishing ? jobHandle(j) : undefined;
  }

  /**
   * Stop a running job at the partner's request: it fails with 'cancelled by the partner' (its
   * partial outputs are deleted, finished units keep their credit). Resolves false when the job
   * is not running (unknown or already ended).
   */
  async cancel(id: string): Promise<boolean> {
    const j = this.#jobs.get(id);
    if (!j || j.finishing) return false;
    await this.#fail(j, CANCELLED_MESSAGE);
    return true;
  }

  /** The job store (status and reports of every job, running or ended). @throws DrillError NOT_STARTED */
  store(): JobStore {
    return this.#mustStore();
  }

  #addJob(spec: JobSpec, resumed: ResumedState | undefined, startedAt: number): RunningJob {
    const job = createRunningJob(spec, {
      leaseMs: this.#opts.leaseMs,
      leaseTag: this.#leaseTag,
      pool: () => this.#workers.candidates(),
      random: this.#opts.seed !== undefined ? seededRandom(`${this.#opts.seed}/${spec.id}`) : cryptoRandom(),
      ...(this.#opts.reserveMs !== undefined ? { reserveMs: this.#opts.reserveMs } : {}),
    }, resumed, startedAt);
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
        const job = this.#addJob(spec, { units: done, quarantined: store.quarantined(spec.id) }, sj.createdAt);
        if (sj.layout) await job.out.resume(sj.layout);
        else if (done.size > 0) throw new DrillError('RESUME', 'units are recorded done but the output layout is missing');
        for (const r of store.credits(spec.id)) {
          job.ledger.apply(r);
          job.creditRecords++;
        }
        for (const u of store.unitStats(spec.id)) for (const w of u.workers) job.runs.set(w, (job.runs.get(w) ?? 0) + 1);
        this.#resumed.push(jobHandle(job));
        this.events.emit('job', jobHandle(job));
        this.#log.warn('resumed job after a restart', { job: spec.id, unitsDone: done.size, units: job.sched.progress().total });
        if (job.sched.isFinished()) await this.#finish(job);
        else this.#announceSoon(job);
      } catch (e) {
        this.#jobs.delete(spec.id);
        if (![...this.#jobs.values()].some((j) => j.spec.modelHash === spec.modelHash)) this.#blobs?.remove(spec.modelHash);
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
    if (!this.#workers.gone(peer, this.#now())) return;
    for (const job of this.#jobs.values()) {
      if (job.finishing) continue;
      const dropped = job.sched.workerGone(peer, this.#now());
      if (dropped.length) this.#log.warn('worker left; drawing other workers for its units', { peer, units: dropped.map((l) => l.unit) });
      void this.#reveals?.process(job);
      this.#announceSoon(job);
    }
  }

  #tick(): void {
    const now = this.#now();
    this.#workers.prune(now);
    const connected = this.#workers.connected();
    for (const job of this.#jobs.values()) {
      if (job.finishing) continue;
      const late = job.sched.expire(now);
      if (late.length) this.#log.warn('leases expired; drawing other workers', { job: job.spec.id, units: late.map((l) => l.unit) });
      void this.#reveals?.process(job);
      const stalled = new Set(job.sched.stalledUnits());
      for (const u of [...job.stalledSince.keys()]) if (!stalled.has(u)) job.stalledSince.delete(u);
      for (const u of stalled) {
        const since = job.stalledSince.get(u) ?? now;
        job.stalledSince.set(u, since);
        if (now - since >= this.#opts.stallMs) {
          void this.#fail(job, `unit ${u} needs another worker, but each of the ${connected.length} connected workers already ran it, is quarantined in this job or shares an address with a worker that ran it: start more workers (a disputed unit needs at least replicas + 1 distinct workers)`);
          break;
        }
      }
      if (!job.finishing) void this.#announce(job);
    }
  }

  /** Announce the job's open units shortly (coalesced: many calls, one gossip message). */
  #announceSoon(job: RunningJob): void {
    if (this.#announcing.has(job.spec.id)) return;
    this.#announcing.add(job.spec.id);
    setTimeout(() => {
      this.#announcing.delete(job.spec.id);
      if (!job.finishing) void this.#announce(job);
    }, ANNOUNCE_COALESCE_MS).unref();
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

  /** Queue the job's end behind its pending events (callers inside the queue must not await it). */
  #end(job: RunningJob, fn: () => Promise<void>): Promise<void> {
    const p = job.queue.then(fn).catch((e: unknown) => this.#log.error('ending the job failed', { job: job.spec.id, error: String(e) }));
    job.queue = p;
    return p;
  }

  #finish(job: RunningJob): Promise<void> {
    if (job.finishing) return Promise.resolve();
    job.finishing = true;
    return this.#end(job, async () => {
      const outputs = await job.out.finish();
      await this.#complete(job, 'done', outputs);
    });
  }

  #fail(job: RunningJob, message: string): Promise<void> {
    if (job.finishing) return Promise.resolve();
    job.finishing = true;
    job.failed = message;
    this.#log.error('job failed', { job: job.spec.id, message });
    return this.#end(job, async () => {
      await job.out.abort();
      await this.#complete(job, 'failed', {});
    });
  }

  async #complete(job: RunningJob, status: 'done' | 'failed', outputs: Record<string, string>): Promise<void> {
    // Workers still quarantined forfeit their credit for the job: a signed fault record each.
    this.#reveals?.faultRecords(job);
    const report = buildReport(job, this.#workers, status, outputs, this.#now(), this.#opts.isCheater);
    // Status and report in one row update: whoever reads the store sees both or neither.
    this.#store?.finishJob(job.spec.id, status, this.#now(), job.failed ?? undefined, report);
    try {
      await writeReport(job.spec.outDir, report);
    } catch (e) {
      this.#log.error('cannot write report.json', { error: String(e) });
    }
    await job.inputs.close();
    await this.#spool?.dropJob(job.spec.id);
    this.#jobs.delete(job.spec.id);
    // The model is served to workers only while a job needs it: free it with the last such job.
    if (![...this.#jobs.values()].some((j) => j.spec.modelHash === job.spec.modelHash)) this.#blobs?.remove(job.spec.modelHash);
    job.events.emit('done', report);
    job.resolve(report);
  }
}
