/**
 * ChainService: the block-producing, block-validating node service (the I/O shell around the
 * pure chain core). Given a DrillNode, its identity key and the genesis it:
 *  - rebuilds its ChainState from the SQLite block store (resuming where it stopped);
 *  - validates gossiped blocks inside the gossipsub validator (BlockError codes → verdicts via
 *    the net layer's registry), imports valid ones, and for a block whose parent is unknown
 *    holds it and fetches the parent over `/matrix-drill/block/1` (recursively, bounded);
 *  - keeps a bounded mempool of valid credit records from `matrix-drill/credits/1`;
 *  - at every slot runs the VRF lottery and, when it wins, builds, signs, imports and
 *    publishes a block carrying the pending credit records;
 *  - emits `block`, `head`, `reorg` and `slot` events.
 * A slot nobody wins stays empty: the next winner builds on the head, whatever its slot.
 */
import { EventEmitter } from 'node:events';
import type { PrivateKey } from '@libp2p/interface';
import type { DrillNode } from '../net/node.ts';
import { verifyCreditRecord, creditRecordId } from '../pod/credit.ts';
import type { CreditRecord } from '../pod/credit.ts';
import { DrillError, isDrillError } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';
import { silentLogger } from '../util/log.ts';
import type { Block } from './block.ts';
import { blockHash, shortId } from './block.ts';
import { BlockError, BlockErrorCode, ChainErrorCode, chainError, CreditGossipErrorCode, FaultGossipErrorCode } from './errors.ts';
import { chainFaultId, chainFaultInvalid, makeEquivocation } from './faults.ts';
import type { ChainFault } from './faults.ts';
import { producerPublicKey, verifyHeaderSignature } from './header.ts';
import { epochOfSlot, slotAt, slotStartTime } from './epoch.ts';
import type { GenesisConfig } from './genesis.ts';
import { checkGenesis, genesisHash } from './genesis.ts';
import { producerKeyFromPrivateKey, tryProduce } from './produce.ts';
import type { ProducerKey } from './produce.ts';
import type { ChainState, Reorg } from './state.ts';
import { BlockStore, loadChainState } from './store.ts';
import { BLOCK_REQUEST_PROTOCOL, blocksTopic, creditsTopic, faultsTopic, decodeBlock, encodeBlock, registerChainVerdicts, BLOCKS_TOPIC_NAME, CREDITS_TOPIC_NAME, FAULTS_TOPIC_NAME } from './topics.ts';
import type { ValidatedBlock } from './validate.ts';
import { validateBlock } from './validate.ts';

/** Parent fetches in flight at once: catching up is sequential (one ancestor at a time per
 * branch), so 16 covers many concurrent branches while junk cannot fan out unboundedly. */
const MAX_CONCURRENT_FETCHES = 16;
/** Peers asked for one missing block: the originator plus two others. */
const FETCH_PEERS = 3;

export interface Clock {
  /** ms since the Unix epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export interface ChainServiceOptions {
  /** SQLite file of the block store; ':memory:' keeps nothing across restarts. */
  storePath?: string;
  /** Take part in the lottery and produce blocks (false: validate and follow only). */
  produce?: boolean;
  /** Produce only in slots < untilSlot (devnet runs a fixed number of slots). */
  untilSlot?: number;
  /** Pending credit records kept for inclusion; the oldest is dropped beyond it. */
  maxPendingCredits?: number;
  /** Blocks held while their parent is fetched; the oldest is dropped beyond it. */
  maxOrphanBlocks?: number;
  /** Orphans held per producer (a producer flooding blocks with made-up parents evicts only its own). */
  maxOrphansPerProducer?: number;
  /** Pending faults (fault records, equivocation evidence) kept for inclusion. */
  maxPendingFaults?: number;
  /** Slots for which the first block of each producer is remembered (to catch equivocation). */
  equivocationWindowSlots?: number;
  /** Most ancestors fetched back from one unknown-parent block. */
  maxFetchDepth?: number;
  /** Timeout of one block request. */
  fetchTimeoutMs?: number;
}

