/**
 * Reveal and PoD: once every replica of a unit's round has committed, the coordinator pulls
 * each result, checks it opens its commitment and matches what the model produces (output
 * names, dtypes, shapes), and hands it to the scheduler's quorum. It then carries out what the
 * scheduler decided, in order, one job event at a time: a decided unit's rows to the output
 * files with its credit record; a reopened unit out of the store; a worker quarantined or
 * released. When every unit is settled the job finishes (or fails), and each worker still
 * quarantined gets a signed fault record for the chain.
 *
 * A worker that breaks the protocol — a reveal that does not open its commitment, a refusal to
 * reveal what it committed to, outputs that do not match the model — is quarantined at once
 * (a hard fault). A worker that cannot be reached is not at fault: its replica is re-drawn.
 */
import type { DrillNode } from '../net/node.ts';
import type { Logger } from '../util/log.ts';
import { isDrillError } from '../util/errors.ts';
import type { HostTensor } from '../util/tensor.ts';
import { elementCount } from '../util/tensor.ts';
import { commitment, resultDigest } from '../pod/commit.ts';
import { signCreditRecord } from '../pod/credit.ts';
import type { CreditRecord } from '../pod/credit.ts';
import { signFaultRecord } from '../pod/fault.ts';
import type { FaultRecord } from '../pod/fault.ts';
import { PROTOCOL, revealRequestCodec, decodeRevealReply, MAX_UNIT_BYTES } from '../protocol/grid.ts';
import type { Lease, SchedulerEvent, UnitDone, HardFault } from './scheduler.ts';
import type { RunningJob } from './running.ts';
import type { JobStore } from './store.ts';
import type { JobSpec } from './job.ts';
import { unitFlops } from './job.ts';
import { outputAxis } from './job.ts';

/** What the PoD desk needs from the coordinator. */
export interface RevealHost {
  readonly node: DrillNode;
  readonly log: Logger;
  /** The coordinator's Ed25519 seed: credit and fault records are signed with its identity. */
  readonly seed: Uint8Array;
  now(): number;
  store(): JobStore | null;
  announce(job: RunningJob): void;
  /** End the job as failed / done: queued behind the job's pending events (never awaited from inside them). */
  fail(job: RunningJob, message: string): void;
  finish(job: RunningJob): void;
  onCredit?: (r: CreditRecord) => void;
  onFault?: (r: FaultRecord) => void;
}

/** How long a worker has to answer a reveal request (results can be tens of MiB). */
const REVEAL_TIMEOUT_MS = 60_000;

/**
 * Why a revealed result does not match what the model produces for `rows` rows, or null.
 * Names must be exactly the model's outputs; each dtype the model's; each rank the declared
 * rank (when declared); the output's batch axis holds a whole number of entries per row of the
 * unit (one each, or a fixed number — a flattened [batch·seq, hidden]); the other fixed dims
 * match; the data length matches the dims. An output without a batch axis, or whose axis is
 * only a guess (its size may depend on the data: not the worker's doing), is only checked for
 * its fixed dims. Pure.
 */
export function outputsProblem(spec: Pick<JobSpec, 'outputNames' | 'outputs'>, rows: number, outputs: Record<string, HostTensor>): string | null {
  const names = Object.keys(outputs);
  const want = new Set(spec.outputNames);
  for (const n of names) if (!want.has(n)) return `an output the model does not have: ${JSON.stringify(n.slice(0, 64))}`;
  for (const o of spec.outputs) {
    const t = outputs[o.name];
    if (!t) return `output ${o.name} is missing`;
    if (t.dtype !== o.dtype) return `output ${o.name}: dtype ${t.dtype}, the model produces ${o.dtype}`;
    if (o.dims.length > 0 && t.dims.length !== o.dims.length) return `output ${o.name}: rank ${t.dims.length}, the model produces rank ${o.dims.length}`;
    const axis = outputAxis(spec, o.name);
    if (axis !== null && !o.guessed && (t.dims.length <= axis || t.dims[axis]! % rows !== 0)) {
      return `output ${o.name}: [${t.dims.join(', ')}] does not hold the unit's ${rows} rows on axis ${axis}`;
    }
    for (let i = 0; i < o.dims.length; i++) {
      const d = o.dims[i];
      if (i !== axis && typeof d === 'number' && d > 0 && t.dims[i] !== d) return `output ${o.name}: dim ${i} is ${t.dims[i]}, the model fixes it at ${d}`;
    }
    if (t.data.length !== elementCount(t.dims)) return `output ${o.name}: ${t.data.length} values for dims [${t.dims.join(', ')}]`;
  }
  return null;
}

