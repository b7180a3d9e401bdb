/**
 * Blocks: types, canonical header encoding, hash, producer signature, and the structural
 * check of untrusted block JSON. Pure.
 *
 * Header bytes = "matrix-drill/block/v1" ‖ UTF-8 JSON array of the header fields in the order
 * of `BlockHeader` (an array, so there is no key-order ambiguity). The block hash is
 * SHA-256(header bytes); it commits to the credit records through `creditRoot` (the Merkle root
 * of `creditLeaf(record)` over the records, in block order, from util/merkle.ts — the same root
 * the settlement layer proves inclusion against). The producer signs
 * "matrix-drill/block-sig/v1" ‖ header bytes with the Ed25519 key of its libp2p peer id; the
 * signature is not part of the hash (Ed25519 signatures are deterministic, and a hash that
 * excludes them cannot be changed by re-encoding a signature).
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { peerIdFromString } from '@libp2p/peer-id';
import { bytesToHex, concatBytes, hexToBytes, utf8ToBytes } from '../util/bytes.ts';
import { merkleRoot } from '../util/merkle.ts';
import { creditLeaf, creditRecordProblem } from '../pod/credit.ts';
import type { CreditRecord } from '../pod/credit.ts';
import { BlockError, BlockErrorCode } from './errors.ts';

export const BLOCK_VERSION = 1;
const HEADER_TAG = utf8ToBytes('matrix-drill/block/v1');
const SIG_TAG = utf8ToBytes('matrix-drill/block-sig/v1');

/** ECVRF proof length for edwards25519 suites (Gamma 32 ‖ c 16 ‖ s 32). */
export const VRF_PROOF_BYTES = 80;
/** ECVRF output (beta) length: SHA-512. */
export const VRF_OUTPUT_BYTES = 64;

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
}

export interface Block {
  header: BlockHeader;
  /** PoD credit records since the parent, each signed by the coordinator that verified it. */
  credits: CreditRecord[];
  /** Producer's Ed25519 signature over SIG_TAG ‖ headerBytes(header), 64-byte hex. */
  sig: string;
}

/** Canonical header bytes (what is hashed and signed). */
export function headerBytes(h: BlockHeader): Uint8Array {
  const arr = [h.v, h.chainId, h.height, h.slot, h.parent, h.producer, h.vrfProof, h.vrfOutput, h.creditRoot, h.creditCount];
  return concatBytes(HEADER_TAG, utf8ToBytes(JSON.stringify(arr)));
}

/** The block hash: SHA-256 of the header bytes, hex. */
export function blockHash(h: BlockHeader): string {
  return bytesToHex(sha256(headerBytes(h)));
}

/** Merkle root over the credit records, as carried in `creditRoot`. */
export function creditRootOf(credits: readonly CreditRecord[]): string {
  return merkleRoot(credits.map(creditLeaf));
}

/** The bytes the producer signs. */
export function blockSigningBytes(h: BlockHeader): Uint8Array {
  return concatBytes(SIG_TAG, headerBytes(h));
}

/**
 * Sign a header with the producer's 32-byte Ed25519 seed.
 * @throws RangeError when the seed is not 32 bytes.
 */
export function signBlock(header: BlockHeader, credits: CreditRecord[], seed: Uint8Array): Block {
  if (seed.length !== 32) throw new RangeError(`producer seed must be 32 bytes, got ${seed.length}`);
  return { header, credits, sig: bytesToHex(ed25519.sign(blockSigningBytes(header), seed)) };
}

