/**
 * Block validation: every rule a block must satisfy to join the block tree, as guard clauses,
 * cheapest first (lodestar's validation/block.ts style). Each failure throws a BlockError whose
 * code names the rule; the network layer turns codes into verdicts through
 * BLOCK_ERROR_VERDICTS. Pure: "now" and the chain state come in as arguments.
 *
 * Suite: ECVRF-EDWARDS25519-SHA512-TAI (RFC 9381 suite 0x03). TAI and ELL2 are equally secure
 * here (alpha is public; ELL2's constant-time hash-to-curve protects secret inputs, which the
 * lottery does not have), and TAI is what libsodium's VRF and Algorand use, so a node in
 * another language can verify our blocks with stock libraries.
 */
import { equalBytes, hexToBytes } from '../util/bytes.ts';
import { creditRecordId, verifyCreditRecord } from '../pod/credit.ts';
import { vrfVerify } from '../vrf/ecvrf.ts';
import type { Suite } from '../vrf/ecvrf.ts';
import { isWinner, lotteryAlpha, lotteryThreshold } from '../vrf/lottery.ts';
import type { Block } from './block.ts';
import { blockHash, checkBlockShape, creditRootOf, faultRootOf, producerPublicKey, verifyBlockSignature } from './block.ts';
import { chainFaultId, chainFaultInvalid } from './faults.ts';
import { BlockError, BlockErrorCode } from './errors.ts';
import { epochOfSlot, slotAt } from './epoch.ts';
import type { ChainState, EpochSnapshot } from './state.ts';

/** The VRF suite of the lottery (see the module comment). */
export const LOTTERY_SUITE: Suite = 'tai';

export interface ValidatedBlock {
  block: Block;
  hash: string;
  epoch: number;
  /** The producer's snapshot weight and the epoch total (for logs and the demo). */
  weight: bigint;
  total: bigint;
}

/**
 * Validate a block against the chain state at time `nowMs`.
 * @throws BlockError with the code of the first rule broken.
 */
