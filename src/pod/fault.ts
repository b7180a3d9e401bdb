/**
 * Fault records: a coordinator's signed statement that a worker was found faulty in a job —
 * in the minority of a decided unit, a reveal that did not open its commitment, outputs that
 * do not match the model. Quarantine and re-verification inside the job already kept the
 * faulty results out of the partner's outputs; the record carries the consequence to the chain:
 * blocks include it, and the ledger forfeits the worker's credit for that job and, for the
 * genesis' `faultEpochs`, its lottery weight.
 *
 * Signed bytes = "matrix-drill/fault/v1" ‖ canonical JSON array of the fields below, in this
 * order. The record id (replay protection) is SHA-256 of those bytes. Coordinators sign with
 * their Ed25519 identity, as for credit records (credit.ts).
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { ed25519PublicKey, ed25519Sign } from '../util/ed25519.ts';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, concatBytes, hexToBytes, utf8ToBytes } from '../util/bytes.ts';

export const FAULT_RECORD_VERSION = 1;
const TAG = utf8ToBytes('matrix-drill/fault/v1');

/** Most reasons a record lists (one per unit it lost, plus hard faults); the rest are summarised. */
export const MAX_FAULT_REASONS = 64;

export interface FaultBody {
  v: typeof FAULT_RECORD_VERSION;
  kind: 'pod';
  /** Coordinator's Ed25519 public key, hex (32 bytes). */
  coordinator: string;
  job: string;
  /** The faulty worker's peer id. */
  worker: string;
  /** Why, sorted: `minority:<unit>`, `reveal-mismatch`, `reveal-refused`, `bad-outputs`. */
  reasons: string[];
  /** Decision time, ms since the Unix epoch (informational). */
  time: number;
}

export interface FaultRecord extends FaultBody {
  /** Ed25519 signature by `coordinator` over faultSigningBytes(body), hex (64 bytes). */
  sig: string;
}

export function faultSigningBytes(b: FaultBody): Uint8Array {
  const arr = [b.v, b.kind, b.coordinator, b.job, b.worker, [...b.reasons], b.time];
  return concatBytes(TAG, utf8ToBytes(JSON.stringify(arr)));
}

/** The record's id: replay protection and Merkle leaf identity (hex). */
export function faultRecordId(b: FaultBody): string {
  return bytesToHex(sha256(faultSigningBytes(b)));
}

/**
 * Sign a fault record with a coordinator's 32-byte Ed25519 seed. Reasons are sorted, made
 * distinct and capped at MAX_FAULT_REASONS.
 * @throws RangeError when the seed is not 32 bytes.
 */
export function signFaultRecord(body: Omit<FaultBody, 'v' | 'kind' | 'coordinator'>, seed: Uint8Array): FaultRecord {
  if (seed.length !== 32) throw new RangeError(`coordinator seed must be 32 bytes, got ${seed.length}`);
  const reasons = [...new Set(body.reasons)].sort().slice(0, MAX_FAULT_REASONS);
  const full: FaultBody = { v: FAULT_RECORD_VERSION, kind: 'pod', coordinator: bytesToHex(ed25519PublicKey(seed)), job: body.job, worker: body.worker, reasons, time: body.time };
  return { ...full, sig: bytesToHex(ed25519Sign(faultSigningBytes(full), seed)) };
}

/** Structural check of an untrusted record: a reason string when malformed, else null. Never throws. */
export function faultRecordProblem(r: unknown): string | null {
  if (typeof r !== 'object' || r === null) return 'not an object';
  const x = r as Record<string, unknown>;
  const hex = (v: unknown, n: number): boolean => typeof v === 'string' && v.length === n * 2 && /^[0-9a-f]+$/.test(v);
  if (x.v !== FAULT_RECORD_VERSION) return `v: expected ${FAULT_RECORD_VERSION}`;
  if (x.kind !== 'pod') return 'kind: expected "pod"';
  if (!hex(x.coordinator, 32)) return 'coordinator: expected 32-byte hex';
  if (typeof x.job !== 'string' || x.job.length === 0 || x.job.length > 128) return 'job: expected a string of 1..128';
  if (typeof x.worker !== 'string' || x.worker.length === 0 || x.worker.length > 128) return 'worker: expected a peer id';
  const rs = x.reasons;
  if (!Array.isArray(rs) || rs.length === 0 || rs.length > MAX_FAULT_REASONS) return `reasons: expected 1..${MAX_FAULT_REASONS} strings`;
  if (!rs.every((s, i) => typeof s === 'string' && s.length > 0 && s.length <= 64 && (i === 0 || (rs[i - 1] as string) < s))) return 'reasons: expected sorted, distinct strings of 1..64';
  if (!Number.isSafeInteger(x.time) || (x.time as number) < 0) return 'time: expected ms since epoch';
  if (!hex(x.sig, 64)) return 'sig: expected 64-byte hex';
  return null;
}

/** Is the record well-formed and signed by its coordinator? Never throws. */
export function verifyFaultRecord(r: unknown): r is FaultRecord {
  if (faultRecordProblem(r) !== null) return false;
  const rec = r as FaultRecord;
  try {
    return ed25519.verify(hexToBytes(rec.sig), faultSigningBytes(rec), hexToBytes(rec.coordinator));
  } catch {
    return false;
  }
}
