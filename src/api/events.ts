/**
 * The API's event hub: turns what the coordinator and the chain emit into one numbered stream
 * of events for Server-Sent Events clients and for the metrics, and keeps the latest
 * `bufferSize` of them so a client that reconnects with `Last-Event-ID` gets what it missed.
 *
 * Event ids are `<boot>-<seq>`: `boot` changes every start, so an id from before a restart (or
 * one already dropped from the buffer) is answered with a `reset` event — the client reloads
 * its state from the REST routes — instead of a silent gap.
 *
 * Events: job (started), progress (at most every `progressMs` per job, and the last one),
 * unit (a PoD decision), fault (a worker quarantined in a job, or released), done (a job
 * ended), worker (connected / left), lease (latency, for metrics only — not streamed), block,
 * head, reorg. Job events carry the job's partner: a partner's stream shows only its jobs.
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { Coordinator, JobHandle } from '../coordinator/service.ts';
import type { ChainService } from '../chain/service.ts';
import type { Progress, UnitDone } from '../coordinator/scheduler.ts';
import type { FaultEvent } from '../coordinator/running.ts';
import type { JobReport } from '../coordinator/report.ts';

export interface ProgressData {
  job: string;
  progress: Progress;
  rows: number;
  rowsPerSecond: number;
  etaMs: number | null;
}

export interface UnitData {
  job: string;
  unit: number;
  rows: number;
  /** PoD decision: agreed, resolved (a dispute settled by a majority), unaudited, unverified. */
  outcome: string;
  /** Workers outvoted (resolved units). */
  faulty: string[];
  disputed: boolean;
  audited: boolean;
  redecided: boolean;
  workers: string[];
  decidedBy: string[];
  credited: string[];
  /** FLOPs credited to each newly credited worker. */
  flops: number;
}

export interface EventMap {
  job: { job: string; name: string; partner: string; rows: number; units: number; replicas: number };
  progress: ProgressData;
  unit: UnitData;
  fault: FaultEvent & { job: string };
  done: { job: string; status: 'done' | 'failed'; error?: string; rows: number; rowsPerSecond: number; elapsedMs: number; totalCredit: number };
  worker: { peer: string; connected: boolean };
  lease: { ms: number };
  block: { hash: string; height: number; slot: number; epoch: number; producer: string; credits: number; own: boolean };
  head: { hash: string; height: number; slot: number };
  reorg: { from: string; to: string; ancestor: string; depth: number };
}
export type EventType = keyof EventMap;

export interface HubEvent<T extends EventType = EventType> {
  id: string;
  type: T;
  data: EventMap[T];
  /** The job's partner for job events ('' for a local job); absent for network events. */
  partner?: string;
  /** The job, for job events. */
  job?: string;
}

/** Events a stream does not carry (metrics only). */
const NOT_STREAMED = new Set<EventType>(['lease']);

export interface EventHubOptions {
  /**
   * Events kept for replay: 4096 covers a few minutes of a busy grid (a unit event per decided
   * unit, progress at most 4/s per job); a client away longer gets `reset` and reloads.
   */
  bufferSize: number;
  /** Progress events per job at most this often: 250 ms is smooth for a progress bar. */
  progressMs: number;
}

export const defaultEventHubOptions: EventHubOptions = { bufferSize: 4096, progressMs: 250 };

export class EventHub {
  readonly #coord: Coordinator;
  readonly #chain: ChainService | null;
  readonly #opts: EventHubOptions;
  readonly #boot = randomBytes(4).toString('hex');
  #seq = 0;
  readonly #buffer: HubEvent[] = [];
  readonly #emitter = new EventEmitter<{ event: [HubEvent] }>();
  readonly #offs: (() => void)[] = [];
  /** Jobs followed now → how to stop following them. */
  readonly #followed = new Map<string, () => void>();
  readonly #now: () => number;

  constructor(coordinator: Coordinator, chain: ChainService | null, opts: Partial<EventHubOptions> = {}, now: () => number = Date.now) {
    this.#coord = coordinator;
    this.#chain = chain;
    this.#opts = { ...defaultEventHubOptions, ...opts };
    this.#now = now;
    this.#emitter.setMaxListeners(0);
  }

  start(): void {
    const c = this.#coord;
    const onJob = (h: JobHandle): void => this.#follow(h);
    const onWorker = (w: { peer: string; connected: boolean }): void => this.#push('worker', w);
    const onLease = (ms: number): void => this.#push('lease', { ms });
    c.events.on('job', onJob);
    c.events.on('worker', onWorker);
    c.events.on('lease', onLease);
    this.#offs.push(() => c.events.off('job', onJob), () => c.events.off('worker', onWorker), () => c.events.off('lease', onLease));
    for (const h of c.runningJobs()) this.#follow(h);
    const ch = this.#chain;
    if (ch) {
      const onBlock = (b: EventMap['block']): void => this.#push('block', { hash: b.hash, height: b.height, slot: b.slot, epoch: b.epoch, producer: b.producer, credits: b.credits, own: b.own });
      const onHead = (h: EventMap['head']): void => this.#push('head', { hash: h.hash, height: h.height, slot: h.slot });
      const onReorg = (r: EventMap['reorg']): void => this.#push('reorg', { from: r.from, to: r.to, ancestor: r.ancestor, depth: r.depth });
      ch.on('block', onBlock);
      ch.on('head', onHead);
      ch.on('reorg', onReorg);
      this.#offs.push(() => ch.off('block', onBlock), () => ch.off('head', onHead), () => ch.off('reorg', onReorg));
    }
  }

