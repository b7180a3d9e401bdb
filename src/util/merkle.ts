/**
 * A binary SHA-256 Merkle tree with domain-separated leaves and nodes (RFC 6962 style):
 *   leaf  = H(0x00 ‖ data)      node = H(0x01 ‖ left ‖ right)
 * An odd node at a level is promoted unchanged (no duplication, so no CVE-2012-2459-style
 * second preimages). The root of the empty list is H(0x02). Used for the credit-record root in
 * blocks and for inclusion proofs against settlement anchors.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, concatBytes, hexToBytes, equalBytes } from './bytes.ts';

export interface MerkleProof {
  /** Index of the leaf. */
  index: number;
  /** Number of leaves in the tree. */
  size: number;
  /** Sibling hashes bottom-up, hex. */
  siblings: string[];
}

export function leafHash(data: Uint8Array): Uint8Array {
  return sha256(concatBytes(new Uint8Array([0]), data));
}

function nodeHash(l: Uint8Array, r: Uint8Array): Uint8Array {
  return sha256(concatBytes(new Uint8Array([1]), l, r));
}

function levels(leaves: Uint8Array[]): Uint8Array[][] {
  const out: Uint8Array[][] = [leaves.map(leafHash)];
  while (out[out.length - 1]!.length > 1) {
    const prev = out[out.length - 1]!;
    const next: Uint8Array[] = [];
    for (let i = 0; i < prev.length; i += 2) next.push(i + 1 < prev.length ? nodeHash(prev[i]!, prev[i + 1]!) : prev[i]!);
    out.push(next);
  }
  return out;
}

/** Root (hex) over the leaves' data, in order. */
export function merkleRoot(leaves: Uint8Array[]): string {
  if (leaves.length === 0) return bytesToHex(sha256(new Uint8Array([2])));
  const ls = levels(leaves);
  return bytesToHex(ls[ls.length - 1]![0]!);
}

/** Inclusion proof for leaf `index`. @throws RangeError when index is out of range. */
export function merkleProof(leaves: Uint8Array[], index: number): MerkleProof {
  if (!Number.isInteger(index) || index < 0 || index >= leaves.length) throw new RangeError(`leaf index ${index} out of range [0, ${leaves.length})`);
  const siblings: string[] = [];
  let i = index;
  for (const level of levels(leaves).slice(0, -1)) {
    const sib = i ^ 1;
    if (sib < level.length) siblings.push(bytesToHex(level[sib]!));
    i >>= 1;
  }
  return { index, size: leaves.length, siblings };
}

/** Check a proof of `data` against `rootHex`. Returns false (never throws) on malformed proofs. */
export function verifyMerkleProof(rootHex: string, data: Uint8Array, proof: MerkleProof): boolean {
  try {
    const { index, size } = proof;
    if (!Number.isInteger(index) || !Number.isInteger(size) || index < 0 || index >= size) return false;
    let h = leafHash(data);
    let i = index;
    let n = size;
    let k = 0;
    while (n > 1) {
      const sib = i ^ 1;
      if (sib < n) {
        const s = proof.siblings[k++];
        if (s === undefined) return false;
        const sb = hexToBytes(s);
        h = i & 1 ? nodeHash(sb, h) : nodeHash(h, sb);
      }
      i >>= 1;
      n = Math.ceil(n / 2);
    }
    return k === proof.siblings.length && equalBytes(h, hexToBytes(rootHex));
  } catch {
    return false;
  }
}
