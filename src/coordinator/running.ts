/**
 * A running job's in-memory state, shared by the coordinator's rooms (leases, reveal and PoD,
 * output, report): its scheduler, output files, credit ledger, input reader and counters.
 */
import { EventEmitter } from 'node:events';
import type { HostTensor } from '../util/tensor.ts';
import { CreditLedger } from '../pod/ledger.ts';
import { policyAgree } from '../pod/quorum.ts';
import type { RandomSource } from '../util/random.ts';
import { JobScheduler } from './scheduler.ts';
import type { Candidate, Progress, ResumedState, UnitDone } from './scheduler.ts';
import { OutputAssembler } from './output.ts';
import { InputReader } from './inputs.ts';
import type { JobSpec } from './job.ts';
import type { JobReport } from './report.ts';

/** A worker quarantined in the job (found faulty), or released (its fault mark cleared). */
export interface FaultEvent {
  worker: string;
  kind: 'quarantined' | 'released';
  reason: string;
  /** Units reopened because the worker's results can no longer be trusted. */
  reopened: number[];
}

/** Spot checks: whether a unit's first result is audited (tossed once it is committed). */
export interface AuditEvent {
  unit: number;
  /** The worker whose committed result the coin was tossed for. */
  worker: string;
  audited: boolean;
}

export interface JobEvents {
  progress: [Progress];
  unit: [UnitDone];
  fault: [FaultEvent];
  audit: [AuditEvent];
  done: [JobReport];
}

export interface RunningJob {
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
  stalledSince: Map<number, number>;
  /** Units each worker ran (results revealed). */
  runs: Map<string, number>;
  /** What the report shows about each worker that leased a unit of this job (the registry may forget it). */
  workerInfo: Map<string, { threads: number; device: string; profile: string }>;
  creditRecords: number;
  /** Open input files, read by row range for every lease. */
  inputs: InputReader;
  /** Result digests computed while checking reveals, so a unit's result is hashed once. */
  digests: WeakMap<Record<string, HostTensor>, string>;
  /**
   * The job's event queue: scheduler events are carried out one after another (writes, store
   * rows, credit records), and the job's end runs behind them. Never rejects.
   */
  queue: Promise<void>;
}

export interface JobHandle {
  id: string;
  spec: JobSpec;
  events: EventEmitter<JobEvents>;
  progress(): Progress;
  /** What each started, undecided unit is waiting for (leases, drawn workers, results): diagnostics. */
  waiting(): ReturnType<JobScheduler['openUnitStates']>;
  /** Resolves with the report when the job ends (done or failed; never rejects for job failures). */
  result: Promise<JobReport>;
}

export interface RunningJobOptions {
  leaseMs: number;
  leaseTag: string;
  /** The workers the job's draws choose from. */
  pool: () => readonly Candidate[];
  random: RandomSource;
  reserveMs?: number;
}

/**
 * Fresh state for a job. `resumed` (a job resumed after a restart) holds the units already
 * finished and the workers quarantined.
 */
export function createRunningJob(spec: JobSpec, opts: RunningJobOptions, resumed: ResumedState | undefined, startedAt: number): RunningJob {
  const sched = new JobScheduler(spec.id, spec.rows, spec.unitRows, policyAgree(spec.policy), {
    replicas: spec.replicas,
    maxReplicas: spec.maxReplicas,
    leaseMs: opts.leaseMs,
    leaseTag: opts.leaseTag,
    audit: spec.audit ?? 0,
    taper: spec.taper === true,
    random: opts.random,
    pool: opts.pool,
    ...(opts.reserveMs !== undefined ? { reserveMs: opts.reserveMs } : {}),
  }, resumed);
  let resolve!: (r: JobReport) => void;
  const result = new Promise<JobReport>((r) => (resolve = r));
  return {
    spec, sched, out: new OutputAssembler(spec), ledger: new CreditLedger(),
    events: new EventEmitter<JobEvents>(), startedAt, result, resolve, failed: null, finishing: false,
    stalledSince: new Map(), runs: new Map(), workerInfo: new Map(), creditRecords: 0,
    inputs: new InputReader(spec), digests: new WeakMap(), queue: Promise.resolve(),
  };
}

export function jobHandle(job: RunningJob): JobHandle {
  return { id: job.spec.id, spec: job.spec, events: job.events, progress: () => job.sched.progress(), waiting: () => job.sched.openUnitStates(), result: job.result };
}