export function validateBlock(state: ChainState, raw: Block, nowMs: number): ValidatedBlock {
  const g = state.genesis;
  // [REJECT] The block is structurally well-formed (fields, types, lengths).
  const block = checkBlockShape(raw);
  const h = block.header;
  // [REJECT] The block belongs to this network.
  if (h.chainId !== g.chainId) {
    throw new BlockError(BlockErrorCode.WRONG_CHAIN, 'header.chainId', `expected ${JSON.stringify(g.chainId)}, received ${JSON.stringify(h.chainId)}`);
  }
  const hash = blockHash(h);
  // [IGNORE] The block is not already known.
  if (state.has(hash)) {
    throw new BlockError(BlockErrorCode.ALREADY_KNOWN, 'hash', `block ${hash} is already known`, { hash });
  }
  // [IGNORE] The slot is not in the future (with the allowed clock drift).
  const currentSlot = slotAt(g, nowMs + g.maxClockDriftMs);
  if (h.slot > currentSlot) {
    throw new BlockError(BlockErrorCode.FUTURE_SLOT, 'header.slot', `expected ≤ ${currentSlot} (current slot with ${g.maxClockDriftMs} ms drift), received ${h.slot}`, { slot: h.slot, currentSlot });
  }
  // [REJECT] No more credit records than the genesis allows.
  if (block.credits.length > g.maxCreditsPerBlock) {
    throw new BlockError(BlockErrorCode.TOO_MANY_CREDITS, 'credits', `expected at most ${g.maxCreditsPerBlock} records, received ${block.credits.length}`);
  }
  // [REJECT] No more faults than the genesis allows.
  if (block.faults.length > g.maxCreditsPerBlock) {
    throw new BlockError(BlockErrorCode.TOO_MANY_FAULTS, 'faults', `expected at most ${g.maxCreditsPerBlock} faults, received ${block.faults.length}`);
  }
  // [IGNORE] The parent is known (the caller may fetch it and retry).
  const parent = state.getNode(h.parent);
  if (!parent) {
    throw new BlockError(BlockErrorCode.PARENT_UNKNOWN, 'header.parent', `parent ${h.parent} is not known`, { parent: h.parent, hash });
  }
  // [REJECT] The slot is after the parent's.
  if (h.slot <= parent.slot) {
    throw new BlockError(BlockErrorCode.SLOT_NOT_AFTER_PARENT, 'header.slot', `expected > ${parent.slot} (the parent's slot), received ${h.slot}`);
  }
  // [REJECT] The height is the parent's + 1.
  if (h.height !== parent.height + 1) {
    throw new BlockError(BlockErrorCode.BAD_HEIGHT, 'header.height', `expected ${parent.height + 1}, received ${h.height}`);
  }
  // [REJECT] The producer is an Ed25519 peer id (its key is the VRF and signing key).
  const pk = producerPublicKey(h.producer);
  if (!pk) {
    throw new BlockError(BlockErrorCode.BAD_PRODUCER, 'header.producer', `expected an Ed25519 libp2p peer id, received ${JSON.stringify(h.producer.slice(0, 60))}`);
  }
  // [REJECT] creditCount and creditRoot commit to the carried records.
  if (h.creditCount !== block.credits.length) {
    throw new BlockError(BlockErrorCode.CREDIT_ROOT_MISMATCH, 'header.creditCount', `expected ${block.credits.length} (records carried), received ${h.creditCount}`);
  }
  const root = creditRootOf(block.credits);
  if (root !== h.creditRoot) {
    throw new BlockError(BlockErrorCode.CREDIT_ROOT_MISMATCH, 'header.creditRoot', `expected ${root} (root over the records carried), received ${h.creditRoot}`);
  }
  // [REJECT] faultCount and faultRoot commit to the carried faults.
  if (h.faultCount !== block.faults.length) {
    throw new BlockError(BlockErrorCode.FAULT_ROOT_MISMATCH, 'header.faultCount', `expected ${block.faults.length} (faults carried), received ${h.faultCount}`);
  }
  const froot = faultRootOf(block.faults);
  if (froot !== h.faultRoot) {
    throw new BlockError(BlockErrorCode.FAULT_ROOT_MISMATCH, 'header.faultRoot', `expected ${froot} (root over the faults carried), received ${h.faultRoot}`);
  }
  // [REJECT] The producer signed the header.
  if (!verifyBlockSignature(block, pk)) {
    throw new BlockError(BlockErrorCode.BAD_SIGNATURE, 'sig', `not a valid Ed25519 signature by ${h.producer} over the header`);
  }
  // [REJECT] The VRF proof is valid for the producer's key on (epoch randomness ‖ slot), and
  // vrfOutput is its output.
  const epoch = epochOfSlot(g, h.slot);
  const snap: EpochSnapshot = state.epochSnapshot(parent.hash, epoch);
  const alpha = lotteryAlpha(snap.randomness, h.slot);
  const res = vrfVerify(LOTTERY_SUITE, pk, alpha, hexToBytes(h.vrfProof));
  if (!res.valid) {
    throw new BlockError(BlockErrorCode.BAD_VRF_PROOF, 'header.vrfProof', `not a valid ECVRF-TAI proof by ${h.producer} for slot ${h.slot} of epoch ${epoch}`);
  }
  const beta = res.beta;
  if (!equalBytes(hexToBytes(h.vrfOutput), beta)) {
    throw new BlockError(BlockErrorCode.BAD_VRF_PROOF, 'header.vrfOutput', 'expected the output of vrfProof');
  }
  // [REJECT] The ticket is under the producer's threshold at the epoch snapshot.
  const weight = snap.weights.get(h.producer) ?? 0n;
  const threshold = lotteryThreshold(g.c, weight, snap.total);
  if (!isWinner(beta, threshold)) {
    throw new BlockError(BlockErrorCode.VRF_ABOVE_THRESHOLD, 'header.vrfOutput', `ticket is not below the threshold for weight ${weight} of ${snap.total} in epoch ${epoch}`, { weight: weight.toString(), total: snap.total.toString() });
  }
  // Credit records, cheapest checks first: authorised coordinator, no duplicates, no replay on
  // this branch, then the signatures.
  const ids: string[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < block.credits.length; i++) {
    const r = block.credits[i]!;
    // [REJECT] Signed by a coordinator the genesis authorises.
    if (!g.coordinators.includes(r.coordinator)) {
      throw new BlockError(BlockErrorCode.UNKNOWN_COORDINATOR, `credits[${i}].coordinator`, `expected one of the genesis coordinators, received ${r.coordinator}`);
    }
    const id = creditRecordId(r);
    // [REJECT] Not twice in the block.
    if (seen.has(id)) throw new BlockError(BlockErrorCode.DUPLICATE_CREDIT, `credits[${i}]`, `record ${id} appears twice in the block`, { id });
    seen.add(id);
    ids.push(id);
  }
  // [REJECT] Not already included by an ancestor on this branch.
  const replayed = state.replayedCredit(parent.hash, ids);
  if (replayed !== null) {
    throw new BlockError(BlockErrorCode.CREDIT_REPLAYED, `credits[${ids.indexOf(replayed)}]`, `record ${replayed} was already included on this branch`, { id: replayed });
  }
  // [REJECT] Each record carries its coordinator's valid signature.
  for (let i = 0; i < block.credits.length; i++) {
    if (!verifyCreditRecord(block.credits[i])) {
      throw new BlockError(BlockErrorCode.BAD_CREDIT_RECORD, `credits[${i}].sig`, `not a valid signature by coordinator ${block.credits[i]!.coordinator}`);
    }
  }
  // Faults, as credit records: no duplicates, no replay on this branch, then the proofs.
  const fids: string[] = [];
  const fseen = new Set<string>();
  for (let i = 0; i < block.faults.length; i++) {
    const id = chainFaultId(block.faults[i]!);
    // [REJECT] Not twice in the block.
    if (fseen.has(id)) throw new BlockError(BlockErrorCode.DUPLICATE_FAULT, `faults[${i}]`, `fault ${id} appears twice in the block`, { id });
    fseen.add(id);
    fids.push(id);
  }
  // [REJECT] Not already included by an ancestor on this branch.
  const freplayed = state.replayedCredit(parent.hash, fids);
  if (freplayed !== null) {
    throw new BlockError(BlockErrorCode.FAULT_REPLAYED, `faults[${fids.indexOf(freplayed)}]`, `fault ${freplayed} was already included on this branch`, { id: freplayed });
  }
  // [REJECT] A fault record signed by a genesis coordinator; equivocation evidence that proves it.
  for (let i = 0; i < block.faults.length; i++) {
    const why = chainFaultInvalid(block.faults[i]!, g);
    if (why !== null) throw new BlockError(BlockErrorCode.BAD_FAULT, `faults[${i}]`, why);
  }
  return { block, hash, epoch, weight, total: snap.total };
}
