/**
 * Error codes of the chain module. Validation throws a `BlockError` whose `code` names the rule
 * the block broke (one code per rule, `meta` says which field and what was expected/received).
 * `BLOCK_ERROR_VERDICTS` is the one table that turns these codes into gossip verdicts; the net
 * layer's `registerVerdicts` receives it (see topics.ts), so the mapping lives in one place.
 *
 * IGNORE = we cannot judge it now (too early, parent missing, already seen) — no penalty;
 * REJECT = the block is provably invalid — the relaying peer loses gossip score.
 */
import { DrillError } from '../util/errors.ts';

export const BlockErrorCode = {
  /** Bytes / JSON do not form a block (missing field, wrong type, bad hex, over-long list). */
  MALFORMED: 'BLOCK_MALFORMED',
  /** `chainId` differs from our genesis chain id. */
  WRONG_CHAIN: 'BLOCK_WRONG_CHAIN',
  /** We already hold a block with this hash. */
  ALREADY_KNOWN: 'BLOCK_ALREADY_KNOWN',
  /** `slot` is later than the current slot (clock drift allowance included). */
  FUTURE_SLOT: 'BLOCK_FUTURE_SLOT',
  /** `parent` is not a block we hold (we may fetch it and retry). */
  PARENT_UNKNOWN: 'BLOCK_PARENT_UNKNOWN',
  /** `slot` is not greater than the parent's slot. */
  SLOT_NOT_AFTER_PARENT: 'BLOCK_SLOT_NOT_AFTER_PARENT',
  /** `height` is not the parent's height + 1. */
  BAD_HEIGHT: 'BLOCK_BAD_HEIGHT',
  /** `producer` is not an Ed25519 libp2p peer id. */
  BAD_PRODUCER: 'BLOCK_BAD_PRODUCER',
  /** More credit records than `maxCreditsPerBlock`. */
  TOO_MANY_CREDITS: 'BLOCK_TOO_MANY_CREDITS',
  /** `creditRoot` / `creditCount` do not match the carried credit records. */
  CREDIT_ROOT_MISMATCH: 'BLOCK_CREDIT_ROOT_MISMATCH',
  /** The producer's Ed25519 signature over the header is invalid. */
  BAD_SIGNATURE: 'BLOCK_BAD_SIGNATURE',
  /** The VRF proof does not verify for the producer's key on (epoch randomness ‖ slot), or
   * `vrfOutput` is not the proof's output. */
  BAD_VRF_PROOF: 'BLOCK_BAD_VRF_PROOF',
  /** The VRF ticket is not below the producer's threshold at the epoch snapshot. */
  VRF_ABOVE_THRESHOLD: 'BLOCK_VRF_ABOVE_THRESHOLD',
  /** A credit record is malformed or its coordinator signature is invalid. */
  BAD_CREDIT_RECORD: 'BLOCK_BAD_CREDIT_RECORD',
  /** A credit record is signed by a coordinator the genesis does not authorise. */
  UNKNOWN_COORDINATOR: 'BLOCK_UNKNOWN_COORDINATOR',
  /** The same credit record appears twice in the block. */
  DUPLICATE_CREDIT: 'BLOCK_DUPLICATE_CREDIT',
  /** A credit record was already included by an ancestor on this branch (replay). */
  CREDIT_REPLAYED: 'BLOCK_CREDIT_REPLAYED',
  /** More faults than `maxCreditsPerBlock`. */
  TOO_MANY_FAULTS: 'BLOCK_TOO_MANY_FAULTS',
  /** `faultRoot` / `faultCount` do not match the carried faults. */
  FAULT_ROOT_MISMATCH: 'BLOCK_FAULT_ROOT_MISMATCH',
  /** A fault is invalid: a fault record not signed by a genesis coordinator, or equivocation
   * evidence whose headers are not two different, validly signed headers of one producer and slot. */
  BAD_FAULT: 'BLOCK_BAD_FAULT',
  /** The same fault appears twice in the block. */
  DUPLICATE_FAULT: 'BLOCK_DUPLICATE_FAULT',
  /** A fault was already included by an ancestor on this branch (replay). */
  FAULT_REPLAYED: 'BLOCK_FAULT_REPLAYED',
  /** The producer already made a different block for this slot (equivocation): the evidence is
   * kept for a block to carry, and the producer's further blocks for the slot are refused. A
   * node-local rule (it depends on what this node saw first), so it lives in ChainService. */
  EQUIVOCATION: 'BLOCK_EQUIVOCATION',
} as const;
export type BlockErrorCode = (typeof BlockErrorCode)[keyof typeof BlockErrorCode];

