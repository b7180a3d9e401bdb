/**
 * Commit–reveal for PoD results. A worker first sends a commitment to its result (a hash
 * binding its identity, the unit and a random salt), and reveals the result only after every
 * replica of the round has committed — so no replica can copy another's answer.
 *
 * resultDigest = SHA-256( "matrix-drill/result/v1" ‖ for each output in name order:
 *                         len(name) name ‖ dtype ‖ ndims dims(u32) ‖ len(bytes) bytes )
 * commitment   = SHA-256( "matrix-drill/commit/v1" ‖ len(worker) worker ‖ len(unit) unit ‖ salt(32) ‖ resultDigest )
 */
import { createHash } from 'node:crypto';
import { utf8ToBytes, equalBytes, hexToBytes } from '../util/bytes.ts';
import type { HostTensor } from '../util/tensor.ts';
import { tensorBytes } from '../util/tensor.ts';

const RESULT_TAG = utf8ToBytes('matrix-drill/result/v1');
const COMMIT_TAG = utf8ToBytes('matrix-drill/commit/v1');

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0, false);
  return b;
}

function withLen(bytes: Uint8Array): Uint8Array[] {
  return [u32(bytes.length), bytes];
}

/** Canonical digest of a result (hex). Independent of object key order. */
export function resultDigest(outputs: Record<string, HostTensor>): string {
  // node:crypto's native SHA-256, not @noble/hashes: results are megabytes per unit and this
  // runs on the coordinator's and every worker's main thread (~4x faster; same digests).
  const h = createHash('sha256');
  h.update(RESULT_TAG);
  for (const name of Object.keys(outputs).sort()) {
    const t = outputs[name]!;
    for (const part of withLen(utf8ToBytes(name))) h.update(part);
    for (const part of withLen(utf8ToBytes(t.dtype))) h.update(part);
    h.update(u32(t.dims.length));
    for (const d of t.dims) h.update(u32(d));
    const raw = tensorBytes(t);
    for (const part of withLen(raw)) h.update(part);
  }
  return h.digest('hex');
}

/** The commitment a worker publishes before revealing (hex). `salt` is 32 random bytes, hex. */
export function commitment(worker: string, unit: string, saltHex: string, digestHex: string): string {
  const h = createHash('sha256');
  h.update(COMMIT_TAG);
  for (const part of withLen(utf8ToBytes(worker))) h.update(part);
  for (const part of withLen(utf8ToBytes(unit))) h.update(part);
  h.update(hexToBytes(saltHex, 'salt'));
  h.update(hexToBytes(digestHex, 'digest'));
  return h.digest('hex');
}

/** Does a revealed (result, salt) open the commitment? Returns false (never throws) for malformed hex. */
export function opensCommitment(commitHex: string, worker: string, unit: string, saltHex: string, outputs: Record<string, HostTensor>): boolean {
  try {
    const expected = hexToBytes(commitHex, 'commitment');
    const actual = hexToBytes(commitment(worker, unit, saltHex, resultDigest(outputs)), 'commitment');
    return equalBytes(expected, actual);
  } catch {
    return false;
  }
}