export class RevealDesk {
  readonly #host: RevealHost;

  constructor(host: RevealHost) {
    this.#host = host;
  }

  /** Pull a committed result and feed it to PoD. Never throws: failures re-draw or quarantine. */
  async reveal(job: RunningJob, lease: Lease): Promise<void> {
    const host = this.#host;
    let outputs: Record<string, HostTensor>;
    try {
      const bytes = await host.node.request(lease.worker, PROTOCOL.reveal, revealRequestCodec.encode({ lease: lease.id }), { maxResponseBytes: MAX_UNIT_BYTES, timeoutMs: REVEAL_TIMEOUT_MS });
      const r = decodeRevealReply(bytes);
      if (!r.ok) return this.#hardFault(job, lease, 'reveal-refused', `refused to reveal a committed result: ${r.reason}`);
      // The digest is kept: the accepted result is not hashed again for its credit record and
      // store row (hashing is the coordinator's main per-byte cost).
      const digest = resultDigest(r.outputs);
      if (commitment(lease.worker, lease.id, r.salt, digest) !== lease.commitment) {
        return this.#hardFault(job, lease, 'reveal-mismatch', 'the revealed result does not open its commitment');
      }
      const bad = outputsProblem(job.spec, lease.end - lease.start, r.outputs);
      if (bad !== null) return this.#hardFault(job, lease, 'bad-outputs', bad);
      job.digests.set(r.outputs, digest);
      outputs = r.outputs;
    } catch (e) {
      host.log.warn('reveal failed; drawing another worker', { lease: lease.id, worker: lease.worker, error: isDrillError(e) ? e.code : String(e) });
      if (job.finishing) return;
      job.sched.revealFailed(lease.id, host.now());
      return this.process(job);
    }
    if (job.finishing) return;
    job.runs.set(lease.worker, (job.runs.get(lease.worker) ?? 0) + 1);
    for (const l of job.sched.reveal(lease.id, outputs, host.now())) void this.reveal(job, l);
    return this.process(job);
  }