/** Gossip verdict per block error code — the single mapping the network layer uses. */
export const BLOCK_ERROR_VERDICTS: Readonly<Record<BlockErrorCode, 'ignore' | 'reject'>> = {
  [BlockErrorCode.MALFORMED]: 'reject',
  [BlockErrorCode.WRONG_CHAIN]: 'reject',
  [BlockErrorCode.ALREADY_KNOWN]: 'ignore',
  [BlockErrorCode.FUTURE_SLOT]: 'ignore',
  [BlockErrorCode.PARENT_UNKNOWN]: 'ignore',
  [BlockErrorCode.SLOT_NOT_AFTER_PARENT]: 'reject',
  [BlockErrorCode.BAD_HEIGHT]: 'reject',
  [BlockErrorCode.BAD_PRODUCER]: 'reject',
  [BlockErrorCode.TOO_MANY_CREDITS]: 'reject',
  [BlockErrorCode.CREDIT_ROOT_MISMATCH]: 'reject',
  [BlockErrorCode.BAD_SIGNATURE]: 'reject',
  [BlockErrorCode.BAD_VRF_PROOF]: 'reject',
  [BlockErrorCode.VRF_ABOVE_THRESHOLD]: 'reject',
  [BlockErrorCode.BAD_CREDIT_RECORD]: 'reject',
  [BlockErrorCode.UNKNOWN_COORDINATOR]: 'reject',
  [BlockErrorCode.DUPLICATE_CREDIT]: 'reject',
  [BlockErrorCode.CREDIT_REPLAYED]: 'reject',
  [BlockErrorCode.TOO_MANY_FAULTS]: 'reject',
  [BlockErrorCode.FAULT_ROOT_MISMATCH]: 'reject',
  [BlockErrorCode.BAD_FAULT]: 'reject',
  [BlockErrorCode.DUPLICATE_FAULT]: 'reject',
  [BlockErrorCode.FAULT_REPLAYED]: 'reject',
  [BlockErrorCode.EQUIVOCATION]: 'reject',
};

/** A block validation failure: `code` is the rule broken, `meta.field` the field at fault. */
export class BlockError extends DrillError {
  constructor(code: BlockErrorCode, field: string, message: string, meta: Record<string, unknown> = {}) {
    super(code, `${field}: ${message}`, { field, ...meta });
    this.name = 'BlockError';
  }
}

/** Codes of the credits topic validator (records gossiped for inclusion in blocks). */
export const CreditGossipErrorCode = {
  /** The record is not a well-formed credit record. */
  MALFORMED: 'CREDIT_MALFORMED',
  /** The coordinator signature is invalid. */
  BAD_SIGNATURE: 'CREDIT_BAD_SIGNATURE',
  /** The coordinator is not authorised by our genesis (ignored, not rejected: a relaying peer
   * may run a grid whose coordinator another network authorises). */
  UNKNOWN_COORDINATOR: 'CREDIT_UNKNOWN_COORDINATOR',
  /** Already in our mempool or on our canonical chain. */
  ALREADY_KNOWN: 'CREDIT_ALREADY_KNOWN',
} as const;
export type CreditGossipErrorCode = (typeof CreditGossipErrorCode)[keyof typeof CreditGossipErrorCode];

export const CREDIT_GOSSIP_VERDICTS: Readonly<Record<CreditGossipErrorCode, 'ignore' | 'reject'>> = {
  [CreditGossipErrorCode.MALFORMED]: 'reject',
  [CreditGossipErrorCode.BAD_SIGNATURE]: 'reject',
  [CreditGossipErrorCode.UNKNOWN_COORDINATOR]: 'ignore',
  [CreditGossipErrorCode.ALREADY_KNOWN]: 'ignore',
};

/** Codes of the faults topic validator (fault records and equivocation evidence gossiped for inclusion). */
export const FaultGossipErrorCode = {
  /** Not a well-formed fault record or equivocation evidence. */
  MALFORMED: 'FAULT_MALFORMED',
  /** A bad signature, or evidence that proves nothing. */
  INVALID: 'FAULT_INVALID',
  /** A fault record of a coordinator our genesis does not authorise (ignored, as for credits). */
  UNKNOWN_COORDINATOR: 'FAULT_UNKNOWN_COORDINATOR',
  /** Already pending or on our canonical chain. */
  ALREADY_KNOWN: 'FAULT_ALREADY_KNOWN',
} as const;
export type FaultGossipErrorCode = (typeof FaultGossipErrorCode)[keyof typeof FaultGossipErrorCode];

export const FAULT_GOSSIP_VERDICTS: Readonly<Record<FaultGossipErrorCode, 'ignore' | 'reject'>> = {
  [FaultGossipErrorCode.MALFORMED]: 'reject',
  [FaultGossipErrorCode.INVALID]: 'reject',
  [FaultGossipErrorCode.UNKNOWN_COORDINATOR]: 'ignore',
  [FaultGossipErrorCode.ALREADY_KNOWN]: 'ignore',
};

/** Error codes of chain configuration and storage (caller / operator problems, not gossip). */
export const ChainErrorCode = {
  /** The genesis config is invalid (field named in the message). */
  BAD_GENESIS: 'CHAIN_BAD_GENESIS',
  /** The store at this path belongs to another genesis. */
  STORE_GENESIS_MISMATCH: 'CHAIN_STORE_GENESIS_MISMATCH',
  /** The store holds a block that no longer decodes or links (corruption). */
  STORE_CORRUPT: 'CHAIN_STORE_CORRUPT',
  /** A service method was called in the wrong state (not started, already started). */
  BAD_STATE: 'CHAIN_BAD_STATE',
} as const;
export type ChainErrorCode = (typeof ChainErrorCode)[keyof typeof ChainErrorCode];

export function chainError(code: ChainErrorCode, message: string, meta: Record<string, unknown> = {}): DrillError {
  return new DrillError(code, message, meta);
}
