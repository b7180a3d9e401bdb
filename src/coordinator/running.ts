/**
 * A running job's in-memory state, shared by the coordinator's rooms (leases, reveal and PoD,
 * output, report): its scheduler, output files, credit ledger, input reader and counters.
 */
import { EventEmitter } from 'node:events';
import type { HostTensor } from '../util/tensor.ts';
import { CreditLedger } from '../pod/ledger.ts';
import { policyAgree } from '../pod/quorum.ts';
import { JobScheduler } from './scheduler.ts';
import type { Progress, UnitDone } from './scheduler.ts';
import { OutputAssembler } from './output.ts';
import { InputReader } from './inputs.ts';
import type { JobSpec } from './job.ts';
import type { JobReport } from './report.ts';

export interface JobEvents {
  progress: [Progress];
  unit: [UnitDone];
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
  pendingWrites: Set<Promise<void>>;
  stalledSince: Map<number, number>;
  /** Units each worker ran (results revealed). */
  runs: Map<string, number>;
  creditRecords: number;
  /** Open input files, read by row range for every lease. */
  inputs: InputReader;
  /** Result digests computed while checking reveals, so a unit's result is hashed once. */
  digests: WeakMap<Record<string, HostTensor>, string>;
}

export interface JobHandle {
  id: string;
  spec: JobSpec;
  events: EventEmitter<JobEvents>;
  progress(): Progress;
  /** Resolves with the report when the job ends (done or failed; never rejects for job failures). */
  result: Promise<JobReport>;
}

export interface RunningJobOptions {
  leaseMs: number;
  leaseTag: string;
}

/**
 * Fresh state for a job. `doneUnits` (a resumed job) are the units already finished, with
 * their outcome.
 */
export function createRunningJob(spec: JobSpec, opts: RunningJobOptions, doneUnits: ReadonlyMap<number, string>, startedAt: number): RunningJob {
  const sched = new JobScheduler(spec.id, spec.rows, spec.unitRows, policyAgree(spec.policy), {
    replicas: spec.replicas,
    maxReplicas: spec.maxReplicas,
    leaseMs: opts.leaseMs,
    leaseTag: opts.leaseTag,
  }, doneUnits);
  let resolve!: (r: JobReport) => void;
  const result = new Promise<JobReport>((r) => (resolve = r));
  return {
    spec, sched, out: new OutputAssembler(spec), ledger: new CreditLedger(),
    events: new EventEmitter<JobEvents>(), startedAt, result, resolve, failed: null, finishing: false,
    pendingWrites: new Set(), stalledSince: new Map(), runs: new Map(), creditRecords: 0,
    inputs: new InputReader(spec), digests: new WeakMap(),
  };
}

export function jobHandle(job: RunningJob): JobHandle {
  return { id: job.spec.id, spec: job.spec, events: job.events, progress: () => job.sched.progress(), result: job.result };
}