  /** A worker reported it could not run its leased unit: one replica's result. */
  async error(job: RunningJob, leaseId: string, worker: string, message: string): Promise<boolean> {
    const more = job.sched.error(leaseId, worker, message, this.#host.now());
    if (more === null) return false;
    job.runs.set(worker, (job.runs.get(worker) ?? 0) + 1);
    for (const l of more) void this.reveal(job, l);
    await this.process(job);
    return true;
  }

  #hardFault(job: RunningJob, lease: Lease, reason: HardFault, detail: string): Promise<void> {
    this.#host.log.warn('worker broke the protocol; quarantined in the job', { job: job.spec.id, worker: lease.worker, reason, detail });
    if (job.finishing) return Promise.resolve();
    job.sched.quarantine(lease.worker, reason, this.#host.now());
    return this.process(job);
  }

  /**
   * Carry out what the scheduler decided since the last call, in order (queued per job, so
   * writes, store rows and credit records never interleave), then finish or fail the job once
   * every unit is settled.
   */
  process(job: RunningJob): Promise<void> {
    const events = job.sched.drainEvents();
    const run = async (): Promise<void> => {
      for (const ev of events) {
        // A failed job writes nothing more; a finishing one still records every decided unit.
        if (job.failed !== null) return;
        await this.#apply(job, ev);
      }
      // Only the last queued batch may end the job: later batches still hold decided units.
      if (job.finishing || job.queue !== p) return;
      const st = job.sched.settled();
      if (!st) return;
      if (st.failed !== null) this.#host.fail(job, st.failed);
      else this.#host.finish(job);
    };
    const p: Promise<void> = job.queue.then(run).catch((e: unknown) => this.#host.fail(job, `recording results failed: ${(e as Error).message}`));
    job.queue = p;
    return p;
  }

  async #apply(job: RunningJob, ev: SchedulerEvent): Promise<void> {
    const host = this.#host;
    const store = host.store();
    switch (ev.kind) {
      case 'done':
        await this.#writeUnit(job, ev.done);
        return;
      case 'reopened':
        store?.unitReopened(job.spec.id, ev.unit);
        host.log.info('unit reopened', { job: job.spec.id, unit: ev.unit, because: ev.because });
        job.events.emit('progress', job.sched.progress());
        host.announce(job);
        return;
      case 'quarantined':
        store?.setQuarantine(job.spec.id, ev.worker, job.sched.quarantined().get(ev.worker) ?? [ev.reason]);
        host.log.warn('worker found faulty; quarantined in the job, its units decided again without it', { job: job.spec.id, worker: ev.worker, reason: ev.reason, reopened: ev.reopened.length });
        job.events.emit('fault', { worker: ev.worker, kind: 'quarantined', reason: ev.reason, reopened: ev.reopened });
        host.announce(job);
        return;
      case 'released':
        store?.setQuarantine(job.spec.id, ev.worker, []);
        host.log.info('worker released: the decision that outvoted it was overturned', { job: job.spec.id, worker: ev.worker, unit: ev.unit });
        job.events.emit('fault', { worker: ev.worker, kind: 'released', reason: `unit ${ev.unit} decided its way`, reopened: [] });
        return;
      case 'disputed':
        host.log.info('unit disputed; re-running on more workers', { job: job.spec.id, unit: ev.unit });
        host.announce(job);
        return;
      case 'settled-failure':
        host.log.warn('unit failed (final only if the job ends this way)', { job: job.spec.id, unit: ev.unit, message: ev.message });
        return;
      case 'reveal':
        void this.reveal(job, ev.lease);
        return;
      case 'audit':
        job.events.emit('audit', { unit: ev.unit, worker: ev.worker, audited: ev.audited });
        return;
      default: {
        const never: never = ev;
        throw new Error(`unhandled scheduler event ${JSON.stringify(never)}`);
      }
    }
  }

  /** A decided unit: rows to the output files, then its credit record and store row. */
  async #writeUnit(job: RunningJob, d: UnitDone): Promise<void> {
    const host = this.#host;
    const first = job.out.layout().length === 0;
    await job.out.write(d.start, d.end, d.result);
    if (first) host.store()?.setLayout(job.spec.id, job.out.layout());
    let record: CreditRecord | null = null;
    const digest = job.digests.get(d.result) ?? resultDigest(d.result);
    const status = d.outcome.status;
    if (d.newlyCredited.length > 0 && (status === 'agreed' || status === 'resolved' || status === 'unaudited')) {
      record = signCreditRecord(
        { job: job.spec.id, unit: d.unit, resultDigest: digest, flops: unitFlops(job.spec, d.end - d.start, d.result), credited: d.newlyCredited, faulty: d.outcome.faulty, status, time: host.now() },
        host.seed,
      );
      job.ledger.apply(record);
      job.creditRecords++;
    } else if (d.outcome.faulty.length > 0) job.ledger.apply({ credited: [], faulty: d.outcome.faulty, flops: 0 });
    host.store()?.unitDone(job.spec.id, d.unit, status, digest, d.decidedBy, d.allCredited, d.outcome.faulty, record, host.now());
    if (record) host.onCredit?.(record);
    job.events.emit('unit', d);
    job.events.emit('progress', job.sched.progress());
  }

  /**
   * The job ended: sign a fault record for each worker still quarantined in it (its credit for
   * the job is forfeited here and, once a block carries the record, on the chain).
   */
  faultRecords(job: RunningJob): FaultRecord[] {
    const host = this.#host;
    const out: FaultRecord[] = [];
    for (const [worker, reasons] of job.sched.quarantined()) {
      const r = signFaultRecord({ job: job.spec.id, worker, reasons, time: host.now() }, host.seed);
      job.ledger.applyFault({ worker, job: job.spec.id }, 0, 0);
      host.store()?.addFault(r);
      out.push(r);
    }
    for (const r of out) host.onFault?.(r);
    return out;
  }
}
