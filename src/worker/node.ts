/**
 * The drilling worker's network side: registers with coordinators, claims units when it has
 * free capacity (woken by unit announcements on gossip), fetches models by content hash over
 * a libp2p stream into its on-disk cache, runs units in the InferencePool, commits to a hash
 * of each result and reveals it only when the coordinator asks (after every replica of the
 * round has committed).
 */
import { randomBytes } from 'node:crypto';
import { readFile, open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { EventEmitter } from 'node:events';
import type { DrillNode } from '../net/node.ts';
import { fetchBlob } from '../net/blobs.ts';
import { DEFAULT_BLOB_TIMEOUT_MS } from '../net/constants.ts';
import type { Logger } from '../util/log.ts';
import { silentLogger } from '../util/log.ts';
import { isDrillError } from '../util/errors.ts';
import type { HostTensor } from '../util/tensor.ts';
import { BYTES_PER_ELEMENT, elementCount, typedView, floatToHalf, halfToFloat } from '../util/tensor.ts';
import { commitment, resultDigest } from '../pod/commit.ts';
import {
  PROTOCOL, UNITS_TOPIC, helloCodec, helloAckCodec, claimCodec, decodeClaimReply, commitCodec, ackCodec,
  revealRequestCodec, encodeRevealReply, unitErrorCodec, decodeCommitReply, MAX_UNIT_BYTES, MAX_CONTROL_BYTES,
} from '../protocol/grid.ts';
import type { CommitReply, LeaseInfo, InputFileRange } from '../protocol/grid.ts';

/** Input files kept open for same-filesystem leases: a worker serves one or two jobs at a time. */
const MAX_OPEN_INPUT_FILES = 16;
import type { InferencePool } from './pool.ts';
import type { ModelCache } from './models.ts';

/** The slowest model transfer a worker waits for: 5 MB/s (a 2 GiB model: ~7 min). */
const MODEL_FETCH_BYTES_PER_MS = 5_000;

export interface WorkerNodeOptions {
  /**
   * Units this worker runs or queues at once. Default: 2 × pool threads — one unit queued behind
   * each running one, so a thread that finishes finds work at once even when the network side is
   * still receiving the next unit (big units of tiny models take tens of ms to arrive). It matches
   * the coordinator's default lease limit (threads × inflightPerThread 2). Memory: at most this
   * many units' inputs (≤ 16 MiB each by default) per worker.
   */
  capacity?: number;
  /** Threads reported to coordinators (scheduling hint). */
  threads: number;
  device: string;
  /** Device Share benchmark score in GFLOP/s (a hint, never credit). */
  score?: number;
  /**
   * DEMO ONLY: corrupt every result, so a report shows Proof of Drilling catching a cheater.
   * The worker says so in its hello; it earns no credit either way.
   */
  cheat?: boolean;
  /** Results waiting to be revealed are dropped after this long (the coordinator gave up). 10 min. */
  revealTtlMs?: number;
  /**
   * Read input rows straight from the coordinator's files when we share its filesystem (proved by
   * reading a random token it wrote), instead of receiving them over the network. Off by
   * default: a coordinator could then name any file this worker can read as a unit's input, so
   * only enable it for a coordinator you trust with this machine's files — an embedded grid (one
   * process) or your own cluster with a shared filesystem.
   */
  sharedFs?: boolean;
  logger?: Logger;
}

export interface WorkerEvents {
  registered: [string];
  unit: [{ lease: string; rows: number; runMs: number }];
  error: [{ lease: string; message: string }];
}

interface Pending {
  coordinator: string;
  salt: string;
  outputs: Record<string, HostTensor>;
  expires: number;
}

export class WorkerNode {
  readonly events = new EventEmitter<WorkerEvents>();
  readonly #node: DrillNode;
  readonly #pool: InferencePool;
  readonly #models: ModelCache;
  readonly #opts: Required<Omit<WorkerNodeOptions, 'logger'>>;
  readonly #log: Logger;
  readonly #coordinators = new Map<string, { maxInflight: number; fsToken?: string }>();
  /** Open input files of same-filesystem leases, by path (a few jobs at a time). */
  readonly #inputFiles = new Map<string, Promise<FileHandle>>();
  readonly #pending = new Map<string, Pending>();
  readonly #fetching = new Map<string, Promise<string>>();
  #inflight = 0;
  #filling = new Set<string>();
  #wanted = new Set<string>();
  #stopped = false;
  #unitsDone = 0;
  #unitsFromFiles = 0;
  #offPeer: (() => void) | null = null;
  #sweep: NodeJS.Timeout | null = null;

  constructor(node: DrillNode, pool: InferencePool, models: ModelCache, opts: WorkerNodeOptions) {
    this.#node = node;
    this.#pool = pool;
    this.#models = models;
    this.#opts = { capacity: 2 * opts.threads, score: 0, cheat: false, revealTtlMs: 600_000, sharedFs: false, ...opts };
    this.#log = (opts.logger ?? silentLogger).child('worker');
  }

  get peerId(): string {
    return this.#node.peerId;
  }

  get unitsDone(): number {
    return this.#unitsDone;
  }

  /** Units whose input rows this worker read from the coordinator's files (same filesystem). */
  get unitsFromFiles(): number {
    return this.#unitsFromFiles;
  }

  async start(): Promise<void> {
    await this.#node.handle(PROTOCOL.reveal, (req, from) => this.#onReveal(req, from), { maxRequestBytes: 4096 });
    this.#node.subscribe(UNITS_TOPIC, (a, from) => {
      if (!this.#coordinators.has(from)) {
        void this.join(from).catch((e) => this.#log.debug('cannot join announcing coordinator', { from, error: String(e) }));
        return;
      }
      void this.#fill(from);
    });
    this.#offPeer = this.#node.onPeer('disconnect', (peer) => {
      if (this.#coordinators.delete(peer)) {
        this.#log.warn('coordinator disconnected', { peer });
        for (const [k, p] of this.#pending) if (p.coordinator === peer) this.#pending.delete(k);
      }
    });
    this.#sweep = setInterval(() => {
      const now = Date.now();
      for (const [k, p] of this.#pending) if (p.expires < now) this.#pending.delete(k);
    }, 30_000);
    this.#sweep.unref();
  }

  /** Register with a coordinator (peer id or multiaddr) and start claiming its units. */
  async join(coordinator: string): Promise<string> {
    if (coordinator.startsWith('/')) await this.#node.dial(coordinator);
    const reply = helloAckCodec.decode(
      await this.#node.request(coordinator, PROTOCOL.hello, helloCodec.encode({
        threads: this.#opts.threads, device: this.#opts.device, score: this.#opts.score, cheater: this.#opts.cheat, profile: JSON.stringify(this.#pool.profile ?? {}),
      })),
    );
    let fsToken: string | undefined;
    if (this.#opts.sharedFs && reply.fsProbe) {
      // Reading the coordinator's random token proves we share its filesystem.
      const t = await readFile(reply.fsProbe, 'utf8').catch(() => '');
      if (/^[0-9a-f]{64}$/.test(t)) fsToken = t;
    }
    this.#coordinators.set(reply.coordinator, { maxInflight: reply.maxInflight, ...(fsToken ? { fsToken } : {}) });
    this.#log.info('registered with coordinator', { coordinator: reply.coordinator, maxInflight: reply.maxInflight, sharedFs: Boolean(fsToken) });
    this.events.emit('registered', reply.coordinator);
    void this.#fill(reply.coordinator);
    return reply.coordinator;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#offPeer?.();
    if (this.#sweep) clearInterval(this.#sweep);
    await this.#node.unhandle(PROTOCOL.reveal).catch(() => undefined);
    this.#node.unsubscribe(UNITS_TOPIC.name);
    for (const fh of this.#inputFiles.values()) await fh.then((f) => f.close()).catch(() => undefined);
    this.#inputFiles.clear();
  }

  /** Same-filesystem lease: read each input's rows from the file and offset the lease names. */
  async #readInputFiles(files: Record<string, InputFileRange>): Promise<Record<string, HostTensor>> {
    const out: Record<string, HostTensor> = {};
    for (const [name, f] of Object.entries(files)) {
      let fh = this.#inputFiles.get(f.path);
      if (!fh) {
        if (this.#inputFiles.size >= MAX_OPEN_INPUT_FILES) {
          const [oldest, h] = this.#inputFiles.entries().next().value as [string, Promise<FileHandle>];
          this.#inputFiles.delete(oldest);
          void h.then((x) => x.close()).catch(() => undefined);
        }
        fh = open(f.path, 'r');
        this.#inputFiles.set(f.path, fh);
        fh.catch(() => this.#inputFiles.delete(f.path));
      }
      // One run, or `segments` equal runs `stride` apart (rows split on a later axis), in order.
      const len = elementCount(f.dims) * BYTES_PER_ELEMENT[f.dtype];
      const buf = new Uint8Array(len);
      const handle = await fh;
      const segments = f.segments ?? 1;
      const runLen = len / segments;
      for (let k = 0; k < segments; k++) {
        const from = f.offset + k * (f.stride ?? 0);
        let off = 0;
        while (off < runLen) {
          const { bytesRead } = await handle.read(buf, k * runLen + off, runLen - off, from + off);
          if (bytesRead === 0) throw new Error(`input ${name}: ${f.path} ended before the leased rows`);
          off += bytesRead;
        }
      }
      out[name] = { dtype: f.dtype, dims: f.dims, data: typedView(f.dtype, buf) };
    }
    return out;
  }

  /** Claim units from `coordinator` while there is capacity and it has work. */
  async #fill(coordinator: string): Promise<void> {
    if (this.#filling.has(coordinator)) {
      this.#wanted.add(coordinator); // re-run once the current pass ends
      return;
    }
    this.#filling.add(coordinator);
    try {
      while (!this.#stopped && this.#inflight < this.#opts.capacity && this.#coordinators.has(coordinator)) {
        let reply;
        try {
          const fsToken = this.#coordinators.get(coordinator)?.fsToken;
          reply = decodeClaimReply(await this.#node.request(coordinator, PROTOCOL.claim, claimCodec.encode(fsToken ? { fsToken } : {}), { maxResponseBytes: MAX_UNIT_BYTES, timeoutMs: 60_000 }));
        } catch (e) {
          this.#log.debug('claim failed', { coordinator, error: isDrillError(e) ? e.code : String(e) });
          return;
        }
        if (!reply.ok) {
          if (reply.reason === 'not-registered') this.#coordinators.delete(coordinator);
          return;
        }
        this.#inflight++;
        void this.#runChain(coordinator, reply.lease, reply.inputs);
      }
    } finally {
      this.#filling.delete(coordinator);
      if (this.#wanted.delete(coordinator)) void this.#fill(coordinator);
    }
  }

  async #model(coordinator: string, hash: string, bytes: number): Promise<string> {
    if (this.#models.has(hash)) return this.#models.path(hash);
    let p = this.#fetching.get(hash);
    if (!p) {
      p = (async () => {
        this.#log.info('fetching model', { hash: hash.slice(0, 12), bytes });
        // Models up to 2 GiB: give the transfer time for its size at a modest 5 MB/s, at least the usual 120 s.
        const data = await fetchBlob(this.#node, coordinator, hash, { maxBytes: bytes, timeoutMs: Math.max(DEFAULT_BLOB_TIMEOUT_MS, Math.ceil(bytes / MODEL_FETCH_BYTES_PER_MS)) });
        return this.#models.putVerified(hash, data);
      })();
      this.#fetching.set(hash, p);
      p.finally(() => this.#fetching.delete(hash)).catch(() => undefined);
    }
    await p;
    return this.#models.path(hash);
  }

  /**
   * Run a unit in one capacity slot, then the units the coordinator hands back with each commit
   * (commit-and-claim), until it has none; then free the slot and claim again the ordinary way.
   */
  async #runChain(coordinator: string, lease: LeaseInfo, inputs: Record<string, HostTensor>): Promise<void> {
    let next: { lease: LeaseInfo; inputs: Record<string, HostTensor> } | null = { lease, inputs };
    try {
      while (next) next = await this.#runUnit(coordinator, next.lease, next.inputs);
    } finally {
      this.#inflight--;
      void this.#fill(coordinator);
    }
  }

  /** Run one unit and commit to its result. Returns the next lease when the commit reply carried one. */
  async #runUnit(coordinator: string, lease: LeaseInfo, inputs: Record<string, HostTensor>): Promise<{ lease: LeaseInfo; inputs: Record<string, HostTensor> } | null> {
    try {
      const modelPath = await this.#model(coordinator, lease.modelHash, lease.modelBytes);
      if (lease.inputFiles) {
        if (!this.#coordinators.get(coordinator)?.fsToken) throw new Error('lease names input files, but this worker did not agree to read them');
        inputs = await this.#readInputFiles(lease.inputFiles);
        this.#unitsFromFiles++;
      }
      const r = await this.#pool.run({ modelHash: lease.modelHash, modelPath, inputs, outputNames: lease.outputNames });
      const outputs = this.#opts.cheat ? corrupt(r.outputs) : r.outputs;
      const salt = randomBytes(32).toString('hex');
      const c = commitment(this.#node.peerId, lease.lease, salt, resultDigest(outputs));
      this.#pending.set(lease.lease, { coordinator, salt, outputs, expires: Date.now() + this.#opts.revealTtlMs });
      // Ask for the next lease with the commit unless stopping: this slot frees up once committed.
      const claim = !this.#stopped && this.#coordinators.has(coordinator);
      const fsToken = this.#coordinators.get(coordinator)?.fsToken;
      const bytes = await this.#node.request(
        coordinator,
        PROTOCOL.commit,
        commitCodec.encode({ lease: lease.lease, commitment: c, runMs: r.runMs, profile: `${r.profile.device}/${r.profile.ep}/t${r.profile.intraOpThreads}`, ...(claim ? { claim } : {}), ...(claim && fsToken ? { fsToken } : {}) }),
        claim ? { maxResponseBytes: MAX_UNIT_BYTES + MAX_CONTROL_BYTES, timeoutMs: 60_000 } : {},
      );
      const ack: CommitReply = claim ? decodeCommitReply(bytes) : ackCodec.decode(bytes);
      if (!ack.ok) {
        this.#pending.delete(lease.lease);
        this.#log.debug('commit refused', { lease: lease.lease, reason: ack.reason });
        return null;
      }
      this.#unitsDone++;
      this.events.emit('unit', { lease: lease.lease, rows: lease.rows, runMs: r.runMs });
      const next = ack.next;
      if (next && !next.ok && next.reason === 'not-registered') this.#coordinators.delete(coordinator);
      return next?.ok && !this.#stopped ? { lease: next.lease, inputs: next.inputs } : null;
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      this.#log.warn('unit failed', { lease: lease.lease, error: message });
      this.events.emit('error', { lease: lease.lease, message });
      await this.#node.request(coordinator, PROTOCOL.error, unitErrorCodec.encode({ lease: lease.lease, message: message.slice(0, 4000) })).catch(() => undefined);
      return null;
    }
  }

  async #onReveal(req: Uint8Array, from: string): Promise<Uint8Array> {
    const { lease } = revealRequestCodec.decode(req);
    const p = this.#pending.get(lease);
    // Only the coordinator that leased the unit may see the result.
    if (!p || p.coordinator !== from) return encodeRevealReply({ ok: false, reason: 'no such result' });
    this.#pending.delete(lease);
    return encodeRevealReply({ ok: true, salt: p.salt, outputs: p.outputs });
  }
}

/**
 * What a cheating (demo) worker returns: every value visibly wrong and the order of values
 * reversed (floats x → 1 − x/2, signed integers x → 1 − x, unsigned x → max − x, bool
 * flipped), same shapes — the kind of result a worker that skipped the compute would have to
 * invent. Reversing the order matters: an order-preserving change (x/2 + 1, x + 1) keeps every
 * argmax/top-k, so under an `argmax` policy the cheater agreed with honest workers and was
 * credited.
 */
export function corrupt(outputs: Record<string, HostTensor>): Record<string, HostTensor> {
  const out: Record<string, HostTensor> = {};
  for (const [k, t] of Object.entries(outputs)) {
    const d = t.data;
    let data: HostTensor['data'];
    switch (t.dtype) {
      case 'float32':
      case 'float64':
        data = (d as Float32Array).map((x) => 1 - x * 0.5);
        break;
      case 'float16':
        data = (d as Uint16Array).map((h) => floatToHalf(1 - halfToFloat(h) * 0.5));
        break;
      case 'int64':
        data = (d as BigInt64Array).map((x) => 1n - x);
        break;
      case 'uint64':
        data = (d as BigUint64Array).map((x) => 0xffffffffffffffffn - x);
        break;
      case 'int8':
      case 'int16':
      case 'int32':
        data = (d as Int32Array).map((x) => 1 - x);
        break;
      case 'bool':
        data = (d as Uint8Array).map((x) => x ^ 1);
        break;
      default: // uint8, uint16, uint32: max − x (the typed array wraps it)
        data = (d as Uint32Array).map((x) => -1 - x);
    }
    out[k] = { ...t, data };
  }
  return out;
}
