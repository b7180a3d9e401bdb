/**
 * Chain state: the block tree of every valid block seen, the fork-choice head, and the credit
 * ledger of the canonical chain (genesis → head), bucketed by epoch so that a reorg reverts
 * the abandoned branch's records and applies the new branch's exactly. Pure and in memory;
 * the store (store.ts) persists blocks and rebuilds this by replaying them.
 *
 * Per-branch queries (epoch snapshot, epoch randomness, credit replay) answer for the branch
 * ending at any known block, canonical or not, so a competing fork is validated against its
 * own history, not the current head's.
 */
import { CreditLedger } from '../pod/ledger.ts';
import { creditRecordId } from '../pod/credit.ts';
import { hexToBytes } from '../util/bytes.ts';
import type { Block } from './block.ts';
import { blockHash } from './block.ts';
import type { GenesisConfig } from './genesis.ts';
import { checkGenesis, faultEpochsOf, genesisHash, GENESIS_BUCKET } from './genesis.ts';
import { chainFaultId, faultTarget } from './faults.ts';
import { epochOfSlot, nextEpochRandomness, snapshotBucket, windowStartBucket } from './epoch.ts';
import { compareHeads } from './forkchoice.ts';
import type { ForkChoiceNode } from './forkchoice.ts';

export interface BlockNode extends ForkChoiceNode {
  /** Parent hash; null for genesis. */
  parent: string | null;
  height: number;
  /** Slot; −1 for genesis. */
  slot: number;
  /** Epoch of the slot; GENESIS_BUCKET (−1) for genesis. */
  epoch: number;
  /** Producer peer id; '' for genesis. */
  producer: string;
  /** The block; null for genesis. */
  block: Block | null;
  /** Ids (creditRecordId) of the credit records this block carries (genesis: the allocations). */
  creditIds: string[];
  /** Ids (chainFaultId) of the faults this block carries. */
  faultIds: string[];
}

export interface EpochSnapshot {
  epoch: number;
  /** 32-byte epoch randomness. */
  randomness: Uint8Array;
  /** Lottery weights (credited FLOPs) per worker peer id. */
  weights: ReadonlyMap<string, bigint>;
  /** Sum of weights (> 0 by genesis construction). */
  total: bigint;
}

export interface Reorg {
  /** Previous head. */
  from: string;
  /** New head. */
  to: string;
  /** Common ancestor. */
  ancestor: string;
  /** Blocks removed from the canonical chain. */
  depth: number;
}

export interface AddResult {
  node: BlockNode;
  /** The head after adding (changed when `headChanged`). */
  head: BlockNode;
  headChanged: boolean;
  /** Set when the old head is not an ancestor of the new one. */
  reorg?: Reorg;
}

/**
 * Memo caps: a few branches × a few epochs are live; the caps only bound pathological trees.
 * Eviction drops the OLDEST entries, so the recent epochs that r(e) = f(r(e − 2), …) recurses
 * into stay cached and the recursion stays one or two levels deep.
 */
const SNAPSHOT_MEMO_MAX = 1024;

function memoSet<V>(m: Map<string, V>, key: string, v: V): void {
  if (m.size >= SNAPSHOT_MEMO_MAX) m.delete(m.keys().next().value!);
  m.set(key, v);
}

export class ChainState {
  readonly genesis: GenesisConfig;
  readonly genesisHash: string;
  /** Credit of the canonical chain, bucket = epoch of the including block (genesis: −1). */
  readonly ledger = new CreditLedger();
  readonly #nodes = new Map<string, BlockNode>();
  /** Canonical chain by height. */
  readonly #canonical: string[] = [];
  /** creditRecordId → height of the canonical block including it. */
  readonly #canonicalCredits = new Map<string, number>();
  readonly #weightMemo = new Map<string, { weights: Map<string, bigint>; total: bigint }>();
  readonly #randomMemo = new Map<string, Uint8Array>();
  #head: BlockNode;
  #reorgs = 0;

  /** @throws DrillError CHAIN_BAD_GENESIS when the genesis config is invalid. */
  constructor(genesis: GenesisConfig) {
    checkGenesis(genesis);
    this.genesis = genesis;
    this.genesisHash = genesisHash(genesis);
    const g: BlockNode = {
      hash: this.genesisHash,
      parent: null,
      height: 0,
      slot: -1,
      epoch: GENESIS_BUCKET,
      producer: '',
      block: null,
      creditIds: genesis.credits.map(creditRecordId),
      faultIds: [],
      primaryCount: 0,
      vrfOutput: '',
    };
    this.#nodes.set(g.hash, g);
    this.#canonical.push(g.hash);
    for (const r of genesis.credits) this.ledger.apply(r, GENESIS_BUCKET);
    for (const id of g.creditIds) this.#canonicalCredits.set(id, 0);
    this.#head = g;
  }

