/**
 * The coordinator service: accepts jobs, splits them into units, announces them over gossip,
 * leases units to registered workers (never two replicas of a unit to one peer, a bounded
 * number of un-committed leases per worker), gathers commitments and then reveals, decides each
 * unit by Proof of Drilling, streams accepted rows to the output files, signs a credit record
 * for every verified unit, and re-issues units whose worker leaves or misses its deadline.
 */
import { writeFile, rename, open, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { EventEmitter } from 'node:events';
import type { DrillNode } from '../net/node.ts';
import { BlobServer } from '../net/blobs.ts';
import type { Logger } from '../util/log.ts';
import { silentLogger } from '../util/log.ts';
import { DrillError, isDrillError } from '../util/errors.ts';
import { readNpyHeader } from '../util/npy.ts';
import type { HostTensor, Dtype } from '../util/tensor.ts';
import { BYTES_PER_ELEMENT, elementCount } from '../util/tensor.ts';
import { formatPolicy } from '../pod/policy.ts';
import { policyAgree } from '../pod/quorum.ts';
import { commitment, resultDigest } from '../pod/commit.ts';
import { signCreditRecord } from '../pod/credit.ts';
import type { CreditRecord } from '../pod/credit.ts';
import { CreditLedger } from '../pod/ledger.ts';
import {
  PROTOCOL, UNITS_TOPIC, helloCodec, helloAckCodec, claimCodec, encodeClaimReply, encodeClaimReplyFilled, commitCodec, ackCodec,
  revealRequestCodec, decodeRevealReply, unitErrorCodec, commitAckPrefix, MAX_UNIT_BYTES,
} from '../protocol/grid.ts';
import type { Hello, Ack, ClaimRequest, Commit, LeaseInfo, InputFileRange } from '../protocol/grid.ts';
import { JobScheduler } from './scheduler.ts';
import type { Lease, Progress, UnitDone } from './scheduler.ts';
import { OutputAssembler } from './output.ts';
import { JobStore } from './store.ts';
import type { JobSpec } from './job.ts';

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
  model: { path: string; sha256: string; flopsPerRow: number };
  rows: number;
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

export interface JobEvents {
  progress: [Progress];
  unit: [UnitDone];
  done: [JobReport];
}

interface WorkerInfo extends Hello {
  peer: string;
  connected: boolean;
  unitsRun: number;
}

interface RunningJob {
  spec: JobSpec;
  sched: JobScheduler;
  out: OutputAssembler;
  ledger: CreditLedger;
  events: EventEmitter<JobEvents>;
  startedAt: number;
  result: Promise<JobReport>;
  resolve: (r: JobReport) => void;
  failed: string | null;
  finishing: boolean;
  pendingWrites: Set<Promise<void>>;
  stalledSince: Map<number, number>;
  runs: Map<string, number>;
  creditRecords: number;
  /** Open input files, read by row range for every lease. */
  inputs: InputReader;
  /** Result digests computed while checking reveals, so a unit's result is hashed once. */
  digests: WeakMap<Record<string, HostTensor>, string>;
}

/**
 * Reads a job's input rows for leases. Each .npy is opened and its header checked once per job
 * (not once per lease: with thousands of small units the open/stat/parse dominated the read),
 * then rows are positional reads of exactly the bytes needed into a fresh buffer.
 */
class InputReader {
  readonly #spec: JobSpec;
  #files: Promise<Map<string, { fh: FileHandle; dataOffset: number; rowBytes: number; dtype: Dtype; tail: number[] }>> | null = null;

  constructor(spec: JobSpec) {
    this.#spec = spec;
  }

  #open(): Promise<Map<string, { fh: FileHandle; dataOffset: number; rowBytes: number; dtype: Dtype; tail: number[] }>> {
    this.#files ??= (async () => {
      const m = new Map<string, { fh: FileHandle; dataOffset: number; rowBytes: number; dtype: Dtype; tail: number[] }>();
      try {
        for (const [name, inp] of Object.entries(this.#spec.inputs)) {
          const h = await readNpyHeader(inp.path);
          if (h.dtype !== inp.dtype || h.dims.length !== inp.dims.length || h.dims.some((d, i) => d !== inp.dims[i])) {
            throw new DrillError('INPUT_CHANGED', `input ${name}: ${inp.path} changed since the job was prepared`);
          }
          const tail = h.dims.slice(1);
          m.set(name, { fh: await open(inp.path, 'r'), dataOffset: h.dataOffset, rowBytes: elementCount(tail) * BYTES_PER_ELEMENT[h.dtype], dtype: h.dtype, tail });
        }
      } catch (e) {
        for (const f of m.values()) await f.fh.close().catch(() => undefined);
        this.#files = null;
        throw e;
      }
      return m;
    })();
    return this.#files;
  }

  /** The dtype and dims of every input's rows [start, end). */
  async shapes(start: number, end: number): Promise<Record<string, { dtype: Dtype; dims: number[] }>> {
    const out: Record<string, { dtype: Dtype; dims: number[] }> = {};
    for (const [name, f] of await this.#open()) out[name] = { dtype: f.dtype, dims: [end - start, ...f.tail] };
    return out;
  }

  /** Where every input's rows [start, end) lie on disk (for workers on the same filesystem). */
  async ranges(start: number, end: number): Promise<Record<string, InputFileRange>> {
    const out: Record<string, InputFileRange> = {};
    for (const [name, f] of await this.#open()) {
      out[name] = { path: this.#spec.inputs[name]!.path, offset: f.dataOffset + start * f.rowBytes, dtype: f.dtype, dims: [end - start, ...f.tail] };
    }
    return out;
  }

  /** Read input `name`'s rows [start, end) into `dest` (exactly their bytes). @throws DrillError INPUT_CHANGED, fs errors. */
  async readInto(name: string, start: number, end: number, dest: Uint8Array): Promise<void> {
    const f = (await this.#open()).get(name);
    if (!f) throw new DrillError('INPUT_CHANGED', `no input ${name}`);
    const len = (end - start) * f.rowBytes;
    if (dest.length !== len) throw new RangeError(`input ${name}: ${dest.length} bytes for ${end - start} rows of ${f.rowBytes} bytes`);
    let off = 0;
    while (off < len) {
      const { bytesRead } = await f.fh.read(dest, off, len - off, f.dataOffset + start * f.rowBytes + off);
      if (bytesRead === 0) throw new DrillError('INPUT_CHANGED', `input ${name}: file ended before row ${end} (it changed since the job was prepared)`);
      off += bytesRead;
    }
  }

  async close(): Promise<void> {
    const p = this.#files;
    this.#files = null;
    if (!p) return;
    const files = await p.catch(() => new Map<string, { fh: FileHandle }>());
    for (const f of files.values()) await f.fh.close().catch(() => undefined);
  }
}

export interface JobHandle {
  id: string;
  spec: JobSpec;
  events: EventEmitter<JobEvents>;
  progress(): Progress;
  /** Resolves with the report when the job ends (done or failed; never rejects for job failures). */
  result: Promise<JobReport>;
}

export class Coordinator {
  readonly #node: DrillNode;
  readonly #seed: Uint8Array;
  readonly #opts: ResolvedOptions;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #workers = new Map<string, WorkerInfo>();
  readonly #jobs = new Map<string, RunningJob>();
  #store: JobStore | null = null;
  #fsToken = '';
  /** Random per start: lease ids from before a restart never match new ones. */
  readonly #leaseTag = randomBytes(3).toString('hex') + '-';
  readonly #resumed: JobHandle[] = [];
  #fsProbe: string | null = null;
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
    this.#fsToken = randomBytes(32).toString('hex');
    const probe = resolve(this.#opts.dataDir, `fs-probe-${this.#node.peerId.slice(-12)}`);
    try {
      await writeFile(probe, this.#fsToken, { mode: 0o600 });
      this.#fsProbe = probe;
    } catch (e) {
      this.#log.warn('cannot write the filesystem probe; every lease will carry its input bytes', { error: String(e) });
    }
    this.#blobs = new BlobServer(this.#node);
    await this.#blobs.start();
    // Subscribing makes us a mesh member of the units topic, so our announcements propagate.
    this.#node.subscribe(UNITS_TOPIC, () => undefined);
    await this.#node.handle(PROTOCOL.hello, (req, from) => this.#onHello(req, from));
    await this.#node.handle(PROTOCOL.claim, (req, from) => this.#onClaim(req, from));
    await this.#node.handle(PROTOCOL.commit, (req, from) => this.#onCommit(req, from));
    await this.#node.handle(PROTOCOL.error, (req, from) => this.#onError(req, from));
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
    if (this.#fsProbe) await rm(this.#fsProbe, { force: true });
    this.#fsProbe = null;
    this.#store?.close();
    this.#store = null;
  }

  /** Registered workers (connected or not). */
  workers(): { peer: string; connected: boolean; threads: number; device: string; score: number; cheater: boolean }[] {
    return [...this.#workers.values()].map((w) => ({ peer: w.peer, connected: w.connected, threads: w.threads, device: w.device, score: w.score, cheater: w.cheater }));
  }

  /** Resolves once `n` workers have registered (event-driven). */
  waitForWorkers(n: number, timeoutMs = 60_000): Promise<void> {
    if (this.#connectedWorkers().length >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.#registered.off('worker', check);
        reject(new DrillError('WORKERS_TIMEOUT', `only ${this.#connectedWorkers().length} of ${n} workers registered within ${timeoutMs} ms`));
      }, timeoutMs);
      const check = (): void => {
        if (this.#connectedWorkers().length >= n) {
          clearTimeout(t);
          this.#registered.off('worker', check);
          resolve();
        }
      };
      this.#registered.on('worker', check);
    });
  }
  readonly #registered = new EventEmitter<{ worker: [string] }>();

  #connectedWorkers(): string[] {
    return [...this.#workers.values()].filter((w) => w.connected).map((w) => w.peer);
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
    return this.#handle(job);
  }

  /** Jobs that were running when the coordinator last stopped and were resumed by start(). */
  resumedJobs(): JobHandle[] {
    return this.#resumed;
  }

  #handle(job: RunningJob): JobHandle {
    return { id: job.spec.id, spec: job.spec, events: job.events, progress: () => job.sched.progress(), result: job.result };
  }

  #addJob(spec: JobSpec, doneUnits: ReadonlyMap<number, string>, startedAt: number): RunningJob {
    const sched = new JobScheduler(spec.id, spec.rows, spec.unitRows, policyAgree(spec.policy), {
      replicas: spec.replicas,
      maxReplicas: spec.maxReplicas,
      leaseMs: this.#opts.leaseMs,
      leaseTag: this.#leaseTag,
    }, doneUnits);
    let resolve!: (r: JobReport) => void;
    const result = new Promise<JobReport>((r) => (resolve = r));
    const job: RunningJob = {
      spec, sched, out: new OutputAssembler(spec.outDir, spec.rows, spec.outputNames), ledger: new CreditLedger(),
      events: new EventEmitter<JobEvents>(), startedAt, result, resolve, failed: null, finishing: false,
      pendingWrites: new Set(), stalledSince: new Map(), runs: new Map(), creditRecords: 0,
      inputs: new InputReader(spec), digests: new WeakMap(),
    };
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
        this.#resumed.push(this.#handle(job));
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

  // ------------------------------------------------------------------------------ handlers

  async #onHello(req: Uint8Array, from: string): Promise<Uint8Array> {
    const h = helloCodec.decode(req);
    const prev = this.#workers.get(from);
    this.#workers.set(from, { ...h, peer: from, connected: true, unitsRun: prev?.unitsRun ?? 0 });
    this.#log.info('worker registered', { peer: from, threads: h.threads, device: h.device, score: h.score });
    this.#registered.emit('worker', from);
    return helloAckCodec.encode({ coordinator: this.#node.peerId, maxInflight: this.#maxInflight(h.threads), ...(this.#fsProbe ? { fsProbe: this.#fsProbe } : {}) });
  }

  #maxInflight(threads: number): number {
    return Math.max(1, threads * this.#opts.inflightPerThread);
  }

  async #onClaim(req: Uint8Array, from: string): Promise<Uint8Array> {
    return this.#lease(claimCodec.decode(req), from);
  }

  /** Lease the next unit to `from` (a claim reply; after `prefix` when answering a commit-and-claim). */
  async #lease(c: ClaimRequest, from: string, prefix?: Uint8Array): Promise<Uint8Array> {
    const w = this.#workers.get(from);
    if (!w || !w.connected) return encodeClaimReply({ ok: false, reason: 'not-registered' }, prefix);
    let inflight = 0;
    for (const j of this.#jobs.values()) inflight += j.sched.inflightOf(from);
    if (inflight >= this.#maxInflight(w.threads)) return encodeClaimReply({ ok: false, reason: 'busy' }, prefix);
    const order = [...this.#jobs.values()].filter((j) => !j.finishing);
    if (c.job) order.sort((a, b) => Number(b.spec.id === c.job) - Number(a.spec.id === c.job));
    for (const job of order) {
      const lease = job.sched.claim(from, this.#now(), job.spec.id === c.job ? c.unit : undefined);
      if (!lease) continue;
      try {
        const info: LeaseInfo = { lease: lease.id, job: job.spec.id, unit: lease.unit, modelHash: job.spec.modelHash, modelBytes: job.spec.modelBytes, outputNames: job.spec.outputNames, rows: lease.end - lease.start, deadlineMs: lease.deadline - this.#now() };
        if (c.fsToken !== undefined && c.fsToken === this.#fsToken) {
          // A worker on our filesystem reads the rows itself: no input bytes cross the network.
          return encodeClaimReply({ ok: true, lease: { ...info, inputFiles: await job.inputs.ranges(lease.start, lease.end) }, inputs: {} }, prefix);
        }
        // The rows are read from the input files straight into the reply (no intermediate copy).
        const reply = await encodeClaimReplyFilled(info, await job.inputs.shapes(lease.start, lease.end), (name, dest) => job.inputs.readInto(name, lease.start, lease.end, dest), prefix);
        this.#log.debug('leased', { lease: lease.id, worker: from });
        return reply;
      } catch (e) {
        job.sched.revealFailed(lease.id);
        await this.#fail(job, `cannot read inputs for unit ${lease.unit}: ${(e as Error).message}`);
      }
    }
    return encodeClaimReply({ ok: false, reason: 'no-work' }, prefix);
  }

  async #onCommit(req: Uint8Array, from: string): Promise<Uint8Array> {
    const c = commitCodec.decode(req);
    const ack = this.#commit(c, from);
    if (!c.claim) return ackCodec.encode(ack);
    // Commit-and-claim: the next lease rides on the ack (one request per unit fewer).
    const prefix = commitAckPrefix(ack);
    return ack.ok ? this.#lease(c.fsToken === undefined ? {} : { fsToken: c.fsToken }, from, prefix) : prefix;
  }

  #commit(c: Commit, from: string): Ack {
    const job = this.#jobOfLease(c.lease);
    if (!job) return { ok: false, reason: 'unknown lease' };
    const reveal = job.sched.commit(c.lease, from, c.commitment);
    if (reveal === null) return { ok: false, reason: 'not your lease, or already committed' };
    for (const l of reveal) void this.#reveal(job, l);
    return { ok: true };
  }

  async #onError(req: Uint8Array, from: string): Promise<Uint8Array> {
    const e = unitErrorCodec.decode(req);
    const job = this.#jobOfLease(e.lease);
    if (!job) return ackCodec.encode({ ok: false, reason: 'unknown lease' });
    this.#log.warn('worker could not run unit', { lease: e.lease, worker: from, message: e.message });
    const failed = job.sched.error(e.lease, from, e.message);
    if (failed) await this.#fail(job, failed.message);
    else void this.#announce(job);
    return ackCodec.encode({ ok: true });
  }

  #jobOfLease(leaseId: string): RunningJob | undefined {
    const id = leaseId.slice(0, leaseId.indexOf('/'));
    const j = this.#jobs.get(id);
    return j && !j.finishing ? j : undefined;
  }

  async #reveal(job: RunningJob, lease: Lease): Promise<void> {
    let outputs: Record<string, HostTensor>;
    try {
      const bytes = await this.#node.request(lease.worker, PROTOCOL.reveal, revealRequestCodec.encode({ lease: lease.id }), { maxResponseBytes: MAX_UNIT_BYTES, timeoutMs: 60_000 });
      const r = decodeRevealReply(bytes);
      if (!r.ok) throw new DrillError('REVEAL_REFUSED', r.reason);
      // opensCommitment, with the digest kept: the accepted result is not hashed again for its
      // credit record and store row (hashing is the coordinator's main per-byte cost).
      const digest = resultDigest(r.outputs);
      if (commitment(lease.worker, lease.id, r.salt, digest) !== lease.commitment) {
        throw new DrillError('REVEAL_MISMATCH', 'revealed result does not open the commitment');
      }
      job.digests.set(r.outputs, digest);
      outputs = r.outputs;
    } catch (e) {
      this.#log.warn('reveal failed; re-issuing', { lease: lease.id, worker: lease.worker, error: isDrillError(e) ? e.code : String(e) });
      if (job.finishing) return;
      job.sched.revealFailed(lease.id);
      void this.#announce(job);
      return;
    }
    if (job.finishing) return;
    job.runs.set(lease.worker, (job.runs.get(lease.worker) ?? 0) + 1);
    const r = job.sched.reveal(lease.id, outputs);
    if (r.failed) return void (await this.#fail(job, r.failed.message));
    if (r.reopened) {
      this.#log.info('unit disputed; re-running on more workers', { job: job.spec.id, unit: lease.unit });
      return void this.#announce(job);
    }
    if (r.done) {
      const w = this.#writeUnit(job, r.done);
      job.pendingWrites.add(w);
      await w.finally(() => job.pendingWrites.delete(w));
    }
  }

  async #writeUnit(job: RunningJob, d: UnitDone): Promise<void> {
    try {
      const first = job.out.layout().length === 0;
      await job.out.write(d.start, d.end, d.result);
      if (first) this.#store?.setLayout(job.spec.id, job.out.layout());
      let record: CreditRecord | null = null;
      const digest = job.digests.get(d.result) ?? resultDigest(d.result);
      if (d.outcome.credited.length > 0 && (d.outcome.status === 'agreed' || d.outcome.status === 'resolved')) {
        record = signCreditRecord(
          { job: job.spec.id, unit: d.unit, resultDigest: digest, flops: job.spec.flopsPerRow * (d.end - d.start), credited: d.outcome.credited, faulty: d.outcome.faulty, status: d.outcome.status, time: this.#now() },
          this.#seed,
        );
        job.ledger.apply(record);
        job.creditRecords++;
      } else if (d.outcome.faulty.length > 0) job.ledger.apply({ credited: [], faulty: d.outcome.faulty, flops: 0 });
      this.#store?.unitDone(job.spec.id, d.unit, d.outcome.status, digest, d.workers, d.outcome.credited, d.outcome.faulty, record, this.#now());
      if (record) this.#opts.onCredit?.(record);
      job.events.emit('unit', d);
      job.events.emit('progress', job.sched.progress());
      if (job.sched.isFinished()) await this.#finish(job);
    } catch (e) {
      await this.#fail(job, `writing outputs failed: ${(e as Error).message}`);
    }
  }

  #onWorkerGone(peer: string): void {
    const w = this.#workers.get(peer);
    if (!w || !w.connected) return;
    w.connected = false;
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
    const connected = this.#connectedWorkers();
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
    const report = this.#report(job, status, outputs);
    try {
      const tmp = join(job.spec.outDir, `.report.json.${process.pid}`);
      await writeFile(tmp, JSON.stringify(report, null, 2) + '\n');
      await rename(tmp, join(job.spec.outDir, 'report.json'));
    } catch (e) {
      this.#log.error('cannot write report.json', { error: String(e) });
    }
    await job.inputs.close();
    this.#jobs.delete(job.spec.id);
    job.events.emit('done', report);
    job.resolve(report);
  }

  #report(job: RunningJob, status: 'done' | 'failed', outputs: Record<string, string>): JobReport {
    const p = job.sched.progress();
    const elapsedMs = this.#now() - job.startedAt;
    const credit = job.ledger.window();
    const peers = new Set<string>([...credit.keys(), ...job.runs.keys()]);
    const workers: WorkerReport[] = [...peers].sort().map((peer) => {
      const c = credit.get(peer);
      const w = this.#workers.get(peer);
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
      model: { path: job.spec.modelPath, sha256: job.spec.modelHash, flopsPerRow: job.spec.flopsPerRow },
      rows: job.spec.rows,
      unitRows: job.spec.unitRows,
      replicas: job.spec.replicas,
      policy: formatPolicy(job.spec.policy),
      units: { total: p.total, agreed: p.agreed, disputed: p.disputed, failed: p.failed, unverified: p.unverified, reissued: p.reissued },
      workers,
      totalCredit: workers.reduce((a, w) => a + w.credit, 0),
      elapsedMs,
      rowsPerSecond: elapsedMs > 0 ? (p.rowsDone * 1000) / elapsedMs : 0,
      outputs,
      creditRecords: job.creditRecords,
    };
  }
}