  stop(): void {
    for (const off of this.#offs.splice(0)) off();
    for (const off of [...this.#followed.values()]) off();
    this.#followed.clear();
    this.#emitter.removeAllListeners();
  }

  /** Listen to every event as it happens (metrics); returns an unsubscribe function. */
  onEvent(cb: (e: HubEvent) => void): () => void {
    this.#emitter.on('event', cb);
    return () => this.#emitter.off('event', cb);
  }

  /**
   * Subscribe a stream client: `send` gets the missed events after `lastEventId` (or a `reset`
   * when they are gone), then every new event that `accept` lets through.
   * Returns an unsubscribe function.
   */
  subscribe(accept: (e: HubEvent) => boolean, send: (e: HubEvent | { id: string; type: 'reset'; data: { reason: string } }) => void, lastEventId?: string): () => void {
    const listener = (e: HubEvent): void => {
      if (!NOT_STREAMED.has(e.type) && accept(e)) send(e);
    };
    if (lastEventId !== undefined && lastEventId !== '') {
      const missed = this.#since(lastEventId);
      if (missed === null) send({ id: this.lastId(), type: 'reset', data: { reason: 'events since Last-Event-ID are no longer kept (or the coordinator restarted): reload the state' } });
      else for (const e of missed) listener(e);
    }
    this.#emitter.on('event', listener);
    return () => this.#emitter.off('event', listener);
  }

  /** The id of the latest event (what a fresh client starts from). */
  lastId(): string {
    return `${this.#boot}-${this.#seq}`;
  }

  /** Events after `id`, or null when they cannot be told (another boot, or already dropped). */
  #since(id: string): HubEvent[] | null {
    const m = id.match(/^([0-9a-f]{8})-(\d{1,15})$/);
    if (!m || m[1] !== this.#boot) return null;
    const seq = Number(m[2]);
    if (seq > this.#seq) return null;
    if (seq === this.#seq) return [];
    const first = this.#buffer[0];
    const firstSeq = first ? Number(first.id.slice(this.#boot.length + 1)) : this.#seq + 1;
    if (seq < firstSeq - 1) return null;
    return this.#buffer.slice(seq - firstSeq + 1);
  }

  #push<T extends EventType>(type: T, data: EventMap[T], job?: { id: string; partner: string }): void {
    const e: HubEvent<T> = { id: `${this.#boot}-${++this.#seq}`, type, data, ...(job ? { job: job.id, partner: job.partner } : {}) };
    this.#buffer.push(e as HubEvent);
    if (this.#buffer.length > this.#opts.bufferSize) this.#buffer.shift();
    this.#emitter.emit('event', e as HubEvent);
  }

  #follow(h: JobHandle): void {
    if (this.#followed.has(h.id)) return;
    let partner = '';
    let started = this.#now();
    try {
      const row = this.#coord.store().getJob(h.id);
      partner = row?.partner ?? '';
      started = row?.createdAt ?? started;
    } catch {
      return; // coordinator stopped
    }
    const ref = { id: h.id, partner };
    const spec = h.spec;
    const p0 = h.progress();
    this.#push('job', { job: h.id, name: spec.name, partner, rows: spec.rows, units: p0.total, replicas: spec.replicas }, ref);
    let lastProgress = 0;
    let timer: NodeJS.Timeout | null = null;
    const progress = (): void => {
      timer = null;
      lastProgress = this.#now();
      this.#push('progress', progressData(h.id, h.progress(), spec.rows, lastProgress - started), ref);
    };
    const onProgress = (): void => {
      if (timer) return;
      const wait = lastProgress + this.#opts.progressMs - this.#now();
      if (wait <= 0) progress();
      else timer = setTimeout(progress, wait);
    };
    const rowsPerUnit = (u: UnitDone): number => u.end - u.start;
    const onUnit = (u: UnitDone): void => this.#push('unit', {
      job: h.id, unit: u.unit, rows: rowsPerUnit(u), outcome: u.outcome.status, faulty: u.outcome.faulty, disputed: u.disputed, audited: u.audited, redecided: u.redecided,
      workers: u.workers, decidedBy: u.decidedBy, credited: u.newlyCredited, flops: spec.flopsPerRow * rowsPerUnit(u),
    }, ref);
    const onFault = (f: FaultEvent): void => this.#push('fault', { ...f, job: h.id }, ref);
    const unfollow = (): void => {
      if (timer) clearTimeout(timer);
      timer = null;
      h.events.off('progress', onProgress);
      h.events.off('unit', onUnit);
      h.events.off('fault', onFault);
      h.events.off('done', onDone);
      this.#followed.delete(h.id);
    };
    const onDone = (r: JobReport): void => {
      unfollow();
      progress();
      this.#push('done', { job: h.id, status: r.status, ...(r.error ? { error: r.error } : {}), rows: r.rows, rowsPerSecond: r.rowsPerSecond, elapsedMs: r.elapsedMs, totalCredit: r.totalCredit }, ref);
    };
    h.events.on('progress', onProgress);
    h.events.on('unit', onUnit);
    h.events.on('fault', onFault);
    h.events.on('done', onDone);
    this.#followed.set(h.id, unfollow);
  }
}

/** Rows/s and ETA of a job from its progress and elapsed time. */
export function progressData(job: string, p: Progress, rows: number, elapsedMs: number): ProgressData {
  const rate = elapsedMs > 0 ? (p.rowsDone * 1000) / elapsedMs : 0;
  return { job, progress: p, rows, rowsPerSecond: rate, etaMs: p.rowsDone >= rows ? 0 : rate > 0 ? ((rows - p.rowsDone) / rate) * 1000 : null };
}
