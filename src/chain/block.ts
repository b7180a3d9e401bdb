/**
 * Blocks: a header (chain/header.ts), the PoD credit records and faults it carries, and the
 * producer's signature; the structural check of untrusted block JSON. Pure.
 */
import { merkleRoot } from '../util/merkle.ts';
import { creditLeaf, creditRecordProblem } from '../pod/credit.ts';
import type { CreditRecord } from '../pod/credit.ts';
import { BlockError, BlockErrorCode } from './errors.ts';
import type { BlockHeader } from './header.ts';
import { checkHeaderShape, copyHeader, MAX_CREDITS_STRUCTURAL, received, signHeader, verifyHeaderSignature } from './header.ts';
import { chainFaultProblem, copyChainFault } from './faults.ts';
import type { ChainFault } from './faults.ts';

export {
  BLOCK_VERSION, VRF_PROOF_BYTES, VRF_OUTPUT_BYTES, MAX_CREDITS_STRUCTURAL, headerBytes, blockHash, blockSigningBytes, producerPublicKey,
} from './header.ts';
export type { BlockHeader } from './header.ts';
export { faultRootOf } from './faults.ts';

export interface Block {
  header: BlockHeader;
  /** PoD credit records since the parent, each signed by the coordinator that verified it. */
  credits: CreditRecord[];
  /** Faults since the parent: coordinators' fault records and equivocation evidence. */
  faults: ChainFault[];
  /** Producer's Ed25519 signature over the header (header.ts blockSigningBytes), 64-byte hex. */
  sig: string;
}

/** Merkle root over the credit records, as carried in `creditRoot`. */
export function creditRootOf(credits: readonly CreditRecord[]): string {
  return merkleRoot(credits.map(creditLeaf));
}

/**
 * Sign a header with the producer's 32-byte Ed25519 seed.
 * @throws RangeError when the seed is not 32 bytes.
 */
export function signBlock(header: BlockHeader, credits: CreditRecord[], faults: ChainFault[], seed: Uint8Array): Block {
  return { header, credits, faults, sig: signHeader(header, seed) };
}

/** Verify the producer signature against a 32-byte public key. Never throws. */
export function verifyBlockSignature(b: Block, publicKey: Uint8Array): boolean {
  return verifyHeaderSignature(b.header, b.sig, publicKey);
}

function malformed(field: string, expected: string, got: unknown): BlockError {
  const r = received(got);
  return new BlockError(BlockErrorCode.MALFORMED, field, `expected ${expected}, received ${r}`, { expected, received: r });
}

/**
 * Check untrusted JSON is a structurally valid block and return it typed (a fresh object with
 * only the known fields). Cryptography and chain rules are `validateBlock`'s job.
 * @throws BlockError BLOCK_MALFORMED naming the field.
 */
export function checkBlockShape(raw: unknown): Block {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw malformed('block', 'an object', raw);
  const b = raw as Record<string, unknown>;
  const hp = checkHeaderShape(b.header);
  if (hp !== null) {
    const i = hp.indexOf(': ');
    throw new BlockError(BlockErrorCode.MALFORMED, hp.slice(0, i), hp.slice(i + 2));
  }
  if (!Array.isArray(b.credits) || b.credits.length > MAX_CREDITS_STRUCTURAL) throw malformed('credits', `an array of at most ${MAX_CREDITS_STRUCTURAL}`, b.credits);
  for (let i = 0; i < b.credits.length; i++) {
    const p = creditRecordProblem(b.credits[i]);
    if (p !== null) throw malformed(`credits[${i}]`, 'a well-formed credit record', p);
  }
  if (!Array.isArray(b.faults) || b.faults.length > MAX_CREDITS_STRUCTURAL) throw malformed('faults', `an array of at most ${MAX_CREDITS_STRUCTURAL}`, b.faults);
  for (let i = 0; i < b.faults.length; i++) {
    const p = chainFaultProblem(b.faults[i]);
    if (p !== null) throw malformed(`faults[${i}]`, 'a well-formed fault record or equivocation evidence', p);
  }
  if (typeof b.sig !== 'string' || !/^[0-9a-f]{128}$/.test(b.sig)) throw malformed('sig', '64-byte lowercase hex', b.sig);
  return {
    header: copyHeader(b.header as BlockHeader),
    credits: (b.credits as CreditRecord[]).map(copyCredit),
    faults: (b.faults as ChainFault[]).map(copyChainFault),
    sig: b.sig,
  };
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
