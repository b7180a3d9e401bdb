/**
 * The settlement anchor: a compact, versioned byte string posted as the argument of
 * `system.remarkWithEvent` (a call every FRAME runtime has), covering one or more finalised
 * matrix-drill blocks.
 *
 *   bytes = "mdrill:v1:" ‖ UTF-8 JSON array
 *     [ chainId,
 *       [ [height, blockHash, creditRoot, records, creditedFlops], ... ],   // blocks, ascending
 *       [ [peerId, ss58, sigByPeer, sigBySs58], ... ] ]                      // identity links
 *
 * - hashes are lowercase hex without 0x; `records` is the number of credit records in the
 *   block; `creditedFlops` is Σ record.flops × |record.credited| as a decimal string (it can
 *   exceed 2^53);
 * - arrays, not objects, so there is exactly one encoding: `decodeAnchor` re-encodes and rejects
 *   anything that is not byte-identical (no whitespace or key-order variants of the same anchor);
 * - `system.Remarked` carries blake2_256(bytes) (`remarkHash`), which is how a posted anchor is
 *   found again and how its block body is checked against the event.
 * Pure.
 */
import { blake2AsHex } from '@polkadot/util-crypto';
import type { CreditRecord } from '../pod/credit.ts';
import { utf8ToBytes } from '../util/bytes.ts';
import { settleError, SettleErrorCode } from './errors.ts';
import type { IdentityLink } from './identity.ts';
import type { SettleBlock } from './source.ts';

export const ANCHOR_PREFIX = 'mdrill:v1:';
/**
 * Upper bound on an anchor's size. 64 KiB: far below any FRAME runtime's block length limit
 * (node-template: 5 MiB) and fee-bounded; with ≤ 64 blocks per anchor (~170 B each) it leaves
 * room for ~250 identity links (~260 B each).
 */
export const MAX_ANCHOR_BYTES = 64 * 1024;
/** Most blocks one anchor may cover (`--every`). 64 keeps an anchor well under MAX_ANCHOR_BYTES. */
export const MAX_BLOCKS_PER_ANCHOR = 64;

/** One matrix-drill block as the anchor commits to it. */
export interface AnchoredBlock {
  height: number;
  hash: string;
  creditRoot: string;
  records: number;
  /** Σ flops × credited workers over the block's records. */
  creditedFlops: bigint;
}

export interface Anchor {
  /** The matrix-drill network (its genesis chain id). */
  chainId: string;
  /** Covered blocks, strictly ascending heights. */
  blocks: AnchoredBlock[];
  /** Identity links of trainers credited in these blocks, first time the settler anchors them. */
  links: IdentityLink[];
}

/** Σ flops × |credited| over records. */
export function creditedFlops(records: readonly CreditRecord[]): bigint {
  let t = 0n;
  for (const r of records) t += BigInt(r.flops) * BigInt(r.credited.length);
  return t;
}

/** The anchor entry for a block. */
export function anchoredBlock(b: SettleBlock): AnchoredBlock {
  return { height: b.height, hash: b.hash, creditRoot: b.creditRoot, records: b.records.length, creditedFlops: creditedFlops(b.records) };
}

/** Build an anchor over blocks (sorted by height here). */
export function buildAnchor(chainId: string, blocks: readonly SettleBlock[], links: readonly IdentityLink[] = []): Anchor {
  return {
    chainId,
    blocks: [...blocks].sort((a, b) => a.height - b.height).map(anchoredBlock),
    links: [...links].sort((a, b) => (a.peer < b.peer ? -1 : a.peer > b.peer ? 1 : 0)),
  };
}

/** Totals over the anchor's blocks. */
export function anchorTotals(a: Anchor): { blocks: number; records: number; creditedFlops: bigint } {
  let records = 0;
  let flops = 0n;
  for (const b of a.blocks) {
    records += b.records;
    flops += b.creditedFlops;
  }
  return { blocks: a.blocks.length, records, creditedFlops: flops };
}

function body(a: Anchor): string {
  return JSON.stringify([
    a.chainId,
    a.blocks.map((b) => [b.height, b.hash, b.creditRoot, b.records, b.creditedFlops.toString()]),
    a.links.map((l) => [l.peer, l.ss58, l.sigByPeer, l.sigBySs58]),
  ]);
}

/**
 * Encode an anchor to remark bytes.
 * @throws DrillError SETTLE_BAD_ANCHOR when the anchor is invalid or over MAX_ANCHOR_BYTES.
 */
export function encodeAnchor(a: Anchor): Uint8Array {
  const problem = anchorProblem(a);
  if (problem !== null) throw settleError(SettleErrorCode.BAD_ANCHOR, `anchor: ${problem}`);
  const bytes = utf8ToBytes(ANCHOR_PREFIX + body(a));
  if (bytes.length > MAX_ANCHOR_BYTES) throw settleError(SettleErrorCode.BAD_ANCHOR, `anchor: ${bytes.length} bytes exceeds ${MAX_ANCHOR_BYTES}`, { size: bytes.length });
  return bytes;
}

/** Does this remark look like a matrix-drill anchor (any version)? */
export function isAnchorRemark(bytes: Uint8Array): boolean {
  const p = utf8ToBytes('mdrill:v');
  return bytes.length >= p.length && p.every((c, i) => bytes[i] === c);
}

