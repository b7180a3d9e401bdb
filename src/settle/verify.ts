/**
 * Credit proofs against anchors: build a trainer's credit receipt (its credit records in one
 * matrix-drill block, each with a Merkle inclusion proof, plus where the block's anchor lies on
 * the Substrate chain) and check a receipt against what the chain holds.
 *
 * `checkReceipt` trusts nothing local: it reads the remark from the Substrate block body at the
 * recorded extrinsic index, checks it dispatched and that `system.Remarked` carries its hash,
 * decodes the anchor, finds the block by height AND hash, and checks each record's coordinator
 * signature, that it credits the worker, and its Merkle proof against the anchored credit root.
 */
import type { ApiPromise } from '@polkadot/api';
import { creditLeaf, creditRecordId, verifyCreditRecord } from '../pod/credit.ts';
import type { CreditRecord } from '../pod/credit.ts';
import { merkleProof, merkleRoot, verifyMerkleProof } from '../util/merkle.ts';
import type { MerkleProof } from '../util/merkle.ts';
import { decodeAnchor } from './anchor.ts';
import { settleError, SettleErrorCode } from './errors.ts';
import type { IdentityLink } from './identity.ts';
import { isSs58, verifyIdentityLink } from './identity.ts';
import type { SettleBlock } from './source.ts';
import type { SettleStore } from './store.ts';
import { readRemarkAt } from './substrate.ts';

/** One credit record of the trainer with its inclusion proof. */
export interface ProvenRecord {
  id: string;
  record: CreditRecord;
  proof: MerkleProof;
}

/** Everything needed to re-check a trainer's credit in one block against the chain alone. */
export interface CreditReceipt {
  /** Trainer's peer id. */
  worker: string;
  /** Trainer's Substrate address when a verified identity link is known. */
  ss58?: string;
  /** The identity link, when known. */
  link?: IdentityLink;
  height: number;
  blockHash: string;
  /** Substrate block holding the anchor, 0x-hex, and the extrinsic index in it. */
  substrateBlock: string;
  extrinsicIndex: number;
  /** FLOPs credited to this worker in this block (Σ record.flops over its records). */
  flops: string;
  records: ProvenRecord[];
}

/** Result printed by `drill verify-credit`. */
export type VerifyResult =
  | { anchored: true; substrateBlock: string; substrateBlockNumber: number; extrinsicIndex: number; root: string; credit: CreditReceipt }
  | { anchored: false; reason: string; substrateBlock?: string; root?: string };

/**
 * The worker's records in a stored block, each with a proof against the block's credit root.
 * @throws DrillError SETTLE_STORE_CORRUPT when the stored records do not hash to the stored root.
 */
export function proveWorkerCredit(block: SettleBlock, worker: string): ProvenRecord[] {
  const leaves = block.records.map(creditLeaf);
  const root = merkleRoot(leaves);
  if (root !== block.creditRoot) {
    throw settleError(SettleErrorCode.STORE_CORRUPT, `stored records of block ${block.height} hash to ${root}, not its credit root ${block.creditRoot}`, { height: block.height });
  }
  const out: ProvenRecord[] = [];
  block.records.forEach((r, i) => {
    if (r.credited.includes(worker)) out.push({ id: creditRecordId(r), record: r, proof: merkleProof(leaves, i) });
  });
  return out;
}

/**
 * Build a receipt from the settle store for `worker` (peer id or SS58 with a known link) in block `height`.
 * Returns a reason string instead when the store cannot make one.
 */
export function receiptFromStore(store: SettleStore, worker: string, height: number): CreditReceipt | string {
  const link = store.findLink(worker);
  const peer = link?.peer ?? worker;
  if (link === undefined && isSs58(worker)) return `no identity link known for ${worker} in ${store.path} (register it with drill settle --link FILE)`;
  const block = store.getBlock(height);
  if (block === undefined) return `block ${height} is not in the settle store ${store.path}`;
  const anchor = store.anchorForHeight(height);
  if (anchor === undefined) return `block ${height} is not covered by an anchor yet`;
  if (anchor.status !== 'posted' || anchor.substrateBlock === null || anchor.extIndex === null) return `the anchor of block ${height} is ${anchor.status}, not posted yet`;
  const records = proveWorkerCredit(block, peer);
  if (records.length === 0) return `block ${height} credits nothing to ${peer}`;
  const flops = records.reduce((t, r) => t + BigInt(r.record.flops), 0n).toString();
  const base: CreditReceipt = { worker: peer, height, blockHash: block.hash, substrateBlock: anchor.substrateBlock, extrinsicIndex: anchor.extIndex, flops, records };
  if (link !== undefined) {
    const { anchorId: _a, ...l } = link;
    return { ...base, ss58: link.ss58, link: l };
  }
  return base;
}

