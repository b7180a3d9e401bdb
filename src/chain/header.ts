/**
 * Block headers: the canonical encoding, hash, the producer's signature over it, and the
 * structural check of an untrusted header. Pure.
 *
 * Header bytes = "matrix-drill/block/v2" ‖ UTF-8 JSON array of the header fields in the order
 * of `BlockHeader` (an array, so there is no key-order ambiguity). The block hash is
 * SHA-256(header bytes); it commits to the block's credit records through `creditRoot` (the
 * Merkle root of `creditLeaf(record)`, the root the settlement layer proves inclusion against)
 * and to its faults through `faultRoot`. The producer signs "matrix-drill/block-sig/v2" ‖
 * header bytes with the Ed25519 key of its libp2p peer id; the signature is not part of the
 * hash (a hash that excludes it cannot be changed by re-encoding a signature).
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { ed25519Sign } from '../util/ed25519.ts';
import { sha256 } from '@noble/hashes/sha2.js';
import { peerIdFromString } from '../vendor/libp2p.ts';
import { bytesToHex, concatBytes, hexToBytes, utf8ToBytes } from '../util/bytes.ts';

/** v2: headers commit to the faults a block carries (faultRoot, faultCount). */
export const BLOCK_VERSION = 2;
const HEADER_TAG = utf8ToBytes('matrix-drill/block/v2');
const SIG_TAG = utf8ToBytes('matrix-drill/block-sig/v2');

/** ECVRF proof length for edwards25519 suites (Gamma 32 ‖ c 16 ‖ s 32). */
export const VRF_PROOF_BYTES = 80;
/** ECVRF output (beta) length: SHA-512. */
export const VRF_OUTPUT_BYTES = 64;
/** Longest accepted chain id / peer id string: ids are short; the cap bounds junk. */
export const MAX_ID_CHARS = 128;
/** Structural cap on credit records (and on faults) in any block; the genesis cap may be lower. */
export const MAX_CREDITS_STRUCTURAL = 4096;

export interface BlockHeader {
  v: typeof BLOCK_VERSION;
  /** Genesis chain id; a block of another network is rejected before anything else. */
  chainId: string;
  /** Parent height + 1; genesis is height 0. */
  height: number;
  /** Slot number: floor((time − genesisTime) / slotMs); strictly greater than the parent's. */
  slot: number;
  /** Parent block hash, 32-byte hex. */
  parent: string;
  /** Producer's libp2p peer id (Ed25519); its public key is the VRF and signing key. */
  producer: string;
  /** ECVRF proof (suite TAI) on lotteryAlpha(epoch randomness, slot), 80-byte hex. */
  vrfProof: string;
  /** The proof's output beta, 64-byte hex (checked against the proof; feeds epoch randomness). */
  vrfOutput: string;
  /** Merkle root over creditLeaf(record) of `credits`, in order, 32-byte hex. */
  creditRoot: string;
  /** Number of credit records carried. */
  creditCount: number;
  /** Merkle root over the faults carried (chain/faults.ts chainFaultLeaf), in order, 32-byte hex. */
  faultRoot: string;
  /** Number of faults carried. */
  faultCount: number;
}

/** Canonical header bytes (what is hashed and signed). */
export function headerBytes(h: BlockHeader): Uint8Array {
  const arr = [h.v, h.chainId, h.height, h.slot, h.parent, h.producer, h.vrfProof, h.vrfOutput, h.creditRoot, h.creditCount, h.faultRoot, h.faultCount];
  return concatBytes(HEADER_TAG, utf8ToBytes(JSON.stringify(arr)));
}

/** The block hash: SHA-256 of the header bytes, hex. */
export function blockHash(h: BlockHeader): string {
  return bytesToHex(sha256(headerBytes(h)));
}

/** The bytes the producer signs. */
export function blockSigningBytes(h: BlockHeader): Uint8Array {
  return concatBytes(SIG_TAG, headerBytes(h));
}

/** Sign a header with a 32-byte Ed25519 seed (hex signature). @throws RangeError for a wrong-sized seed. */
export function signHeader(h: BlockHeader, seed: Uint8Array): string {
  if (seed.length !== 32) throw new RangeError(`producer seed must be 32 bytes, got ${seed.length}`);
  return bytesToHex(ed25519Sign(blockSigningBytes(h), seed));
}

