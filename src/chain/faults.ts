/**
 * Faults a block carries next to its credit records. Pure.
 *
 *  - `pod`: a coordinator's signed FaultRecord (src/pod/fault.ts) — a worker found faulty in
 *    a job. The ledger forfeits the worker's credit for that job and bans its lottery weight
 *    for the genesis' `faultEpochs`.
 *  - `equivocation`: evidence that a producer signed two different block headers for one slot
 *    — anyone can build it from two blocks it saw (the producer's signatures are the proof).
 *    The ledger bans the producer's lottery weight for `faultEpochs`.
 *
 * Ids: a pod fault's id is its record id; an equivocation's id depends only on (producer, slot),
 * so a producer is punished once per slot whichever pair of its headers is shown.
 * Leaves of the fault Merkle tree (header `faultRoot`) are the canonical bytes below.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, concatBytes, utf8ToBytes } from '../util/bytes.ts';
import { faultRecordId, faultRecordProblem, faultSigningBytes, verifyFaultRecord } from '../pod/fault.ts';
import type { FaultRecord } from '../pod/fault.ts';
import { merkleRoot } from '../util/merkle.ts';
import type { BlockHeader } from './header.ts';
import { blockHash, checkHeaderShape, producerPublicKey, verifyHeaderSignature } from './header.ts';

export const EQUIVOCATION_VERSION = 1;
const EQUIVOCATION_TAG = utf8ToBytes('matrix-drill/equivocation/v1');

/** Two headers signed by one producer for one slot (ordered by block hash). */
export interface Equivocation {
  v: typeof EQUIVOCATION_VERSION;
  kind: 'equivocation';
  producer: string;
  slot: number;
  a: { header: BlockHeader; sig: string };
  b: { header: BlockHeader; sig: string };
}

export type ChainFault = FaultRecord | Equivocation;

/**
 * Build the evidence from two blocks' headers and signatures (any order).
 * @throws RangeError when they are not two different headers of one producer for one slot.
 */
export function makeEquivocation(x: { header: BlockHeader; sig: string }, y: { header: BlockHeader; sig: string }): Equivocation {
  if (x.header.producer !== y.header.producer || x.header.slot !== y.header.slot) throw new RangeError('equivocation needs two headers of one producer for one slot');
  const hx = blockHash(x.header);
  const hy = blockHash(y.header);
  if (hx === hy) throw new RangeError('equivocation needs two different headers');
  const [a, b] = hx < hy ? [x, y] : [y, x];
  return { v: EQUIVOCATION_VERSION, kind: 'equivocation', producer: x.header.producer, slot: x.header.slot, a: { header: { ...a.header }, sig: a.sig }, b: { header: { ...b.header }, sig: b.sig } };
}

/** The id of a fault (replay protection on a branch), hex. */
export function chainFaultId(f: ChainFault): string {
  if (f.kind === 'pod') return faultRecordId(f);
  return bytesToHex(sha256(concatBytes(EQUIVOCATION_TAG, utf8ToBytes(JSON.stringify([f.producer, f.slot])))));
}

/** Leaf bytes of the fault Merkle tree. */
export function chainFaultLeaf(f: ChainFault): Uint8Array {
  if (f.kind === 'pod') return concatBytes(faultSigningBytes(f), utf8ToBytes(f.sig));
  return concatBytes(EQUIVOCATION_TAG, utf8ToBytes(JSON.stringify([f.producer, f.slot, blockHash(f.a.header), f.a.sig, blockHash(f.b.header), f.b.sig])));
}

/** Merkle root over the faults, as carried in a header's `faultRoot`. */
export function faultRootOf(faults: readonly ChainFault[]): string {
  return merkleRoot(faults.map(chainFaultLeaf));
}

/** Structural check of untrusted fault JSON: a reason when malformed, else null. Never throws. */
export function chainFaultProblem(f: unknown): string | null {
  if (typeof f !== 'object' || f === null || Array.isArray(f)) return 'not an object';
  const x = f as Record<string, unknown>;
  if (x.kind === 'pod') return faultRecordProblem(x);
  if (x.kind !== 'equivocation') return 'kind: expected "pod" or "equivocation"';
  if (x.v !== EQUIVOCATION_VERSION) return `v: expected ${EQUIVOCATION_VERSION}`;
  if (typeof x.producer !== 'string' || x.producer.length === 0 || x.producer.length > 128) return 'producer: expected a peer id';
  if (!Number.isSafeInteger(x.slot) || (x.slot as number) < 0) return 'slot: expected an integer ≥ 0';
  for (const k of ['a', 'b'] as const) {
    const s = x[k] as Record<string, unknown> | undefined;
    if (typeof s !== 'object' || s === null) return `${k}: expected {header, sig}`;
    const p = checkHeaderShape(s.header);
    if (p !== null) return `${k}.header: ${p}`;
    if (typeof s.sig !== 'string' || !/^[0-9a-f]{128}$/.test(s.sig)) return `${k}.sig: expected 64-byte hex`;
  }
  return null;
}

/** A copy of a (shape-checked) fault holding only its known fields. */
export function copyChainFault(f: ChainFault): ChainFault {
  if (f.kind === 'pod') return { v: f.v, kind: 'pod', coordinator: f.coordinator, job: f.job, worker: f.worker, reasons: [...f.reasons], time: f.time, sig: f.sig };
  return { v: f.v, kind: 'equivocation', producer: f.producer, slot: f.slot, a: { header: { ...f.a.header }, sig: f.a.sig }, b: { header: { ...f.b.header }, sig: f.b.sig } };
}

/**
 * Check a shape-checked fault's proof against the network: a pod record from a genesis
 * coordinator with a valid signature; an equivocation of two different, validly signed headers
 * of this chain by the named producer for the named slot. A reason when invalid, else null.
 */
export function chainFaultInvalid(f: ChainFault, g: { chainId: string; coordinators: readonly string[] }): string | null {
  if (f.kind === 'pod') {
    if (!g.coordinators.includes(f.coordinator)) return `coordinator ${f.coordinator.slice(0, 12)}… is not a genesis coordinator`;
    return verifyFaultRecord(f) ? null : 'not a valid coordinator signature';
  }
  const pk = producerPublicKey(f.producer);
  if (!pk) return 'producer: not an Ed25519 peer id';
  for (const s of [f.a, f.b]) {
    if (s.header.chainId !== g.chainId) return 'a header of another chain';
    if (s.header.producer !== f.producer || s.header.slot !== f.slot) return 'headers of another producer or slot';
    if (!verifyHeaderSignature(s.header, s.sig, pk)) return 'a header signature that does not verify';
  }
  const ha = blockHash(f.a.header);
  const hb = blockHash(f.b.header);
  if (ha >= hb) return 'headers not distinct and ordered by hash';
  return null;
}

/** The worker a fault is against and the job whose credit it forfeits (none for equivocation). */
export function faultTarget(f: ChainFault): { worker: string; job?: string } {
  return f.kind === 'pod' ? { worker: f.worker, job: f.job } : { worker: f.producer };
}
