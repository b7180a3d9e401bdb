/**
 * Results waiting for their reveal (pure: the clock is passed in). A worker commits to a result
 * and keeps it until the coordinator that leased the unit asks for it — which an honest
 * coordinator does as soon as every replica of the unit's round has committed. A coordinator
 * that never asks would otherwise make the worker hold every result it ever computed, so the
 * store is bounded three ways: a time to live, a count and a byte total. Over a bound, the oldest
 * result of the coordinator holding the most bytes goes first: a coordinator that never asks for
 * reveals loses its own results, not another coordinator's.
 */
import type { HostTensor } from '../util/tensor.ts';

export interface PendingResult {
  coordinator: string;
  salt: string;
  /** The result's tensors (empty when spooled). */
  outputs: Record<string, HostTensor>;
  /** The result lies in the coordinator's spool file (its bytes are not held here). */
  spooled?: true;
  /** Output bytes held. */
  bytes: number;
  /** When it is dropped (ms). */
  expires: number;
}

export interface PendingLimits {
  /** Results held at most. */
  maxCount: number;
  /** Output bytes held at most. */
  maxBytes: number;
  /** A result not asked for within this long is dropped. */
  ttlMs: number;
}

/**
 * Defaults:
 * - ttlMs 5 min: a reveal comes once the unit's other replicas commit; each has at most the
 *   lease time (2 min by default) and a replica re-issued once another 2 min, so 5 min covers an
 *   honest coordinator's slowest round (the old 10 min held results for five lease periods).
 * - maxBytes 256 MiB: four of the largest units (64 MiB, the lease message limit); default units
 *   carry at most 16 MiB of input and their outputs are usually far smaller.
 * - maxCount 1,024: a 64-thread worker with 16 units per thread awaiting their reveals; each
 *   entry costs a map slot and a salt besides its bytes.
 */
export const defaultPendingLimits: PendingLimits = { maxCount: 1024, maxBytes: 256 * 1024 * 1024, ttlMs: 5 * 60_000 };

/** Bytes of a result's tensors. */
export function outputBytes(outputs: Record<string, HostTensor>): number {
  let n = 0;
  for (const t of Object.values(outputs)) n += t.data.byteLength;
  return n;
}

export class PendingResults {
  readonly #limits: PendingLimits;
  /** By lease id, oldest first (Map keeps insertion order). */
  readonly #byLease = new Map<string, PendingResult>();
  /** Per coordinator: results and bytes held. */
  readonly #by = new Map<string, { count: number; bytes: number }>();
  #bytes = 0;
  /** Results dropped before their reveal (expired or evicted). */
  dropped = 0;

  constructor(limits: Partial<PendingLimits> = {}) {
    this.#limits = { ...defaultPendingLimits, ...limits };
  }

  get size(): number {
    return this.#byLease.size;
  }

  get bytes(): number {
    return this.#bytes;
  }

  /** Bytes held for one coordinator. */
  bytesOf(coordinator: string): number {
    return this.#by.get(coordinator)?.bytes ?? 0;
  }

  /**
   * Keep a result until `now + ttlMs`, evicting others past the bounds (never the new one,
   * unless it alone is over the byte bound). Returns the lease ids evicted.
   */
  add(lease: string, r: Omit<PendingResult, 'bytes' | 'expires'>, now: number): string[] {
    this.#delete(lease);
    const entry: PendingResult = { ...r, bytes: outputBytes(r.outputs), expires: now + this.#limits.ttlMs };
    this.#byLease.set(lease, entry);
    this.#bytes += entry.bytes;
    const c = this.#by.get(entry.coordinator) ?? { count: 0, bytes: 0 };
    c.count++;
    c.bytes += entry.bytes;
    this.#by.set(entry.coordinator, c);
    const evicted: string[] = [];
    while (this.#byLease.size > 1 && (this.#byLease.size > this.#limits.maxCount || this.#bytes > this.#limits.maxBytes)) {
      const victim = this.#victim(lease);
      if (victim === undefined) break;
      this.#delete(victim);
      this.dropped++;
      evicted.push(victim);
    }
    if (this.#bytes > this.#limits.maxBytes) {
      this.#delete(lease); // a single result over the whole budget cannot be kept
      this.dropped++;
      evicted.push(lease);
    }
    return evicted;
  }

  /** The result for `lease`, removed — only to the coordinator that leased it. */
  take(lease: string, from: string): PendingResult | undefined {
    const r = this.#byLease.get(lease);
    if (!r || r.coordinator !== from) return undefined;
    this.#delete(lease);
    return r;
  }

  /** Drop a result (its commit was refused). */
  delete(lease: string): void {
    this.#delete(lease);
  }

  /** Drop every result of a coordinator (it disconnected: it cannot ask any more). */
  dropCoordinator(coordinator: string): number {
    let n = 0;
    for (const [k, r] of this.#byLease) {
      if (r.coordinator === coordinator) {
        this.#delete(k);
        n++;
      }
    }
    return n;
  }

  /** Drop expired results; returns how many. */
  sweep(now: number): number {
    let n = 0;
    for (const [k, r] of this.#byLease) {
      if (r.expires <= now) {
        this.#delete(k);
        this.dropped++;
        n++;
      }
    }
    return n;
  }

  /** The oldest result (other than `keep`) of the coordinator holding the most bytes. */
  #victim(keep: string): string | undefined {
    let top: string | undefined;
    let topBytes = -1;
    for (const [c, { bytes }] of this.#by) {
      if (bytes > topBytes) {
        top = c;
        topBytes = bytes;
      }
    }
    let fallback: string | undefined;
    for (const [k, r] of this.#byLease) {
      if (k === keep) continue;
      if (r.coordinator === top) return k;
      fallback ??= k;
    }
    return fallback;
  }

  #delete(lease: string): void {
    const r = this.#byLease.get(lease);
    if (!r) return;
    this.#byLease.delete(lease);
    this.#bytes -= r.bytes;
    const c = this.#by.get(r.coordinator)!;
    c.count--;
    c.bytes -= r.bytes;
    if (c.count === 0) this.#by.delete(r.coordinator);
  }
}
