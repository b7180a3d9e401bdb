/**
 * The drilling worker's network side: registers with coordinators, claims units when it has
 * free capacity (woken by unit announcements on gossip), fetches models by content hash over
 * a libp2p stream into its on-disk cache, runs units in the InferencePool, commits to a hash
 * of each result and reveals it only when the coordinator asks (after every replica of the
 * round has committed).
 */
import { randomBytes } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, normalize } from 'node:path';
import { constants as fsc } from 'node:fs';
import { EventEmitter } from 'node:events';
import type { DrillNode } from '../net/node.ts';
import { fetchBlob } from '../net/blobs.ts';
import type { Logger } from '../util/log.ts';
import { silentLogger } from '../util/log.ts';
import { DrillError, isDrillError } from '../util/errors.ts';
import type { HostTensor } from '../util/tensor.ts';
import { commitment, resultDigest } from '../pod/commit.ts';
import {
  PROTOCOL, UNITS_TOPIC, helloCodec, helloAckCodec, claimCodec, decodeClaimReply, commitCodec, ackCodec,
  revealRequestCodec, encodeRevealReply, unitErrorCodec, decodeCommitReply, MAX_UNIT_BYTES, MAX_CONTROL_BYTES, RESULT_SPOOL_NAME,
} from '../protocol/grid.ts';
import type { CommitReply, LeaseInfo, InputFileRange } from '../protocol/grid.ts';
import { addNoise, corrupt, zeros, StaleCache, CHEAT_ERROR_MESSAGE } from './cheat.ts';
import type { CheatMode } from './cheat.ts';
import { MAX_MODEL_BYTES, FS_PROBE_MAX_BYTES, parseFsProbe } from '../protocol/grid.ts';
import type { InferencePool } from './pool.ts';
import type { ModelCache } from './models.ts';
import { PendingResults, defaultPendingLimits } from './pending.ts';
import type { PendingLimits } from './pending.ts';
import { LeaseInputFiles } from './lease-inputs.ts';

/** Input files kept open for same-filesystem leases: a worker serves one or two jobs at a time. */
const MAX_OPEN_INPUT_FILES = 16;

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
   * DEMO AND TESTS ONLY: answer like a cheater (cheat.ts), so a report shows Proof of Drilling
   * catching it. Nothing on the wire says so; it earns no credit either way.
   */
  cheat?: CheatMode | null;
  /** Results waiting to be revealed are dropped after this long (see pending.ts for the default's reason). */
  revealTtlMs?: number;
  /** Results waiting to be revealed, at most (count and output bytes; the oldest of the biggest holder go first). */
  maxPendingResults?: number;
  maxPendingBytes?: number;
  /**
   * Coordinators this worker serves besides those it joins explicitly (`join()` adds its
   * target): peer ids, e.g. a genesis's coordinators. A unit announcement from any other peer is
   * ignored — a worker never joins a stranger because it announced work.
   */
  coordinators?: Iterable<string>;
  /** Largest model a lease may name (bytes); the blob fetch refuses more. */
  maxModelBytes?: number;
  /**
   * Read input rows straight from the coordinator's files when we share its filesystem (proved by
   * reading a random token it wrote next to its own peer id), instead of receiving them over the
   * network. Off by default. Even on, a lease may only name rows inside the data section of a
   * `.npy` file whose header matches the lease (lease-inputs.ts), and only the coordinator whose
   * peer id the probe file names gets this trust — but that is still reading this machine's
   * files at a coordinator's word, so enable it only for a coordinator you trust: an embedded
   * grid (one process) or your own cluster with a shared filesystem.
   */
  sharedFs?: boolean;
  logger?: Logger;
}

export interface WorkerEvents {
  registered: [string];
  unit: [{ lease: string; rows: number; runMs: number }];
  error: [{ lease: string; message: string }];
  /** A unit announcement from a coordinator this worker does not serve (ignored). */
  ignored: [string];
}

export class WorkerNode {
  readonly events = new EventEmitter<WorkerEvents>();
  readonly #node: DrillNode;
  readonly #pool: InferencePool;
  readonly #models: ModelCache;
  readonly #opts: Required<Omit<WorkerNodeOptions, 'logger' | 'coordinators'>>;
  readonly #log: Logger;
  /** Coordinators served: their inflight limit, and on a shared filesystem the probe's token and their result spool folder. */
  readonly #coordinators = new Map<string, { maxInflight: number; fsToken?: string; spoolDir?: string }>();
  /** Coordinators this worker serves (peer ids): the configured ones and those it joined. */
  readonly #allowed: Set<string>;
  /** Open input files of same-filesystem leases (a few jobs at a time). */
  readonly #inputFiles = new LeaseInputFiles(MAX_OPEN_INPUT_FILES);
  readonly #pending: PendingResults;
  /** Unit announcements ignored because their coordinator is not one this worker serves. */
  ignoredAnnouncements = 0;
  readonly #fetching = new Map<string, Promise<string>>();
  #inflight = 0;
  #filling = new Set<string>();
  #wanted = new Set<string>();
  #stopped = false;
  #unitsDone = 0;
  #unitsFromFiles = 0;
  #unitsSpooled = 0;
  #offPeer: (() => void) | null = null;
  #sweep: NodeJS.Timeout | null = null;

