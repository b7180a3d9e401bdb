/**
 * Reveal and PoD: once every replica of a unit's round has committed, the coordinator pulls
 * each result, checks it opens its commitment, hands it to the scheduler's quorum, and for a
 * decided unit writes the accepted rows, signs the credit record and stores both.
 */
import type { DrillNode } from '../net/node.ts';
import type { Logger } from '../util/log.ts';
import { DrillError, isDrillError } from '../util/errors.ts';
import type { HostTensor } from '../util/tensor.ts';
import { commitment, resultDigest } from '../pod/commit.ts';
import { signCreditRecord } from '../pod/credit.ts';
import type { CreditRecord } from '../pod/credit.ts';
import { PROTOCOL, revealRequestCodec, decodeRevealReply, MAX_UNIT_BYTES } from '../protocol/grid.ts';
import type { Lease, UnitDone } from './scheduler.ts';
import type { RunningJob } from './running.ts';
import type { JobStore } from './store.ts';

/** What the reveal desk needs from the coordinator. */
export interface RevealHost {
  readonly node: DrillNode;
  readonly log: Logger;
  /** The coordinator's Ed25519 seed: credit records are signed with its identity. */
  readonly seed: Uint8Array;
  now(): number;
  store(): JobStore | null;
  announce(job: RunningJob): void;
  fail(job: RunningJob, message: string): Promise<void>;
  finish(job: RunningJob): Promise<void>;
  onCredit?: (r: CreditRecord) => void;
}

/** How long a worker has to answer a reveal request (results can be tens of MiB). */
const REVEAL_TIMEOUT_MS = 60_000;

export class RevealDesk {
  readonly #host: RevealHost;

  constructor(host: RevealHost) {
    this.#host = host;
  }

  /** Pull a committed result and feed it to PoD; errors re-issue the lease, never throw. */
  async reveal(job: RunningJob, lease: Lease): Promise<void> {
    const host = this.#host;
    let outputs: Record<string, HostTensor>;
    try {
      const bytes = await host.node.request(lease.worker, PROTOCOL.reveal, revealRequestCodec.encode({ lease: lease.id }), { maxResponseBytes: MAX_UNIT_BYTES, timeoutMs: REVEAL_TIMEOUT_MS });
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
      host.log.warn('reveal failed; re-issuing', { lease: lease.id, worker: lease.worker, error: isDrillError(e) ? e.code : String(e) });
      if (job.finishing) return;
      job.sched.revealFailed(lease.id);
      host.announce(job);
      return;
    }
    if (job.finishing) return;
    job.runs.set(lease.worker, (job.runs.get(lease.worker) ?? 0) + 1);
    const r = job.sched.reveal(lease.id, outputs);
    if (r.failed) return void (await host.fail(job, r.failed.message));
    if (r.reopened) {
      host.log.info('unit disputed; re-running on more workers', { job: job.spec.id, unit: lease.unit });
      return void host.announce(job);
    }
    if (r.done) {
      const w = this.#writeUnit(job, r.done);
      job.pendingWrites.add(w);
      await w.finally(() => job.pendingWrites.delete(w));
    }
  }

  /** A decided unit: rows to the output files, then its credit record and store row. */
  async #writeUnit(job: RunningJob, d: UnitDone): Promise<void> {
    const host = this.#host;
    try {
      const first = job.out.layout().length === 0;
      await job.out.write(d.start, d.end, d.result);
      if (first) host.store()?.setLayout(job.spec.id, job.out.layout());
      let record: CreditRecord | null = null;
      const digest = job.digests.get(d.result) ?? resultDigest(d.result);
      if (d.outcome.credited.length > 0 && (d.outcome.status === 'agreed' || d.outcome.status === 'resolved')) {
        record = signCreditRecord(
          { job: job.spec.id, unit: d.unit, resultDigest: digest, flops: job.spec.flopsPerRow * (d.end - d.start), credited: d.outcome.credited, faulty: d.outcome.faulty, status: d.outcome.status, time: host.now() },
          host.seed,
        );
        job.ledger.apply(record);
        job.creditRecords++;
      } else if (d.outcome.faulty.length > 0) job.ledger.apply({ credited: [], faulty: d.outcome.faulty, flops: 0 });
      host.store()?.unitDone(job.spec.id, d.unit, d.outcome.status, digest, d.workers, d.outcome.credited, d.outcome.faulty, record, host.now());
      if (record) host.onCredit?.(record);
      job.events.emit('unit', d);
      job.events.emit('progress', job.sched.progress());
      if (job.sched.isFinished()) await host.finish(job);
    } catch (e) {
      // Not awaited: fail() waits for the job's pending writes, and this is one of them.
      void host.fail(job, `writing outputs failed: ${(e as Error).message}`);
    }
  }
}