/** Check an untrusted receipt against the Substrate chain. Never throws on bad receipts; RPC failures propagate. */
export async function checkReceipt(api: ApiPromise, receipt: CreditReceipt): Promise<VerifyResult> {
  const no = (reason: string, extra: { substrateBlock?: string; root?: string } = {}): VerifyResult => ({ anchored: false, reason, ...extra });
  if (typeof receipt !== 'object' || receipt === null || !Array.isArray(receipt.records) || receipt.records.length === 0) return no('receipt has no records');
  if (typeof receipt.substrateBlock !== 'string' || !/^0x[0-9a-f]{64}$/.test(receipt.substrateBlock)) return no('receipt: substrateBlock is not a 32-byte 0x-hex hash');
  let header;
  try {
    header = await api.rpc.chain.getHeader(receipt.substrateBlock);
  } catch {
    return no(`the chain does not hold block ${receipt.substrateBlock}`, { substrateBlock: receipt.substrateBlock });
  }
  const canonical = (await api.rpc.chain.getBlockHash(header.number.toNumber())).toHex();
  if (canonical !== receipt.substrateBlock) return no(`substrate block ${receipt.substrateBlock} is not on the best chain (${canonical} is at #${header.number.toNumber()})`, { substrateBlock: receipt.substrateBlock });
  const at = await readRemarkAt(api, receipt.substrateBlock, receipt.extrinsicIndex);
  if (at === undefined) return no(`extrinsic ${receipt.extrinsicIndex} of ${receipt.substrateBlock} is not a system remark`, { substrateBlock: receipt.substrateBlock });
  if (!at.success) return no('the anchor extrinsic did not dispatch successfully', { substrateBlock: receipt.substrateBlock });
  let anchor;
  try {
    anchor = decodeAnchor(at.remark);
  } catch (e) {
    return no((e as Error).message, { substrateBlock: receipt.substrateBlock });
  }
  const entry = anchor.blocks.find((b) => b.height === receipt.height);
  if (entry === undefined) return no(`the anchor does not cover block ${receipt.height}`, { substrateBlock: receipt.substrateBlock });
  if (entry.hash !== receipt.blockHash) return no(`the anchor holds block ${receipt.height} as ${entry.hash}, not ${receipt.blockHash}`, { substrateBlock: receipt.substrateBlock, root: entry.creditRoot });
  const root = entry.creditRoot;
  let flops = 0n;
  for (const pr of receipt.records) {
    if (!verifyCreditRecord(pr.record)) return no(`record ${pr.id}: signature or shape invalid (forged or altered)`, { substrateBlock: receipt.substrateBlock, root });
    if (!pr.record.credited.includes(receipt.worker)) return no(`record ${pr.id} does not credit ${receipt.worker}`, { substrateBlock: receipt.substrateBlock, root });
    if (creditRecordId(pr.record) !== pr.id) return no(`record id ${pr.id} does not match the record`, { substrateBlock: receipt.substrateBlock, root });
    if (!verifyMerkleProof(root, creditLeaf(pr.record), pr.proof)) return no(`record ${pr.id}: Merkle proof does not reach the anchored credit root`, { substrateBlock: receipt.substrateBlock, root });
    flops += BigInt(pr.record.flops);
  }
  if (receipt.flops !== undefined && receipt.flops !== flops.toString()) return no(`receipt claims ${receipt.flops} FLOPs, its records credit ${flops}`, { substrateBlock: receipt.substrateBlock, root });
  if (receipt.ss58 !== undefined && (receipt.link === undefined || receipt.link.ss58 !== receipt.ss58)) return no('the receipt names an SS58 address without a matching identity link', { substrateBlock: receipt.substrateBlock, root });
  if (receipt.link !== undefined) {
    if (receipt.link.peer !== receipt.worker || !(await verifyIdentityLink(receipt.link))) return no('the identity link does not verify for this worker', { substrateBlock: receipt.substrateBlock, root });
  }
  return { anchored: true, substrateBlock: receipt.substrateBlock, substrateBlockNumber: at.blockNumber, extrinsicIndex: receipt.extrinsicIndex, root, credit: { ...receipt, flops: flops.toString() } };
}