  constructor(node: DrillNode, pool: InferencePool, models: ModelCache, opts: WorkerNodeOptions) {
    this.#node = node;
    this.#pool = pool;
    this.#models = models;
    const { coordinators, logger, ...rest } = opts;
    this.#opts = {
      capacity: 2 * opts.threads, score: 0, cheat: null, revealTtlMs: defaultPendingLimits.ttlMs, maxPendingResults: defaultPendingLimits.maxCount,
      maxPendingBytes: defaultPendingLimits.maxBytes, sharedFs: false, maxModelBytes: MAX_MODEL_BYTES, ...rest,
    };
    this.#allowed = new Set(coordinators ?? []);
    this.#pending = new PendingResults({ maxCount: this.#opts.maxPendingResults, maxBytes: this.#opts.maxPendingBytes, ttlMs: this.#opts.revealTtlMs });
    this.#log = (logger ?? silentLogger).child('worker');
  }

  /** Results held for reveals (count, bytes) and how many were dropped unasked. */
  pendingStats(): { count: number; bytes: number; dropped: number } {
    return { count: this.#pending.size, bytes: this.#pending.bytes, dropped: this.#pending.dropped };
  }

  /** Coordinators currently joined (peer ids). */
  joined(): string[] {
    return [...this.#coordinators.keys()];
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

  /** Units whose result this worker wrote into the coordinator's spool (same filesystem). */
  get unitsSpooled(): number {
    return this.#unitsSpooled;
  }

  async start(): Promise<void> {
    await this.#node.handle(PROTOCOL.reveal, (req, from) => this.#onReveal(req, from), { maxRequestBytes: 4096 });
    this.#node.subscribe(UNITS_TOPIC, (_a, from) => {
      if (this.#coordinators.has(from)) return void this.#fill(from);
      // Only a coordinator we were given (--join, a genesis) may wake us; anyone can announce.
      if (!this.#allowed.has(from)) {
        this.ignoredAnnouncements++;
        this.events.emit('ignored', from);
        this.#log.debug('unit announcement from a coordinator this worker does not serve; ignored', { from });
        return;
      }
      void this.join(from).catch((e) => this.#log.debug('cannot join announcing coordinator', { from, error: String(e) }));
    });
    this.#offPeer = this.#node.onPeer('disconnect', (peer) => {
      if (this.#coordinators.delete(peer)) {
        this.#log.warn('coordinator disconnected', { peer });
        this.#pending.dropCoordinator(peer);
      }
    });
    // Expired results are swept every 30 s (their TTL is minutes), and on every new one.
    this.#sweep = setInterval(() => this.#pending.sweep(Date.now()), 30_000);
    this.#sweep.unref();
  }

  /**
   * Get a job's model ready before its first lease: into the model cache from a file this worker
   * can read (an embedded grid's workers share the coordinator's filesystem; the bytes are
   * hash-checked as if fetched), and its session loaded on every pool thread. Best effort: the
   * first lease fetches and loads whatever is missing.
   */
  async prefetch(modelHash: string, modelPath: string): Promise<void> {
    try {
      if (!this.#models.has(modelHash)) await this.#models.putVerified(modelHash, new Uint8Array(await readFile(modelPath)));
      await this.#pool.warm(modelHash, this.#models.path(modelHash));
    } catch (e) {
      this.#log.debug('model prefetch failed; the first lease will fetch it', { hash: modelHash.slice(0, 12), error: String(e) });
    }
  }

  /**
   * Register with a coordinator (peer id or multiaddr ending in /p2p/<peer id>) and start
   * claiming its units; it becomes one this worker serves.
   * @throws DrillError BAD_COORDINATOR when the address names no peer id or the peer answering
   *   claims another identity; request errors.
   */
  async join(coordinator: string): Promise<string> {
    const peer = coordinatorPeerId(coordinator);
    if (coordinator.startsWith('/')) await this.#node.dial(coordinator);
    const reply = helloAckCodec.decode(
      await this.#node.request(coordinator, PROTOCOL.hello, helloCodec.encode({
        threads: this.#opts.threads, device: this.#opts.device, score: this.#opts.score, profile: JSON.stringify(this.#pool.profile ?? {}),
      })),
    );
    if (reply.coordinator !== peer) throw new DrillError('BAD_COORDINATOR', `coordinator ${peer} answered hello as ${reply.coordinator.slice(0, 60)}`);
    this.#allowed.add(peer);
    const fsToken = this.#opts.sharedFs && reply.fsProbe ? await readFsProbe(reply.fsProbe, peer) : undefined;
    // The spool folder is the coordinator's word: kept only as an absolute, normalised path on a
    // filesystem we proved we share; every spool file a lease names must lie directly inside it.
    const spoolDir = fsToken && reply.spoolDir && isAbsolute(reply.spoolDir) && normalize(reply.spoolDir) === reply.spoolDir ? reply.spoolDir : undefined;
    this.#coordinators.set(peer, { maxInflight: reply.maxInflight, ...(fsToken ? { fsToken } : {}), ...(spoolDir ? { spoolDir } : {}) });
    this.#log.info('registered with coordinator', { coordinator: peer, maxInflight: reply.maxInflight, sharedFs: Boolean(fsToken) });
    this.events.emit('registered', peer);
    void this.#fill(peer);
    return peer;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#offPeer?.();
    if (this.#sweep) clearInterval(this.#sweep);
    await this.#node.unhandle(PROTOCOL.reveal).catch(() => undefined);
    this.#node.unsubscribe(UNITS_TOPIC.name);
    await this.#inputFiles.close();
  }

  /** Same-filesystem lease: each input's rows, read from the file the lease names once it passes lease-inputs.ts's checks. */
  async #readInputFiles(files: Record<string, InputFileRange>, rows: number): Promise<Record<string, HostTensor>> {
    const out: Record<string, HostTensor> = {};
    for (const [name, f] of Object.entries(files)) out[name] = await this.#inputFiles.read(name, f, rows);
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

  /** The model's path in the cache, fetched from `coordinator` when missing. The caller has pinned `hash`. */
  async #model(coordinator: string, hash: string, bytes: number): Promise<string> {
    if (this.#models.has(hash)) return this.#models.path(hash);
    let p = this.#fetching.get(hash);
    if (!p) {
      p = (async () => {
        this.#log.info('fetching model', { hash: hash.slice(0, 12), bytes });
        // The lease's size is the coordinator's claim: never above our own model limit.
        const data = await fetchBlob(this.#node, coordinator, hash, { maxBytes: Math.min(bytes, this.#opts.maxModelBytes) });
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
    let pinned = false;
    try {
      this.#models.pin(lease.modelHash); // throws for a malformed hash (then nothing is pinned)
      pinned = true;
      const modelPath = await this.#model(coordinator, lease.modelHash, lease.modelBytes);
      if (lease.inputFiles) {
        if (!this.#coordinators.get(coordinator)?.fsToken) throw new Error('lease names input files, but this worker did not agree to read them');
        inputs = await this.#readInputFiles(lease.inputFiles, lease.rows);
        this.#unitsFromFiles++;
      }
      const spoolPath = lease.resultSpool === undefined ? undefined : this.#spoolPath(coordinator, lease.resultSpool);
      const r = await this.#runOrCheat(lease, modelPath, inputs, spoolPath);
      const salt = randomBytes(32).toString('hex');
      const c = commitment(this.#node.peerId, lease.lease, salt, r.digest ?? resultDigest(r.outputs));
      const now = Date.now();
      this.#pending.sweep(now);
      const evicted = this.#pending.add(lease.lease, { coordinator, salt, outputs: r.outputs, ...(r.spooled ? { spooled: true as const } : {}) }, now);
      if (evicted.length) this.#log.warn('results waiting for reveals over their bounds; dropped the oldest', { evicted: evicted.length, pending: this.#pending.size, bytes: this.#pending.bytes });
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
      if (r.spooled) this.#unitsSpooled++;
      this.events.emit('unit', { lease: lease.lease, rows: lease.rows, runMs: r.runMs });
      const next = ack.next;
      if (next && !next.ok && next.reason === 'not-registered') this.#coordinators.delete(coordinator);
      return next?.ok && !this.#stopped ? { lease: next.lease, inputs: next.inputs } : null;
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      this.#log.warn('unit failed', { lease: lease.lease, error: message });
      // 'error' is special to EventEmitter (it throws without a listener): only emit when heard.
      if (this.events.listenerCount('error') > 0) this.events.emit('error', { lease: lease.lease, message });
      await this.#node.request(coordinator, PROTOCOL.error, unitErrorCodec.encode({ lease: lease.lease, message: message.slice(0, 4000) })).catch(() => undefined);
      return null;
    } finally {
      if (pinned) this.#models.unpin(lease.modelHash);
    }
  }

  /**
   * The spool file a lease names, once it is one we may write: the coordinator gave us its spool
   * folder at hello (on a filesystem we share) and the file is a spool name directly inside it.
   * @throws Error otherwise (the unit fails; the coordinator hears why).
   */
  #spoolPath(coordinator: string, path: string): string {
    const dir = this.#coordinators.get(coordinator)?.spoolDir;
    if (dir === undefined) throw new Error('lease names a result spool file, but this worker did not agree to write one');
    if (dirname(path) !== dir || !RESULT_SPOOL_NAME.test(basename(path))) {
      throw new Error(`lease resultSpool: expected a spool file name directly inside ${dir}, received ${JSON.stringify(path.slice(0, 300))}`);
    }
    return path;
  }

  readonly #stale = new StaleCache();

  /**
   * Run the unit — or, for a demo cheater, answer the way its mode says (cheat.ts). An honest
   * run with `spoolPath` writes its result there on the pool thread, digest included; a cheater
   * alters the tensors here and reveals them the ordinary way.
   */
  async #runOrCheat(lease: LeaseInfo, modelPath: string, inputs: Record<string, HostTensor>, spoolPath?: string): ReturnType<InferencePool['run']> {
    const mode = this.#opts.cheat;
    if (!mode) return this.#pool.run({ modelHash: lease.modelHash, modelPath, inputs, outputNames: lease.outputNames, digest: true, ...(spoolPath ? { spoolPath } : {}), ...(lease.rowAxes ? { rowAxes: lease.rowAxes } : {}) });
    if (mode === 'error') throw new Error(CHEAT_ERROR_MESSAGE);
    if (mode === 'stale') {
      const old = this.#stale.get(lease.job, lease.rows);
      if (old) return { outputs: old, spooled: false, runMs: 0, profile: this.#pool.profile ?? { device: 'cpu', ep: 'cpu', intraOpThreads: 1 } } as Awaited<ReturnType<InferencePool['run']>>;
    }
    const r = await this.#pool.run({ modelHash: lease.modelHash, modelPath, inputs, outputNames: lease.outputNames });
    if (mode === 'stale') this.#stale.put(lease.job, lease.rows, r.outputs);
    if (mode === 'corrupt') return { ...r, outputs: corrupt(r.outputs) };
    if (mode === 'noise') return { ...r, outputs: addNoise(r.outputs) };
    if (mode === 'lazy') return { ...r, outputs: zeros(r.outputs) };
    return r;
  }

  async #onReveal(req: Uint8Array, from: string): Promise<Uint8Array> {
    const { lease } = revealRequestCodec.decode(req);
    // Only the coordinator that leased the unit may see the result.
    const p = this.#pending.take(lease, from);
    if (!p) return encodeRevealReply({ ok: false, reason: 'no such result' });
    return encodeRevealReply(p.spooled ? { ok: true, salt: p.salt, spooled: true } : { ok: true, salt: p.salt, outputs: p.outputs });
  }
}

/**
 * The peer id a coordinator address names (the last /p2p/ component), or the peer id itself.
 * @throws DrillError BAD_COORDINATOR when a multiaddr names none.
 */
export function coordinatorPeerId(coordinator: string): string {
  if (!coordinator.startsWith('/')) return coordinator;
  const m = /\/p2p\/([^/]+)\/?$/.exec(coordinator);
  if (!m) throw new DrillError('BAD_COORDINATOR', `coordinator address: expected a multiaddr ending in /p2p/<peer id>, received ${JSON.stringify(coordinator.slice(0, 200))}`);
  return m[1]!;
}

/**
 * Read a coordinator's filesystem probe: the token, when the file is a small regular file naming
 * `peer` (the coordinator we are talking to) — a peer that relays another coordinator's probe
 * path gets nothing. Opened non-blocking and size-checked (the path is the coordinator's word:
 * it could name a FIFO or /dev/zero).
 */
async function readFsProbe(path: string, peer: string): Promise<string | undefined> {
  let fh;
  try {
    fh = await open(path, fsc.O_RDONLY | fsc.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.size > FS_PROBE_MAX_BYTES) return undefined;
    const buf = new Uint8Array(st.size);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    const probe = parseFsProbe(new TextDecoder().decode(buf.subarray(0, bytesRead)));
    return probe && probe.coordinator === peer ? probe.token : undefined;
  } catch {
    return undefined;
  } finally {
    await fh.close().catch(() => undefined);
  }
}