  get head(): BlockNode {
    return this.#head;
  }

  /** Number of reorgs since construction. */
  get reorgCount(): number {
    return this.#reorgs;
  }

  get size(): number {
    return this.#nodes.size;
  }

  getNode(hash: string): BlockNode | undefined {
    return this.#nodes.get(hash);
  }

  has(hash: string): boolean {
    return this.#nodes.has(hash);
  }

  /** All known nodes (any order). */
  nodes(): IterableIterator<BlockNode> {
    return this.#nodes.values();
  }

  isCanonical(hash: string): boolean {
    const n = this.#nodes.get(hash);
    return n !== undefined && this.#canonical[n.height] === hash;
  }

  /** Canonical block hashes, genesis first. */
  canonicalChain(): readonly string[] {
    return this.#canonical;
  }

  /** Latest ancestor of `from` (inclusive) whose epoch ≤ `epoch` (genesis qualifies always). */
  #ancestorAtOrBefore(from: BlockNode, epoch: number): BlockNode {
    let n = from;
    while (n.epoch > epoch && n.parent !== null) n = this.#nodes.get(n.parent)!;
    return n;
  }

  /**
   * The lottery snapshot for `epoch` on the branch ending at `parentHash` (the block a new
   * block of that epoch would build on).
   * @throws Error when parentHash is unknown (caller misuse: validate checks the parent first).
   */
  epochSnapshot(parentHash: string, epoch: number): EpochSnapshot {
    const parent = this.#nodes.get(parentHash);
    if (!parent) throw new Error(`epochSnapshot: unknown parent ${parentHash}`);
    const { weights, total } = this.#weights(parent, snapshotBucket(this.genesis, epoch), windowStartBucket(this.genesis, epoch));
    return { epoch, randomness: this.#randomness(parent, epoch), weights, total };
  }

  /** Weights = credit of buckets [from, bucket] on the branch of `node`, plus genesis. */
  #weights(node: BlockNode, bucket: number, from: number): { weights: Map<string, bigint>; total: bigint } {
    const anchor = this.#ancestorAtOrBefore(node, bucket);
    const key = `${bucket}:${from}:${anchor.hash}`;
    const hit = this.#weightMemo.get(key);
    if (hit) return hit;
    let ledger: CreditLedger;
    const next = this.#canonical[anchor.height + 1];
    if (this.isCanonical(anchor.hash) && (next === undefined || this.#nodes.get(next)!.epoch > bucket)) {
      // Fast path: the canonical ledger's buckets ≤ `bucket` hold exactly this branch's credit.
      ledger = this.ledger;
    } else {
      // A non-canonical branch: replay its history (down to `from`) into a scratch ledger.
      // Faults forfeit credit of earlier blocks and ban by bucket, so the branch is replayed
      // whole, oldest first (bans reach back faultEpochs buckets; credit back to the window).
      ledger = new CreditLedger();
      for (const r of this.genesis.credits) ledger.apply(r, GENESIS_BUCKET);
      const branch: BlockNode[] = [];
      for (let n: BlockNode = anchor; n.block !== null; n = this.#nodes.get(n.parent!)!) branch.push(n);
      for (const n of branch.reverse()) this.#applyBlock(ledger, n);
    }
    const weights = ledger.weights(Math.max(from, GENESIS_BUCKET), bucket);
    if (from > GENESIS_BUCKET) {
      // The window has moved past genesis: the allocations still count.
      for (const [w, c] of ledger.weights(GENESIS_BUCKET, GENESIS_BUCKET)) weights.set(w, (weights.get(w) ?? 0n) + c);
    }
    // A fault bans the worker's weight for faultEpochs snapshot buckets (allocations included).
    for (const w of ledger.bannedAt(bucket)) weights.delete(w);
    let total = 0n;
    for (const w of weights.values()) total += w;
    const out = { weights, total };
    memoSet(this.#weightMemo, key, out);
    return out;
  }

  #randomness(from: BlockNode, epoch: number): Uint8Array {
    if (epoch < 2) return hexToBytes(this.genesis.randomness, 'genesis.randomness');
    const anchor = this.#ancestorAtOrBefore(from, epoch - 2);
    const key = `${epoch}:${anchor.hash}`;
    const hit = this.#randomMemo.get(key);
    if (hit) return hit;
    const outputs: Uint8Array[] = [];
    let n = anchor;
    while (n.epoch === epoch - 2 && n.block !== null) {
      outputs.push(hexToBytes(n.vrfOutput));
      n = this.#nodes.get(n.parent!)!;
    }
    outputs.reverse();
    const r = nextEpochRandomness(this.#randomness(anchor, epoch - 2), epoch, outputs);
    memoSet(this.#randomMemo, key, r);
    return r;
  }

  /** Apply a block's credit records, then its faults, to a ledger (bucket = the block's epoch). */
  #applyBlock(ledger: CreditLedger, n: BlockNode): void {
    const ban = faultEpochsOf(this.genesis);
    for (const r of n.block!.credits) ledger.apply(r, n.epoch);
    for (const f of n.block!.faults) ledger.applyFault(faultTarget(f), n.epoch, ban);
  }

  /** Exactly undo #applyBlock (faults first, newest first, then credits). */
  #revertBlock(ledger: CreditLedger, n: BlockNode): void {
    const ban = faultEpochsOf(this.genesis);
    for (const f of [...n.block!.faults].reverse()) ledger.revertFault(faultTarget(f), n.epoch, ban);
    for (const r of [...n.block!.credits].reverse()) ledger.revert(r, n.epoch);
  }

  /**
   * The first of `ids` (credit record or fault ids) already included on the branch ending at
   * `parentHash` (genesis allocations included), or null when none is.
   */
  replayedCredit(parentHash: string, ids: readonly string[]): string | null {
    let n = this.#nodes.get(parentHash);
    if (!n) throw new Error(`replayedCredit: unknown parent ${parentHash}`);
    // Collect ids of the branch's non-canonical blocks down to the fork point.
    const offBranch = new Set<string>();
    while (!this.isCanonical(n.hash)) {
      for (const id of n.creditIds) offBranch.add(id);
      for (const id of n.faultIds) offBranch.add(id);
      n = this.#nodes.get(n.parent!)!;
    }
    const forkHeight = n.height;
    for (const id of ids) {
      if (offBranch.has(id)) return id;
      const h = this.#canonicalCredits.get(id);
      if (h !== undefined && h <= forkHeight) return id;
    }
    return null;
  }

  /**
   * Add a block that passed validation (or comes from our own store), run fork choice and
   * move the canonical ledger when the head changes. Idempotent for a known block.
   * @throws Error when the parent is unknown (caller misuse).
   */
  add(block: Block, hash: string = blockHash(block.header)): AddResult {
    const known = this.#nodes.get(hash);
    if (known) return { node: known, head: this.#head, headChanged: false };
    const parent = this.#nodes.get(block.header.parent);
    if (!parent) throw new Error(`ChainState.add: unknown parent ${block.header.parent}`);
    const node: BlockNode = {
      hash,
      parent: parent.hash,
      height: parent.height + 1,
      slot: block.header.slot,
      epoch: epochOfSlot(this.genesis, block.header.slot),
      producer: block.header.producer,
      block,
      creditIds: block.credits.map(creditRecordId),
      faultIds: block.faults.map(chainFaultId),
      primaryCount: parent.primaryCount + 1,
      vrfOutput: block.header.vrfOutput,
    };
    this.#nodes.set(hash, node);
    if (compareHeads(node, this.#head) >= 0) return { node, head: this.#head, headChanged: false };
    const reorg = this.#setHead(node);
    return reorg ? { node, head: node, headChanged: true, reorg } : { node, head: node, headChanged: true };
  }

  #setHead(to: BlockNode): Reorg | undefined {
    const from = this.#head;
    // Walk the new branch down to the canonical chain.
    const incoming: BlockNode[] = [];
    let a = to;
    while (!this.isCanonical(a.hash)) {
      incoming.push(a);
      a = this.#nodes.get(a.parent!)!;
    }
    // Revert canonical blocks above the common ancestor, newest first.
    for (let h = this.#canonical.length - 1; h > a.height; h--) {
      const n = this.#nodes.get(this.#canonical[h]!)!;
      this.#revertBlock(this.ledger, n);
      for (const id of n.creditIds) this.#canonicalCredits.delete(id);
      for (const id of n.faultIds) this.#canonicalCredits.delete(id);
    }
    const depth = this.#canonical.length - 1 - a.height;
    this.#canonical.length = a.height + 1;
    // Apply the new branch, oldest first.
    for (const n of incoming.reverse()) {
      this.#applyBlock(this.ledger, n);
      for (const id of n.creditIds) this.#canonicalCredits.set(id, n.height);
      for (const id of n.faultIds) this.#canonicalCredits.set(id, n.height);
      this.#canonical.push(n.hash);
    }
    this.#head = to;
    if (depth === 0) return undefined;
    this.#reorgs++;
    return { from: from.hash, to: to.hash, ancestor: a.hash, depth };
  }

  /** Blocks known but not on the canonical chain (orphaned competitors). */
  orphanCount(): number {
    return this.#nodes.size - this.#canonical.length;
  }
}
