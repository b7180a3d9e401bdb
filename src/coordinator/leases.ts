/**
 * The coordinator's lease desk: the requests workers send — hello (registration), claim
 * (lease a unit), commit (bind a result, optionally claiming the next unit in the same reply)
 * and error (a unit could not be run). Leases carry the input rows, or for a worker that
 * proved it shares our filesystem, only where the rows lie.
 */
import type { Logger } from '../util/log.ts';
import {
  helloCodec, helloAckCodec, claimCodec, encodeClaimReply, encodeClaimReplyFilled, commitCodec, ackCodec,
  unitErrorCodec, commitAckPrefix,
} from '../protocol/grid.ts';
import type { Ack, ClaimRequest, Commit, LeaseInfo } from '../protocol/grid.ts';
import type { Lease } from './scheduler.ts';
import type { ResultSpool } from './spool.ts';
import { rowAxesOf } from './job.ts';
import type { RunningJob } from './running.ts';
import type { WorkerRegistry } from './workers.ts';

/** What the lease desk needs from the coordinator. */
export interface LeaseHost {
  readonly peerId: string;
  readonly log: Logger;
  readonly workers: WorkerRegistry;
  now(): number;
  /** Running jobs that still take work. */
  jobs(): RunningJob[];
  jobOfLease(leaseId: string): RunningJob | undefined;
  announce(job: RunningJob): void;
  fail(job: RunningJob, message: string): void;
  /** Every replica of a unit's round committed: pull these results. */
  reveal(job: RunningJob, lease: Lease): void;
  /** A worker's error report for its leased unit (a result); false when the lease is not its. */
  unitError(job: RunningJob, leaseId: string, worker: string, message: string): Promise<boolean>;
  /** The IP address a peer connects from (null when unknown). */
  remoteIp(peer: string): string | null;
  /** Carry out what the scheduler decided (its events) after a commit. */
  process(job: RunningJob): void;
  /** A lease was committed `ms` after it was issued (metrics). */
  committed?(ms: number): void;
}

export interface LeaseDeskOptions {
  /** Un-committed leases per worker = its threads × this. */
  inflightPerThread: number;
  /** Threads a worker is believed at most (a hello claiming more is clamped to this). */
  maxWorkerThreads: number;
  /** The same-filesystem probe's path and token (none when the probe could not be written). */
  fsProbe: { path: string; token: string } | null;
  /** Where workers on our filesystem write their results (with fsProbe). */
  spool: ResultSpool | null;
}

export class LeaseDesk {
  readonly #host: LeaseHost;
  readonly #opts: LeaseDeskOptions;

  constructor(host: LeaseHost, opts: LeaseDeskOptions) {
    this.#host = host;
    this.#opts = opts;
  }

