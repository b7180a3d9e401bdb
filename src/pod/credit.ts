/**
 * Credit records: the coordinator's signed statement that a unit was verified by PoD and
 * which workers earn its FLOPs. Blocks carry them; the chain applies them to the ledger; the
 * settlement layer anchors a Merkle root over them.
 *
 * Signed bytes = "matrix-drill/credit/v1" ‖ canonical JSON array of the fields below, in this
 * order (no key-order ambiguity). The record id (replay protection) is SHA-256 of those bytes.
 * Coordinators sign with their Ed25519 identity (the same key as their libp2p peer id).
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { ed25519PublicKey, ed25519Sign } from '../util/ed25519.ts';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, concatBytes, hexToBytes, utf8ToBytes } from '../util/bytes.ts';

export const CREDIT_RECORD_VERSION = 1;
const TAG = utf8ToBytes('matrix-drill/credit/v1');

export interface CreditBody {
  v: typeof CREDIT_RECORD_VERSION;
  /** Coordinator's Ed25519 public key, hex (32 bytes). */
  coordinator: string;
  job: string;
  unit: number;
  /** Digest (commit.ts resultDigest) of the accepted result. */
  resultDigest: string;
  /** Verified FLOPs credited to EACH credited worker (the unit's cost from the model graph). */
  flops: number;
  /** Credited workers (peer ids), sorted. */
  credited: string[];
  /** Workers whose result disagreed with the majority, sorted. */
  faulty: string[];
  /**
   * agreed: every replica agreed (an audited spot-check unit too); resolved: a strict majority
   * after a dispute; unaudited: a spot-check unit accepted from its one worker without an audit
   * (credited optimistically — forfeited if the worker is later found faulty in the job).
   */
  status: 'agreed' | 'resolved' | 'unaudited';
  /** Decision time, ms since the Unix epoch (informational; not used for ordering). */
  time: number;
}

export interface CreditRecord extends CreditBody {
  /** Ed25519 signature by `coordinator` over signingBytes(body), hex (64 bytes). */
  sig: string;
}

export function signingBytes(b: CreditBody): Uint8Array {
  const arr = [b.v, b.coordinator, b.job, b.unit, b.resultDigest, b.flops, [...b.credited], [...b.faulty], b.status, b.time];
  return concatBytes(TAG, utf8ToBytes(JSON.stringify(arr)));
}

/** The record's id: replay protection and Merkle leaf identity (hex). */
export function creditRecordId(b: CreditBody): string {
  return bytesToHex(sha256(signingBytes(b)));
}

/** Leaf bytes for the credit Merkle tree (the signed bytes plus the signature). */
export function creditLeaf(r: CreditRecord): Uint8Array {
  return concatBytes(signingBytes(r), hexToBytes(r.sig, 'sig'));
}

/**
 * Sign a record body with a coordinator's 32-byte Ed25519 seed.
 * @throws RangeError when the seed is not 32 bytes.
 */
export function signCreditRecord(body: Omit<CreditBody, 'v' | 'coordinator'>, seed: Uint8Array): CreditRecord {
  if (seed.length !== 32) throw new RangeError(`coordinator seed must be 32 bytes, got ${seed.length}`);
  const full: CreditBody = {
    v: CREDIT_RECORD_VERSION,
    coordinator: bytesToHex(ed25519PublicKey(seed)),
    ...body,
    credited: [...body.credited].sort(),
    faulty: [...body.faulty].sort(),
  };
  return { ...full, sig: bytesToHex(ed25519Sign(signingBytes(full), seed)) };
}

/**
 * Structural check of an untrusted record (from the network or a block): returns a reason
 * string when malformed, else null. Never throws.
 */
export function creditRecordProblem(r: unknown): string | null {
  if (typeof r !== 'object' || r === null) return 'not an object';
  const x = r as Record<string, unknown>;
  const hex = (v: unknown, n: number): boolean => typeof v === 'string' && v.length === n * 2 && /^[0-9a-f]+$/.test(v);
  const strs = (v: unknown): boolean => Array.isArray(v) && v.length <= 1024 && v.every((s) => typeof s === 'string' && s.length > 0 && s.length <= 128);
  if (x.v !== CREDIT_RECORD_VERSION) return `v: expected ${CREDIT_RECORD_VERSION}`;
  if (!hex(x.coordinator, 32)) return 'coordinator: expected 32-byte hex';
  if (typeof x.job !== 'string' || x.job.length === 0 || x.job.length > 128) return 'job: expected a string of 1..128';
  if (!Number.isSafeInteger(x.unit) || (x.unit as number) < 0) return 'unit: expected a non-negative integer';
  if (!hex(x.resultDigest, 32)) return 'resultDigest: expected 32-byte hex';
  if (!Number.isSafeInteger(x.flops) || (x.flops as number) < 0) return 'flops: expected a non-negative safe integer';
  if (!strs(x.credited) || (x.credited as string[]).length === 0) return 'credited: expected a non-empty list of peer ids';
  if (!strs(x.faulty)) return 'faulty: expected a list of peer ids';
  if (x.status !== 'agreed' && x.status !== 'resolved' && x.status !== 'unaudited') return 'status: expected agreed, resolved or unaudited';
  if (!Number.isSafeInteger(x.time) || (x.time as number) < 0) return 'time: expected ms since epoch';
  if (!hex(x.sig, 64)) return 'sig: expected 64-byte hex';
  const sorted = (a: string[]): boolean => a.every((s, i) => i === 0 || a[i - 1]! < s);
  if (!sorted(x.credited as string[]) || !sorted(x.faulty as string[])) return 'credited/faulty: expected sorted, distinct peer ids';
  return null;
}

/** Is the record well-formed and signed by its coordinator? Never throws. */
export function verifyCreditRecord(r: unknown): r is CreditRecord {
  if (creditRecordProblem(r) !== null) return false;
  const rec = r as CreditRecord;
  try {
    return ed25519.verify(hexToBytes(rec.sig), signingBytes(rec), hexToBytes(rec.coordinator));
  } catch {
    return false;
  }
}