/** blake2_256 of the remark bytes, 0x-hex: what `system.Remarked` carries. */
export function remarkHash(bytes: Uint8Array): string {
  return blake2AsHex(bytes, 256);
}

const HEX32 = /^[0-9a-f]{64}$/;
const DEC = /^(0|[1-9][0-9]{0,60})$/;

function anchorProblem(a: Anchor): string | null {
  if (typeof a.chainId !== 'string' || a.chainId.length === 0 || a.chainId.length > 128) return 'chainId: expected a string of 1..128';
  if (!Array.isArray(a.blocks) || a.blocks.length === 0 || a.blocks.length > MAX_BLOCKS_PER_ANCHOR) return `blocks: expected 1..${MAX_BLOCKS_PER_ANCHOR}`;
  for (let i = 0; i < a.blocks.length; i++) {
    const b = a.blocks[i]!;
    if (!Number.isSafeInteger(b.height) || b.height < 0) return `blocks[${i}].height: expected a non-negative integer`;
    if (i > 0 && b.height <= a.blocks[i - 1]!.height) return `blocks[${i}].height: expected strictly ascending heights`;
    if (typeof b.hash !== 'string' || !HEX32.test(b.hash)) return `blocks[${i}].hash: expected 32-byte hex`;
    if (typeof b.creditRoot !== 'string' || !HEX32.test(b.creditRoot)) return `blocks[${i}].creditRoot: expected 32-byte hex`;
    if (!Number.isSafeInteger(b.records) || b.records < 0) return `blocks[${i}].records: expected a non-negative integer`;
    if (typeof b.creditedFlops !== 'bigint' || b.creditedFlops < 0n) return `blocks[${i}].creditedFlops: expected a non-negative bigint`;
  }
  if (!Array.isArray(a.links)) return 'links: expected an array';
  for (let i = 0; i < a.links.length; i++) {
    const l = a.links[i]!;
    if (typeof l.peer !== 'string' || l.peer.length === 0 || l.peer.length > 128) return `links[${i}].peer: expected a peer id`;
    if (typeof l.ss58 !== 'string' || l.ss58.length === 0 || l.ss58.length > 64) return `links[${i}].ss58: expected an SS58 address`;
    if (typeof l.sigByPeer !== 'string' || !/^[0-9a-f]{128}$/.test(l.sigByPeer)) return `links[${i}].sigByPeer: expected 64-byte hex`;
    if (typeof l.sigBySs58 !== 'string' || !/^[0-9a-f]{128}$/.test(l.sigBySs58)) return `links[${i}].sigBySs58: expected 64-byte hex`;
  }
  return null;
}

/**
 * Decode remark bytes into an anchor. Strict: prefix, version, shape, field formats and the
 * canonical encoding are all checked (identity-link signatures are not: see verifyIdentityLink).
 * @throws DrillError SETTLE_BAD_ANCHOR naming what is wrong.
 */
export function decodeAnchor(bytes: Uint8Array): Anchor {
  const bad = (why: string): never => {
    throw settleError(SettleErrorCode.BAD_ANCHOR, `not a matrix-drill v1 anchor: ${why}`);
  };
  if (bytes.length > MAX_ANCHOR_BYTES) bad(`${bytes.length} bytes exceeds ${MAX_ANCHOR_BYTES}`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return bad('not UTF-8');
  }
  if (!text.startsWith(ANCHOR_PREFIX)) return bad(text.startsWith('mdrill:v') ? `unsupported version ${JSON.stringify(text.slice(7, 12))}` : `missing prefix ${ANCHOR_PREFIX}`);
  let raw: unknown;
  try {
    raw = JSON.parse(text.slice(ANCHOR_PREFIX.length));
  } catch {
    return bad('body is not JSON');
  }
  if (!Array.isArray(raw) || raw.length !== 3) return bad('body: expected [chainId, blocks, links]');
  const [chainId, blocks, links] = raw as [unknown, unknown, unknown];
  if (!Array.isArray(blocks) || !Array.isArray(links)) return bad('blocks and links: expected arrays');
  const a: Anchor = {
    chainId: chainId as string,
    blocks: blocks.map((b: unknown, i) => {
      if (!Array.isArray(b) || b.length !== 5 || typeof b[4] !== 'string' || !DEC.test(b[4])) return bad(`blocks[${i}]: expected [height, hash, creditRoot, records, "flops"]`);
      return { height: b[0] as number, hash: b[1] as string, creditRoot: b[2] as string, records: b[3] as number, creditedFlops: BigInt(b[4]) };
    }),
    links: links.map((l: unknown, i) => {
      if (!Array.isArray(l) || l.length !== 4) return bad(`links[${i}]: expected [peer, ss58, sigByPeer, sigBySs58]`);
      return { peer: l[0] as string, ss58: l[1] as string, sigByPeer: l[2] as string, sigBySs58: l[3] as string };
    }),
  };
  const problem = anchorProblem(a);
  if (problem !== null) bad(problem);
  if (body(a) !== text.slice(ANCHOR_PREFIX.length)) bad('not in canonical encoding');
  return a;
}
