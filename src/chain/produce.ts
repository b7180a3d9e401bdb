/**
 * Block production: the slot lottery for one producer key and building + signing a block on
 * the current head. Pure (the slot and pending records come in as arguments).
 *
 * Producer identity = the worker's libp2p peer id (Ed25519). Its VRF secret key is the same
 * 32-byte Ed25519 seed, so the VRF public key equals the peer's public key (which the peer id
 * embeds) and is fixed before any epoch randomness exists: no key grinding.
 */
import { publicKeyFromRaw, peerIdFromPublicKey } from '../vendor/libp2p.ts';
import type { PrivateKey } from '@libp2p/interface';
import { ed25519 } from '@noble/curves/ed25519.js';
import { ed25519PublicKey } from '../util/ed25519.ts';
import { bytesToHex } from '../util/bytes.ts';
import { creditRecordId } from '../pod/credit.ts';
import type { CreditRecord } from '../pod/credit.ts';
import { vrfProve, vrfProofToHash } from '../vrf/ecvrf.ts';
import { isWinner, lotteryAlpha, lotteryThreshold } from '../vrf/lottery.ts';
import type { Block, BlockHeader } from './block.ts';
import { BLOCK_VERSION, creditRootOf, faultRootOf, signBlock } from './block.ts';
import { chainFaultId } from './faults.ts';
import type { ChainFault } from './faults.ts';
import { epochOfSlot } from './epoch.ts';
import type { ChainState } from './state.ts';
import { LOTTERY_SUITE } from './validate.ts';

export interface ProducerKey {
  /** libp2p peer id string (the block's `producer`). */
  peerId: string;
  /** 32-byte Ed25519 seed: signing key and VRF secret key. */
  seed: Uint8Array;
  /** 32-byte Ed25519 public key = VRF public key. */
  publicKey: Uint8Array;
}

/**
 * A producer key from a 32-byte Ed25519 seed.
 * @throws RangeError when the seed is not 32 bytes.
 */
export function producerKeyFromSeed(seed: Uint8Array): ProducerKey {
  if (!(seed instanceof Uint8Array) || seed.length !== 32) throw new RangeError(`producer seed must be 32 bytes, got ${seed instanceof Uint8Array ? seed.length : typeof seed}`);
  const publicKey = ed25519PublicKey(seed);
  const peerId = peerIdFromPublicKey(publicKeyFromRaw(publicKey)).toString();
  return { peerId, seed: seed.slice(), publicKey };
}

/**
 * A producer key from a libp2p Ed25519 private key (the node identity).
 * @throws RangeError when the key is not Ed25519.
 */
export function producerKeyFromPrivateKey(key: PrivateKey): ProducerKey {
  if (key.type !== 'Ed25519') throw new RangeError(`producer identity must be an Ed25519 key, got ${key.type}`);
  return producerKeyFromSeed(key.raw.slice(0, 32));
}

export interface SlotTicket {
  slot: number;
  epoch: number;
  /** 80-byte VRF proof. */
  proof: Uint8Array;
  /** 64-byte VRF output. */
  output: Uint8Array;
  weight: bigint;
  total: bigint;
  threshold: bigint;
  won: boolean;
}

/**
 * Run the lottery for `key` in `slot` on the branch ending at `parentHash` (default: head).
 * @throws Error when the parent is unknown.
 */
export function slotTicket(state: ChainState, key: ProducerKey, slot: number, parentHash: string = state.head.hash): SlotTicket {
  const epoch = epochOfSlot(state.genesis, slot);
  const snap = state.epochSnapshot(parentHash, epoch);
  const weight = snap.weights.get(key.peerId) ?? 0n;
  const threshold = lotteryThreshold(state.genesis.c, weight, snap.total);
  const proof = vrfProve(LOTTERY_SUITE, key.seed, lotteryAlpha(snap.randomness, slot));
  const output = vrfProofToHash(LOTTERY_SUITE, proof);
  return { slot, epoch, proof, output, weight, total: snap.total, threshold, won: isWinner(output, threshold) };
}

/**
 * The credit records a block on `parentHash` may carry: authorised coordinator, not already
 * on the branch, no duplicates, at most maxCreditsPerBlock, in the given (arrival) order.
 * Records are assumed signature-checked already (the mempool verifies on arrival).
 */
export function selectCredits(state: ChainState, parentHash: string, pending: Iterable<CreditRecord>): CreditRecord[] {
  const g = state.genesis;
  const out: CreditRecord[] = [];
  const seen = new Set<string>();
  for (const r of pending) {
    if (out.length >= g.maxCreditsPerBlock) break;
    if (!g.coordinators.includes(r.coordinator)) continue;
    const id = creditRecordId(r);
    if (seen.has(id) || state.replayedCredit(parentHash, [id]) !== null) continue;
    seen.add(id);
    out.push(r);
  }
  return out;
}

/**
 * The faults a block on `parentHash` may carry: not already on the branch, no duplicates, at
 * most maxCreditsPerBlock, in the given order. Faults are assumed checked already (the mempool
 * verifies on arrival).
 */
export function selectFaults(state: ChainState, parentHash: string, pending: Iterable<ChainFault>): ChainFault[] {
  const g = state.genesis;
  const out: ChainFault[] = [];
  const seen = new Set<string>();
  for (const f of pending) {
    if (out.length >= g.maxCreditsPerBlock) break;
    if (f.kind === 'pod' && !g.coordinators.includes(f.coordinator)) continue;
    const id = chainFaultId(f);
    if (seen.has(id) || state.replayedCredit(parentHash, [id]) !== null) continue;
    seen.add(id);
    out.push(f);
  }
  return out;
}

/**
 * Build and sign a block for `slot` on the head if `key` wins the slot; null otherwise (or
 * when the head is already at or past the slot).
 */
export function tryProduce(state: ChainState, key: ProducerKey, slot: number, pending: Iterable<CreditRecord> = [], pendingFaults: Iterable<ChainFault> = []): Block | null {
  const parent = state.head;
  if (slot <= parent.slot) return null;
  const t = slotTicket(state, key, slot, parent.hash);
  if (!t.won) return null;
  return buildBlock(state, key, slot, parent.hash, t, selectCredits(state, parent.hash, pending), selectFaults(state, parent.hash, pendingFaults));
}

/** Assemble and sign a block from a winning ticket (exported for tests that break one rule). */
export function buildBlock(state: ChainState, key: ProducerKey, slot: number, parentHash: string, t: Pick<SlotTicket, 'proof' | 'output'>, credits: CreditRecord[], faults: ChainFault[] = []): Block {
  const parent = state.getNode(parentHash);
  if (!parent) throw new Error(`buildBlock: unknown parent ${parentHash}`);
  const header: BlockHeader = {
    v: BLOCK_VERSION,
    chainId: state.genesis.chainId,
    height: parent.height + 1,
    slot,
    parent: parent.hash,
    producer: key.peerId,
    vrfProof: bytesToHex(t.proof),
    vrfOutput: bytesToHex(t.output),
    creditRoot: creditRootOf(credits),
    creditCount: credits.length,
    faultRoot: faultRootOf(faults),
    faultCount: faults.length,
  };
  return signBlock(header, credits, faults, key.seed);
}