  async onHello(req: Uint8Array, from: string): Promise<Uint8Array> {
    const said = helloCodec.decode(req);
    // A worker's thread count is its own claim; each thread earns it leases (units it holds until
    // it commits or its deadline passes), so a claim of 1,024 threads would let one peer sit on
    // 2,048 units. Clamp it: a real worker with more threads just runs below its capacity.
    const h = { ...said, threads: Math.min(said.threads, this.#opts.maxWorkerThreads) };
    this.#host.workers.hello(from, h, this.#host.remoteIp(from));
    if (h.threads < said.threads) this.#host.log.warn('worker claims more threads than allowed; clamped', { peer: from, claimed: said.threads, threads: h.threads });
    this.#host.log.info('worker registered', { peer: from, threads: h.threads, device: h.device, score: h.score });
    const probe = this.#opts.fsProbe;
    const spool = this.#opts.spool;
    return helloAckCodec.encode({ coordinator: this.#host.peerId, maxInflight: this.maxInflight(h.threads), ...(probe ? { fsProbe: probe.path } : {}), ...(probe && spool ? { spoolDir: spool.dir } : {}) });
  }

  maxInflight(threads: number): number {
    return Math.max(1, threads * this.#opts.inflightPerThread);
  }

  async onClaim(req: Uint8Array, from: string): Promise<Uint8Array> {
    return this.#lease(claimCodec.decode(req), from);
  }

  async onCommit(req: Uint8Array, from: string): Promise<Uint8Array> {
    const c = commitCodec.decode(req);
    const ack = this.#commit(c, from);
    if (!c.claim) return ackCodec.encode(ack);
    // Commit-and-claim: the next lease rides on the ack (one request per unit fewer).
    const prefix = commitAckPrefix(ack);
    return ack.ok ? this.#lease(c.fsToken === undefined ? {} : { fsToken: c.fsToken }, from, prefix) : prefix;
  }

  async onError(req: Uint8Array, from: string): Promise<Uint8Array> {
    const e = unitErrorCodec.decode(req);
    const job = this.#host.jobOfLease(e.lease);
    if (!job) return ackCodec.encode({ ok: false, reason: 'unknown lease' });
    this.#host.log.warn('worker could not run unit', { lease: e.lease, worker: from, message: e.message });
    const ok = await this.#host.unitError(job, e.lease, from, e.message);
    return ackCodec.encode(ok ? { ok: true } : { ok: false, reason: 'not your lease' });
  }

  /** Lease the next unit to `from` (a claim reply; after `prefix` when answering a commit-and-claim). */
  async #lease(c: ClaimRequest, from: string, prefix?: Uint8Array): Promise<Uint8Array> {
    const host = this.#host;
    const w = host.workers.get(from);
    if (!w || !w.connected) return encodeClaimReply({ ok: false, reason: 'not-registered' }, prefix);
    const jobs = host.jobs();
    let inflight = 0;
    for (const j of jobs) inflight += j.sched.inflightOf(from);
    if (inflight >= this.maxInflight(w.threads)) return encodeClaimReply({ ok: false, reason: 'busy' }, prefix);
    // Replicas drawn for this worker come first, in any job; then whatever the draws give it.
    const now = host.now();
    for (const pass of [{ reservedOnly: true }, {}]) for (const job of jobs) {
      const lease = job.sched.claim(from, now, pass);
      if (!lease) continue;
      // Claiming a fresh unit drew its other replicas: wake the drawn workers.
      host.announce(job);
      // The job's report describes this worker even after the registry forgets it.
      if (!job.workerInfo.has(from)) job.workerInfo.set(from, { threads: w.threads, device: w.device, profile: w.profile });
      try {
        const axes = rowAxesOf(job.spec);
        const info: LeaseInfo = { lease: lease.id, job: job.spec.id, unit: lease.unit, modelHash: job.spec.modelHash, modelBytes: job.spec.modelBytes, outputNames: job.spec.outputNames, rows: lease.end - lease.start, deadlineMs: lease.deadline - host.now(), ...(axes ? { rowAxes: axes } : {}) };
        if (c.fsToken !== undefined && c.fsToken === this.#opts.fsProbe?.token) {
          // A worker on our filesystem reads the rows itself and writes its result into our spool:
          // no tensor bytes cross the network either way.
          const spool = this.#opts.spool ? { resultSpool: this.#opts.spool.pathFor(job.spec.id, lease.id) } : {};
          return encodeClaimReply({ ok: true, lease: { ...info, inputFiles: await job.inputs.ranges(lease.start, lease.end), ...spool }, inputs: {} }, prefix);
        }
        // The rows are read from the input files straight into the reply (no intermediate copy).
        const reply = await encodeClaimReplyFilled(info, await job.inputs.shapes(lease.start, lease.end), (name, dest) => job.inputs.readInto(name, lease.start, lease.end, dest), prefix);
        host.log.debug('leased', { lease: lease.id, worker: from });
        return reply;
      } catch (e) {
        job.sched.revealFailed(lease.id, now);
        host.fail(job, `cannot read inputs for unit ${lease.unit}: ${(e as Error).message}`);
      }
    }
    return encodeClaimReply({ ok: false, reason: 'no-work' }, prefix);
  }

  #commit(c: Commit, from: string): Ack {
    const job = this.#host.jobOfLease(c.lease);
    if (!job) return { ok: false, reason: 'unknown lease' };
    const issuedAt = job.sched.lease(c.lease)?.issuedAt;
    const now = this.#host.now();
    const reveal = job.sched.commit(c.lease, from, c.commitment, now);
    if (reveal === null) return { ok: false, reason: 'not your lease, or already committed' };
    if (issuedAt !== undefined) this.#host.committed?.(now - issuedAt);
    for (const l of reveal) this.#host.reveal(job, l);
    this.#host.process(job);
    return { ok: true };
  }
}
