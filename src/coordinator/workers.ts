/**
 * The coordinator's worker registry: who said hello (threads, device, score, execution
 * profile), who is connected now, and waiting for a number of workers.
 */
import { EventEmitter } from 'node:events';
import { DrillError } from '../util/errors.ts';
import type { Hello } from '../protocol/grid.ts';

export interface WorkerInfo extends Hello {
  peer: string;
  connected: boolean;
}

export class WorkerRegistry {
  readonly #workers = new Map<string, WorkerInfo>();
  readonly #registered = new EventEmitter<{ worker: [string] }>();

  /** Record a worker's hello (a re-hello replaces what it said before). */
  hello(peer: string, h: Hello): WorkerInfo {
    const w: WorkerInfo = { ...h, peer, connected: true };
    this.#workers.set(peer, w);
    this.#registered.emit('worker', peer);
    return w;
  }

  /** Mark a worker disconnected. Returns false when it was not a connected worker. */
  gone(peer: string): boolean {
    const w = this.#workers.get(peer);
    if (!w || !w.connected) return false;
    w.connected = false;
    return true;
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
