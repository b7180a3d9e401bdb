/**
 * The coordinator's worker registry: who said hello (threads, device, score, execution
 * profile), who is connected now, and waiting for a number of workers.
 *
 * Bounded: anyone can say hello, and peer ids are free, so a disconnected worker is forgotten
 * `forgetAfterMs` after it left, and the table holds at most `maxWorkers` entries (a hello that
 * finds it full pushes out the worker that left longest ago, or is refused when every entry is
 * connected). A running job's report does not depend on this table: the lease desk copies what
 * a report shows about a worker into the job when the worker first leases one of its units.
 */
import { EventEmitter } from 'node:events';
import { DrillError } from '../util/errors.ts';
import type { Hello } from '../protocol/grid.ts';
import type { Candidate } from './scheduler.ts';

export interface WorkerInfo extends Hello {
  peer: string;
  connected: boolean;
  /** The IP address it connects from (null when unknown). */
  ip: string | null;
  /** When it disconnected (ms), while disconnected. */
  leftAt?: number;
}

/** Loopback addresses: every peer of an embedded grid or a one-host test shares them. */
const LOOPBACK = /^(127\.|::1$|::ffff:127\.)/;

export interface WorkerRegistryOptions {
  /** Forget a disconnected worker this long after it left. */
  forgetAfterMs: number;
  /** Most workers (connected or not) the table holds. */
  maxWorkers: number;
}

/**
 * Defaults:
 * - forgetAfterMs 10 min: a worker that restarts or loses its network comes back within
 *   seconds to a minute (its rejoin backs off to 30 s); after 10 min it says hello anew anyway.
 * - maxWorkers 10,000: libp2p's connection manager caps connections at a few hundred, so connected
 *   workers never fill it; the rest is room for churn (~300 B per entry: 3 MB in all).
 */
export const defaultWorkerRegistryOptions: WorkerRegistryOptions = { forgetAfterMs: 10 * 60_000, maxWorkers: 10_000 };

export class WorkerRegistry {
  readonly #workers = new Map<string, WorkerInfo>();
  readonly #registered = new EventEmitter<{ worker: [string] }>();
  /** Every hello (`connected` true) and departure (false), for observers (API events, metrics). */
  readonly changes = new EventEmitter<{ change: [{ peer: string; connected: boolean }] }>();
  readonly #opts: WorkerRegistryOptions;

  constructor(opts: Partial<WorkerRegistryOptions> = {}) {
    this.#opts = { ...defaultWorkerRegistryOptions, ...opts };
  }

  /**
   * Record a worker's hello (a re-hello replaces what it said before).
   * @throws DrillError REGISTRY_FULL when the table is full of connected workers.
   */
  hello(peer: string, h: Hello, ip: string | null = null): WorkerInfo {
    if (!this.#workers.has(peer) && this.#workers.size >= this.#opts.maxWorkers) {
      let oldest: WorkerInfo | undefined;
      for (const w of this.#workers.values()) if (!w.connected && (!oldest || (w.leftAt ?? 0) < (oldest.leftAt ?? 0))) oldest = w;
      if (!oldest) throw new DrillError('REGISTRY_FULL', `this coordinator has ${this.#opts.maxWorkers} workers connected, its maximum: try another coordinator or later`);
      this.#workers.delete(oldest.peer);
    }
    const w: WorkerInfo = { ...h, peer, connected: true, ip };
    this.#workers.delete(peer); // re-insert: Map order is then "least recently said hello" first
    this.#workers.set(peer, w);
    this.#candidates = null;
    this.#registered.emit('worker', peer);
    this.changes.emit('change', { peer, connected: true });
    return w;
  }

  /** Mark a worker disconnected at `now`. Returns false when it was not a connected worker. */
  gone(peer: string, now: number = Date.now()): boolean {
    const w = this.#workers.get(peer);
    if (!w || !w.connected) return false;
    w.connected = false;
    this.#candidates = null;
    w.leftAt = now;
    this.changes.emit('change', { peer, connected: false });
    return true;
  }

  /** Forget workers disconnected for `forgetAfterMs` or longer. Returns how many were dropped. */
  prune(now: number): number {
    let n = 0;
    for (const [peer, w] of this.#workers) {
      if (!w.connected && now - (w.leftAt ?? now) >= this.#opts.forgetAfterMs) {
        this.#workers.delete(peer);
        n++;
      }
    }
    return n;
  }

  get size(): number {
    return this.#workers.size;
  }

  get(peer: string): WorkerInfo | undefined {
    return this.#workers.get(peer);
  }

  /** Connected worker peer ids. */
  connected(): string[] {
    return [...this.#workers.values()].filter((w) => w.connected).map((w) => w.peer);
  }

  all(): WorkerInfo[] {
    return [...this.#workers.values()];
  }

  /**
   * The workers a scheduler may draw: connected ones, weighted by their declared threads,
   * grouped by IP address so that two replicas of a unit never go to one address — except
   * loopback (an embedded grid, a one-host test), where every peer shares the address.
   */
  candidates(): readonly Candidate[] {
    if (this.#candidates) return this.#candidates;
    const out: Candidate[] = [];
    for (const w of this.#workers.values()) {
      if (!w.connected) continue;
      out.push({ peer: w.peer, weight: w.threads, group: w.ip === null || LOOPBACK.test(w.ip) ? null : w.ip });
    }
    return (this.#candidates = out);
  }

  /** Cached candidates(): draws run per claim, the worker set changes rarely. */
  #candidates: Candidate[] | null = null;

  /** Resolves once `n` workers are connected (event-driven). @throws DrillError WORKERS_TIMEOUT */
  waitFor(n: number, timeoutMs = 60_000): Promise<void> {
    if (this.connected().length >= n) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.#registered.off('worker', check);
        reject(new DrillError('WORKERS_TIMEOUT', `only ${this.connected().length} of ${n} workers registered within ${timeoutMs} ms`));
      }, timeoutMs);
      const check = (): void => {
        if (this.connected().length >= n) {
          clearTimeout(t);
          this.#registered.off('worker', check);
          resolve();
        }
      };
      this.#registered.on('worker', check);
    });
  }
}