/** Verify a producer signature over a header against a 32-byte public key. Never throws. */
export function verifyHeaderSignature(h: BlockHeader, sigHex: string, publicKey: Uint8Array): boolean {
  try {
    return ed25519.verify(hexToBytes(sigHex), blockSigningBytes(h), publicKey);
  } catch {
    return false;
  }
}

const pkCache = new Map<string, Uint8Array | null>();
const PK_CACHE_MAX = 4096; // producers are few; the cap only bounds memory under junk ids

/**
 * The 32-byte Ed25519 public key embedded in a peer id string, or null when the id does not
 * parse or is not Ed25519. Never throws.
 */
export function producerPublicKey(peerId: string): Uint8Array | null {
  const hit = pkCache.get(peerId);
  if (hit !== undefined) return hit;
  let pk: Uint8Array | null = null;
  try {
    const id = peerIdFromString(peerId);
    if (id.type === 'Ed25519' && id.publicKey && id.publicKey.raw.length === 32) pk = id.publicKey.raw;
  } catch {
    pk = null;
  }
  if (pkCache.size >= PK_CACHE_MAX) pkCache.clear();
  pkCache.set(peerId, pk);
  return pk;
}

const isHex = (v: unknown, n: number): v is string => typeof v === 'string' && v.length === n * 2 && /^[0-9a-f]+$/.test(v);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** A short description of a received value for error messages. */
export function received(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v.slice(0, 40)) : v === undefined ? 'nothing' : Array.isArray(v) ? `an array of ${v.length}` : typeof v === 'object' ? (v === null ? 'null' : 'an object') : String(v);
}

/**
 * Structural problems of an untrusted header: `"<field>: expected …, received …"` for the first
 * bad field, else null. Never throws.
 */
export function checkHeaderShape(raw: unknown): string | null {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return `header: expected an object, received ${received(raw)}`;
  const h = raw as Record<string, unknown>;
  const bad = (f: string, expected: string): string => `header.${f}: expected ${expected}, received ${received(h[f])}`;
  if (h.v !== BLOCK_VERSION) return bad('v', String(BLOCK_VERSION));
  if (typeof h.chainId !== 'string' || h.chainId.length === 0 || h.chainId.length > MAX_ID_CHARS) return bad('chainId', `a string of 1..${MAX_ID_CHARS} chars`);
  if (!isCount(h.height) || h.height < 1) return bad('height', 'an integer ≥ 1');
  if (!isCount(h.slot)) return bad('slot', 'an integer ≥ 0');
  if (!isHex(h.parent, 32)) return bad('parent', '32-byte lowercase hex');
  if (typeof h.producer !== 'string' || h.producer.length === 0 || h.producer.length > MAX_ID_CHARS) return bad('producer', 'a peer id string');
  if (!isHex(h.vrfProof, VRF_PROOF_BYTES)) return bad('vrfProof', `${VRF_PROOF_BYTES}-byte lowercase hex`);
  if (!isHex(h.vrfOutput, VRF_OUTPUT_BYTES)) return bad('vrfOutput', `${VRF_OUTPUT_BYTES}-byte lowercase hex`);
  if (!isHex(h.creditRoot, 32)) return bad('creditRoot', '32-byte lowercase hex');
  if (!isCount(h.creditCount) || h.creditCount > MAX_CREDITS_STRUCTURAL) return bad('creditCount', `an integer in 0..${MAX_CREDITS_STRUCTURAL}`);
  if (!isHex(h.faultRoot, 32)) return bad('faultRoot', '32-byte lowercase hex');
  if (!isCount(h.faultCount) || h.faultCount > MAX_CREDITS_STRUCTURAL) return bad('faultCount', `an integer in 0..${MAX_CREDITS_STRUCTURAL}`);
  return null;
}

/** A fresh header object with only the known fields (of a shape-checked header). */
export function copyHeader(h: BlockHeader): BlockHeader {
  return {
    v: BLOCK_VERSION, chainId: h.chainId, height: h.height, slot: h.slot, parent: h.parent, producer: h.producer,
    vrfProof: h.vrfProof, vrfOutput: h.vrfOutput, creditRoot: h.creditRoot, creditCount: h.creditCount, faultRoot: h.faultRoot, faultCount: h.faultCount,
  };
}