/** Verify the producer signature against a 32-byte public key. Never throws. */
export function verifyBlockSignature(b: Block, publicKey: Uint8Array): boolean {
  try {
    return ed25519.verify(hexToBytes(b.sig), blockSigningBytes(b.header), publicKey);
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

/** Longest accepted chain id / peer id string: ids are short; the cap bounds junk. */
const MAX_ID_CHARS = 128;
/** Structural cap on credit records in any block; genesis `maxCreditsPerBlock` may be lower. */
export const MAX_CREDITS_STRUCTURAL = 4096;

function malformed(field: string, expected: string, received: unknown): BlockError {
  const got = typeof received === 'string' ? JSON.stringify(received.slice(0, 40)) : received === undefined ? 'nothing' : Array.isArray(received) ? `an array of ${received.length}` : typeof received === 'object' ? (received === null ? 'null' : 'an object') : String(received);
  return new BlockError(BlockErrorCode.MALFORMED, field, `expected ${expected}, received ${got}`, { expected, received: got });
}

/**
 * Check untrusted JSON is a structurally valid block and return it typed (a fresh object with
 * only the known fields). Cryptography and chain rules are `validateBlock`'s job.
 * @throws BlockError BLOCK_MALFORMED naming the field.
 */
export function checkBlockShape(raw: unknown): Block {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw malformed('block', 'an object', raw);
  const b = raw as Record<string, unknown>;
  const h = b.header as Record<string, unknown> | undefined;
  if (typeof h !== 'object' || h === null || Array.isArray(h)) throw malformed('header', 'an object', h);
  if (h.v !== BLOCK_VERSION) throw malformed('header.v', String(BLOCK_VERSION), h.v);
  if (typeof h.chainId !== 'string' || h.chainId.length === 0 || h.chainId.length > MAX_ID_CHARS) throw malformed('header.chainId', `a string of 1..${MAX_ID_CHARS} chars`, h.chainId);
  if (!isCount(h.height) || h.height < 1) throw malformed('header.height', 'an integer ≥ 1', h.height);
  if (!isCount(h.slot)) throw malformed('header.slot', 'an integer ≥ 0', h.slot);
  if (!isHex(h.parent, 32)) throw malformed('header.parent', '32-byte lowercase hex', h.parent);
  if (typeof h.producer !== 'string' || h.producer.length === 0 || h.producer.length > MAX_ID_CHARS) throw malformed('header.producer', 'a peer id string', h.producer);
  if (!isHex(h.vrfProof, VRF_PROOF_BYTES)) throw malformed('header.vrfProof', `${VRF_PROOF_BYTES}-byte lowercase hex`, h.vrfProof);
  if (!isHex(h.vrfOutput, VRF_OUTPUT_BYTES)) throw malformed('header.vrfOutput', `${VRF_OUTPUT_BYTES}-byte lowercase hex`, h.vrfOutput);
  if (!isHex(h.creditRoot, 32)) throw malformed('header.creditRoot', '32-byte lowercase hex', h.creditRoot);
  if (!isCount(h.creditCount) || h.creditCount > MAX_CREDITS_STRUCTURAL) throw malformed('header.creditCount', `an integer in 0..${MAX_CREDITS_STRUCTURAL}`, h.creditCount);
  if (!Array.isArray(b.credits) || b.credits.length > MAX_CREDITS_STRUCTURAL) throw malformed('credits', `an array of at most ${MAX_CREDITS_STRUCTURAL}`, b.credits);
  for (let i = 0; i < b.credits.length; i++) {
    const p = creditRecordProblem(b.credits[i]);
    if (p !== null) throw malformed(`credits[${i}]`, 'a well-formed credit record', p);
  }
  if (!isHex(b.sig, 64)) throw malformed('sig', '64-byte lowercase hex', b.sig);
  const header: BlockHeader = {
    v: BLOCK_VERSION,
    chainId: h.chainId,
    height: h.height,
    slot: h.slot,
    parent: h.parent,
    producer: h.producer,
    vrfProof: h.vrfProof,
    vrfOutput: h.vrfOutput,
    creditRoot: h.creditRoot,
    creditCount: h.creditCount,
  };
  const credits = (b.credits as CreditRecord[]).map(copyCredit);
  return { header, credits, sig: b.sig };
}

/** A copy of a (shape-checked) credit record holding only its known fields. */
export function copyCredit(r: CreditRecord): CreditRecord {
  return {
    v: r.v,
    coordinator: r.coordinator,
    job: r.job,
    unit: r.unit,
    resultDigest: r.resultDigest,
    flops: r.flops,
    credited: [...r.credited],
    faulty: [...r.faulty],
    status: r.status,
    time: r.time,
    sig: r.sig,
  };
}

/** Short human form of a hash or peer id: first 6 … last 4. */
export function shortId(s: string): string {
  return s.length <= 12 ? s : `${s.slice(0, 6)}…${s.slice(-4)}`;
}