export const defaultChainServiceOptions = {
  storePath: ':memory:',
  produce: true,
  untilSlot: Number.POSITIVE_INFINITY,
  /** 8 blocks' worth at the default 512 records per block: a burst of PoD results waits at
   * most a few slots; beyond that coordinators re-publish. */
  maxPendingCredits: 4096,
  /** Orphans are rare on a connected mesh; 256 covers a node catching up a few minutes. */
  maxOrphanBlocks: 256,
  /** An honest producer has at most a few blocks in flight while a peer catches up. */
  maxOrphansPerProducer: 8,
  /** Faults are rare (a caught cheater per job, an equivocation); 1,024 is ample. */
  maxPendingFaults: 1024,
  /** 1,024 slots (~34 min at 2 s): a second block for an older slot cannot build on a recent
   * head anyway (slots must grow along a branch), so older slots need no memory. */
  equivocationWindowSlots: 1024,
  /** 1,024 ancestors ≈ an hour of blocks at c = 1/4 and 2 s slots; longer gaps need a real
   * sync protocol (see docs/CHAIN.md). */
  maxFetchDepth: 1024,
  /** Loopback/LAN answers in ms; 5 s tolerates a busy peer. */
  fetchTimeoutMs: 5000,
} as const;

export interface ChainServiceDeps {
  node: DrillNode;
  genesis: GenesisConfig;
  /** Producer identity; default the node's own libp2p key. */
  privateKey?: PrivateKey;
  clock?: Clock;
  logger?: Logger;
}

export interface BlockEvent {
  hash: string;
  height: number;
  slot: number;
  epoch: number;
  producer: string;
  credits: number;
  /** Produced by this node. */
  own: boolean;
}

export interface HeadEvent {
  hash: string;
  height: number;
  slot: number;
}

export interface SlotEvent {
  slot: number;
  /** This node won the slot and produced a block. */
  produced: boolean;
}

export interface ChainEvents {
  block: [BlockEvent];
  head: [HeadEvent];
  reorg: [Reorg];
  slot: [SlotEvent];
}

export interface ChainStatus {
  peer: string;
  head: string;
  height: number;
  slot: number;
  /** Canonical blocks produced by this node. */
  blocksProduced: number;
  /** This node's lottery weight / total in the current epoch's snapshot on the head. */
  weightShare: number;
  reorgs: number;
  /** Known blocks off the canonical chain. */
  orphans: number;
  pendingCredits: number;
  pendingFaults: number;
}

export class ChainService extends EventEmitter<ChainEvents> {
  readonly #node: DrillNode;
  readonly #genesis: GenesisConfig;
  readonly #key: ProducerKey;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #opts: Required<ChainServiceOptions>;
  #store: BlockStore | null = null;
  #state: ChainState | null = null;
  #timer: NodeJS.Timeout | null = null;
  #running = false;
  readonly #mempool = new Map<string, CreditRecord>();
  readonly #orphans = new Map<string, { block: Block; from: string }>(); // by block hash
  readonly #fetching = new Set<string>();
  readonly #faultPool = new Map<string, ChainFault>();
  /** The first validly signed block each producer made for a slot: `producer slot` → header + sig. */
  readonly #firstOfSlot = new Map<string, { hash: string; header: Block['header']; sig: string }>();

  constructor(deps: ChainServiceDeps, opts: ChainServiceOptions = {}) {
    super();
    this.#node = deps.node;
    this.#genesis = deps.genesis;
    this.#key = producerKeyFromPrivateKey(deps.privateKey ?? deps.node.privateKey);
    this.#clock = deps.clock ?? systemClock;
    this.#log = (deps.logger ?? silentLogger).child('chain');
    this.#opts = { ...defaultChainServiceOptions, ...opts };
  }

  /** The chain state (valid after start()). @throws DrillError CHAIN_BAD_STATE before start. */
  get state(): ChainState {
    if (!this.#state) throw chainError(ChainErrorCode.BAD_STATE, 'ChainService: not started');
    return this.#state;
  }

  get peerId(): string {
    return this.#key.peerId;
  }

  /**
   * Open the store, rebuild state, subscribe, serve blocks, start the slot clock.
   * @throws DrillError CHAIN_BAD_GENESIS, CHAIN_STORE_GENESIS_MISMATCH, CHAIN_STORE_CORRUPT, CHAIN_BAD_STATE.
   */
  async start(): Promise<void> {
    if (this.#running) throw chainError(ChainErrorCode.BAD_STATE, 'ChainService: already started');
    registerChainVerdicts();
    checkGenesis(this.#genesis);
    this.#store = new BlockStore(this.#opts.storePath, genesisHash(this.#genesis));
    try {
      this.#state = loadChainState(this.#genesis, this.#store);
    } catch (e) {
      this.#store.close();
      this.#store = null;
      throw e;
    }
    this.#running = true;
    const head = this.#state.head;
    this.#log.info('chain started', { peer: this.#key.peerId, head: head.hash, height: head.height, blocks: this.#state.size - 1 });
    this.#node.subscribe(blocksTopic((b, from) => this.#onGossipBlock(b, from)), () => {});
    this.#node.subscribe(creditsTopic((r) => this.#onGossipCredit(r)), () => {});
    this.#node.subscribe(faultsTopic((f) => this.#onGossipFault(f)), () => {});
    await this.#node.handle(BLOCK_REQUEST_PROTOCOL, async (req) => this.#serveBlock(req));
    this.#scheduleNextSlot();
  }

  /** Stop the slot clock, leave the topics, close the store. Idempotent. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    try {
      this.#node.unsubscribe(BLOCKS_TOPIC_NAME);
      this.#node.unsubscribe(CREDITS_TOPIC_NAME);
      this.#node.unsubscribe(FAULTS_TOPIC_NAME);
      await this.#node.unhandle(BLOCK_REQUEST_PROTOCOL);
    } catch (e) {
      this.#log.debug('unsubscribe on stop failed', { err: (e as Error).message }); // node may be stopped already
    }
    this.#store?.close();
    this.#store = null;
  }

  /** Summary for the devnet report and the demo. */
  status(): ChainStatus {
    const s = this.state;
    const head = s.head;
    const slot = Math.max(slotAt(this.#genesis, this.#clock.now()), head.slot, 0);
    const snap = s.epochSnapshot(head.hash, epochOfSlot(this.#genesis, slot));
    const mine = snap.weights.get(this.#key.peerId) ?? 0n;
    let produced = 0;
    for (const h of s.canonicalChain()) if (s.getNode(h)!.producer === this.#key.peerId) produced++;
    return {
      peer: this.#key.peerId,
      head: head.hash,
      height: head.height,
      slot: head.slot,
      blocksProduced: produced,
      weightShare: Number((mine * 1_000_000n) / snap.total) / 1_000_000,
      reorgs: s.reorgCount,
      orphans: s.orphanCount(),
      pendingCredits: this.#mempool.size,
      pendingFaults: this.#faultPool.size,
    };
  }

  /**
   * Add a credit record from a local coordinator (validated like a gossiped one) and publish
   * it so other producers can include it too.
   * @throws DrillError CREDIT_* when the record is invalid or already known.
   */
  async submitCredit(record: CreditRecord): Promise<void> {
    this.#admitCredit(record);
    await this.#node.publish(creditsTopic(), record);
  }

  /**
   * Add a fault (a local coordinator's fault record) for inclusion and publish it to the other
   * producers.
   * @throws DrillError FAULT_* when it is invalid or already known.
   */
  async submitFault(fault: ChainFault): Promise<void> {
    this.#admitFault(fault);
    await this.#node.publish(faultsTopic(), fault);
  }

  /** Faults waiting for a block. */
  pendingFaults(): ChainFault[] {
    return [...this.#faultPool.values()];
  }

  // --- slots -----------------------------------------------------------------------------------

  /**
   * Arm the timer for slot `slot` (default: the next one). A timer that fires late runs the slot
   * that is current by then (a past slot's block would only fork the next slot's); a slot is
   * never skipped just because the previous one ran long.
   */
  #scheduleNextSlot(slot: number = slotAt(this.#genesis, this.#clock.now()) + 1): void {
    if (!this.#running) return;
    const delay = Math.max(0, slotStartTime(this.#genesis, slot) - this.#clock.now());
    this.#timer = setTimeout(() => {
      this.#timer = null;
      const current = Math.max(slot, slotAt(this.#genesis, this.#clock.now()));
      this.#onSlot(current);
      this.#scheduleNextSlot(current + 1);
    }, delay);
  }

  #onSlot(slot: number): void {
    if (!this.#running || slot < 0) return;
    let produced = false;
    if (this.#opts.produce && slot < this.#opts.untilSlot) {
      try {
        const block = tryProduce(this.state, this.#key, slot, this.#mempool.values(), this.#faultPool.values());
        if (block) {
          const v = validateBlock(this.state, block, this.#clock.now()); // our own block must pass our rules
          this.#import(v, true);
          produced = true;
          this.#node.publish(blocksTopic(), block).catch((e: unknown) => this.#log.warn('block publish failed', { err: (e as Error).message }));
        }
      } catch (e) {
        this.#log.error('block production failed', { slot, err: (e as Error).message, code: isDrillError(e) ? e.code : undefined });
      }
    }
    this.emit('slot', { slot, produced });
  }

  // --- blocks ----------------------------------------------------------------------------------

  /**
   * [REJECT] A producer's second, different block for one slot: keep the evidence (it goes into
   * a block, and the ledger bans the producer's weight), refuse the block. Only called for
   * blocks whose producer signature verified.
   */
  #checkEquivocation(block: Block, hash: string): void {
    const h = block.header;
    const key = `${h.producer} ${h.slot}`;
    const first = this.#firstOfSlot.get(key);
    if (!first) {
      this.#firstOfSlot.set(key, { hash, header: h, sig: block.sig });
      this.#pruneFirstOfSlot(h.slot);
      return;
    }
    if (first.hash === hash) return;
    const ev = makeEquivocation({ header: first.header, sig: first.sig }, { header: h, sig: block.sig });
    try {
      this.#admitFault(ev);
      this.#node.publish(faultsTopic(), ev).catch((e: unknown) => this.#log.debug('equivocation publish failed', { err: (e as Error).message }));
      this.#log.warn('equivocation: a producer made two blocks for one slot; evidence kept for a block', { producer: shortId(h.producer), slot: h.slot });
    } catch (e) {
      if (!isDrillError(e, FaultGossipErrorCode.ALREADY_KNOWN)) this.#log.debug('equivocation evidence not admitted', { err: (e as Error).message });
    }
    throw new BlockError(BlockErrorCode.EQUIVOCATION, 'header.slot', `producer ${h.producer} already made block ${first.hash} for slot ${h.slot}`, { producer: h.producer, slot: h.slot });
  }

  #pruneFirstOfSlot(slot: number): void {
    if (this.#firstOfSlot.size <= 4 * this.#opts.equivocationWindowSlots) return;
    const floor = slot - this.#opts.equivocationWindowSlots;
    for (const [k, v] of this.#firstOfSlot) if (v.header.slot < floor) this.#firstOfSlot.delete(k);
  }

  #import(v: ValidatedBlock, own: boolean): void {
    const s = this.state;
    this.#checkEquivocation(v.block, v.hash);
    this.#store?.put(v.hash, v.block);
    const r = s.add(v.block, v.hash);
    const h = v.block.header;
    this.#log.info(`block #${h.height} by ${shortId(h.producer)} (slot ${h.slot}, ${h.creditCount} credit records)`, { hash: shortId(v.hash), own });
    this.emit('block', { hash: v.hash, height: h.height, slot: h.slot, epoch: v.epoch, producer: h.producer, credits: h.creditCount, own });
    if (r.reorg) {
      this.#log.info('reorg', { from: shortId(r.reorg.from), to: shortId(r.reorg.to), depth: r.reorg.depth });
      this.#returnOrphanedCredits(r.reorg);
      this.emit('reorg', r.reorg);
    }
    if (r.headChanged) {
      this.#store?.setHead(r.head.hash);
      this.#pruneMempool();
      this.#pruneFaultPool();
      this.emit('head', { hash: r.head.hash, height: r.head.height, slot: r.head.slot });
    }
    // Children that were waiting for this block.
    for (const [hash, o] of [...this.#orphans]) {
      if (o.block.header.parent !== v.hash) continue;
      this.#orphans.delete(hash);
      this.#tryImport(o.block, o.from);
    }
  }

  /** Validate + import a block obtained outside gossip (fetched parent, held orphan). */
  #tryImport(block: Block, from: string): void {
    try {
      this.#import(validateBlock(this.state, block, this.#clock.now()), false);
    } catch (e) {
      if (isDrillError(e, BlockErrorCode.PARENT_UNKNOWN)) this.#holdOrphan(block, from, 0);
      else if (!isDrillError(e, BlockErrorCode.ALREADY_KNOWN)) this.#log.debug('held block invalid', { code: isDrillError(e) ? e.code : undefined, err: (e as Error).message });
    }
  }

  #onGossipBlock(block: Block, from: string): 'accept' | 'ignore' {
    if (!this.#running) return 'ignore';
    try {
      this.#import(validateBlock(this.state, block, this.#clock.now()), false);
      return 'accept';
    } catch (e) {
      if (isDrillError(e, BlockErrorCode.PARENT_UNKNOWN)) this.#holdOrphan(block, from, 0);
      if (e instanceof BlockError) throw e; // mapped to a verdict by the net layer's registry
      // Our own failure (a bug, a store error): never penalise the sender for it.
      this.#log.error('block import failed', { err: (e as Error).message });
      return 'ignore';
    }
  }

  #holdOrphan(block: Block, from: string, depth: number): void {
    const hash = blockHash(block.header);
    if (this.#orphans.has(hash)) return;
    // Only blocks their producer really signed are held (and may then prove an equivocation).
    const pk = producerPublicKey(block.header.producer);
    if (!pk || !verifyHeaderSignature(block.header, block.sig, pk)) return;
    try {
      this.#checkEquivocation(block, hash);
    } catch {
      return; // evidence kept; the second block is not held
    }
    this.#keepOrphan(hash, block, from);
    this.#fetchParent(block.header.parent, from, depth).catch((e: unknown) => this.#log.warn('parent fetch failed', { err: (e as Error).message }));
  }

  #keepOrphan(hash: string, block: Block, from: string): void {
    const producer = block.header.producer;
    const mine = [...this.#orphans].filter(([, o]) => o.block.header.producer === producer);
    if (mine.length >= this.#opts.maxOrphansPerProducer) this.#orphans.delete(mine[0]![0]);
    else if (this.#orphans.size >= this.#opts.maxOrphanBlocks) this.#orphans.delete(this.#orphans.keys().next().value!);
    this.#orphans.set(hash, { block, from });
  }

  async #fetchParent(parent: string, from: string, depth: number): Promise<void> {
    if (this.#fetching.has(parent) || depth >= this.#opts.maxFetchDepth || !this.#running) return;
    // Bound the work a flood of junk blocks with made-up parents can cause us (and our peers).
    if (this.#fetching.size >= MAX_CONCURRENT_FETCHES) return;
    this.#fetching.add(parent);
    try {
      // The originator first (it built on that parent), then a few other peers.
      const others = this.#node.peers().filter((p) => p !== from);
      const candidates = [from, ...others.slice(0, FETCH_PEERS - 1)].filter((p) => p && p !== this.#node.peerId);
      for (const peer of candidates) {
        let block: Block;
        try {
          const bytes = await this.#node.request(peer, BLOCK_REQUEST_PROTOCOL, new TextEncoder().encode(parent), { timeoutMs: this.#opts.fetchTimeoutMs, maxResponseBytes: 2 * 1024 * 1024 });
          block = decodeBlock(bytes);
        } catch (e) {
          this.#log.debug('parent fetch failed', { peer, parent: shortId(parent), err: (e as Error).message });
          continue;
        }
        if (blockHash(block.header) !== parent) continue; // wrong block: try another peer
        if (!this.#running || this.state.has(parent)) return;
        try {
          this.#import(validateBlock(this.state, block, this.#clock.now()), false);
        } catch (e) {
          if (isDrillError(e, BlockErrorCode.PARENT_UNKNOWN)) {
            this.#keepOrphan(parent, block, peer);
            this.#fetching.delete(parent);
            await this.#fetchParent(block.header.parent, peer, depth + 1);
          } else this.#log.debug('fetched parent invalid', { parent: shortId(parent), code: isDrillError(e) ? e.code : undefined });
        }
        return;
      }
    } finally {
      this.#fetching.delete(parent);
    }
  }

  async #serveBlock(req: Uint8Array): Promise<Uint8Array> {
    const hash = new TextDecoder().decode(req);
    if (!/^[0-9a-f]{64}$/.test(hash)) throw new DrillError('BLOCK_REQUEST_BAD', `request: expected a 64-char lowercase hex block hash, received ${req.length} bytes`);
    const n = this.#state?.getNode(hash);
    if (!n?.block) throw new DrillError('BLOCK_NOT_FOUND', `block ${hash} is not known here`);
    return encodeBlock(n.block);
  }

  // --- credit records --------------------------------------------------------------------------

  #onGossipCredit(r: CreditRecord): 'accept' {
    this.#admitCredit(r);
    return 'accept';
  }

  #admitCredit(r: CreditRecord): void {
    const s = this.state;
    // [IGNORE] The coordinator is authorised by our genesis.
    if (!this.#genesis.coordinators.includes(r.coordinator)) {
      throw new DrillError(CreditGossipErrorCode.UNKNOWN_COORDINATOR, `coordinator: expected one of the genesis coordinators, received ${r.coordinator}`);
    }
    // [IGNORE] Not already pending or on the canonical chain.
    const id = creditRecordId(r);
    if (this.#mempool.has(id) || s.replayedCredit(s.head.hash, [id]) !== null) {
      throw new DrillError(CreditGossipErrorCode.ALREADY_KNOWN, `record ${id} is already pending or included`);
    }
    // [REJECT] The coordinator signed it.
    if (!verifyCreditRecord(r)) throw new DrillError(CreditGossipErrorCode.BAD_SIGNATURE, 'sig: not a valid coordinator signature');
    if (this.#mempool.size >= this.#opts.maxPendingCredits) this.#mempool.delete(this.#mempool.keys().next().value!);
    this.#mempool.set(id, r);
  }

  #onGossipFault(f: ChainFault): 'accept' {
    this.#admitFault(f);
    return 'accept';
  }

  #admitFault(f: ChainFault): void {
    const s = this.state;
    const g = this.#genesis;
    // [IGNORE] A fault record from a coordinator our genesis authorises.
    if (f.kind === 'pod' && !g.coordinators.includes(f.coordinator)) {
      throw new DrillError(FaultGossipErrorCode.UNKNOWN_COORDINATOR, `coordinator: expected one of the genesis coordinators, received ${f.coordinator}`);
    }
    // [IGNORE] Not already pending or on the canonical chain.
    const id = chainFaultId(f);
    if (this.#faultPool.has(id) || s.replayedCredit(s.head.hash, [id]) !== null) {
      throw new DrillError(FaultGossipErrorCode.ALREADY_KNOWN, `fault ${id} is already pending or included`);
    }
    // [REJECT] The proof holds (coordinator signature; two signed headers of one slot).
    const why = chainFaultInvalid(f, g);
    if (why !== null) throw new DrillError(FaultGossipErrorCode.INVALID, why);
    if (this.#faultPool.size >= this.#opts.maxPendingFaults) this.#faultPool.delete(this.#faultPool.keys().next().value!);
    this.#faultPool.set(id, f);
  }

  #pruneFaultPool(): void {
    const s = this.state;
    for (const id of [...this.#faultPool.keys()]) if (s.replayedCredit(s.head.hash, [id]) !== null) this.#faultPool.delete(id);
  }

  #pruneMempool(): void {
    const s = this.state;
    for (const id of [...this.#mempool.keys()]) if (s.replayedCredit(s.head.hash, [id]) !== null) this.#mempool.delete(id);
  }

  /**
   * Put the records of blocks a reorg abandoned back into the mempool and re-publish them:
   * peers that never saw them (e.g. across a healed partition) can then include them too.
   * Records the new branch already carries are pruned right after (#pruneMempool).
   */
  #returnOrphanedCredits(reorg: Reorg): void {
    const s = this.state;
    const returned: CreditRecord[] = [];
    for (let n = s.getNode(reorg.from); n && n.hash !== reorg.ancestor && n.block; n = s.getNode(n.parent!)) {
      for (const f of n.block.faults) {
        const id = chainFaultId(f);
        if (this.#faultPool.has(id) || this.#faultPool.size >= this.#opts.maxPendingFaults) continue;
        if (s.replayedCredit(s.head.hash, [id]) === null) this.#faultPool.set(id, f);
      }
      for (const r of n.block.credits) {
        const id = creditRecordId(r);
        if (this.#mempool.has(id) || this.#mempool.size >= this.#opts.maxPendingCredits) continue;
        if (s.replayedCredit(s.head.hash, [id]) !== null) continue; // the new branch has it
        this.#mempool.set(id, r);
        returned.push(r);
      }
    }
    const topic = creditsTopic();
    for (const r of returned) this.#node.publish(topic, r).catch((e: unknown) => this.#log.debug('credit re-publish failed', { err: (e as Error).message }));
  }
}
