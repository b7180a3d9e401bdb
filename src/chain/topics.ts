/**
 * Gossip topics and the request/response protocol of the chain, plus the one call that maps
 * chain error codes to gossip verdicts (`registerChainVerdicts`, using BLOCK_ERROR_VERDICTS).
 *
 *  - `matrix-drill/blocks/1`: blocks (JSON envelope {v:1, block}); validated by ChainService.
 *  - `matrix-drill/credits/1`: PoD credit records published by coordinators; each node keeps a
 *    bounded mempool of valid unseen records and includes them in the next block it produces.
 *  - `/matrix-drill/block/1`: fetch a block by hash (request: the 64-char hex hash; response:
 *    the block envelope), used to fetch unknown parents.
 */
import { jsonCodec, registerVerdicts } from '../net/topics.ts';
import type { TopicSpec } from '../net/topics.ts';
import type { DrillNode } from '../net/node.ts';
import { creditRecordProblem, verifyCreditRecord } from '../pod/credit.ts';
import type { CreditRecord } from '../pod/credit.ts';
import { DrillError } from '../util/errors.ts';
import type { Block } from './block.ts';
import { checkBlockShape, copyCredit } from './block.ts';
import { BLOCK_ERROR_VERDICTS, CREDIT_GOSSIP_VERDICTS, CreditGossipErrorCode, FAULT_GOSSIP_VERDICTS, FaultGossipErrorCode } from './errors.ts';
import { chainFaultProblem, copyChainFault } from './faults.ts';
import type { ChainFault } from './faults.ts';

export const BLOCKS_TOPIC_NAME = 'matrix-drill/blocks/1';
export const CREDITS_TOPIC_NAME = 'matrix-drill/credits/1';
export const FAULTS_TOPIC_NAME = 'matrix-drill/faults/1';
export const BLOCK_REQUEST_PROTOCOL = '/matrix-drill/block/1';

/** Largest block message: 512 credit records of ~700 bytes JSON plus the header ≈ 360 KB;
 * 1 MiB leaves room for the structural maximum of larger genesis caps. */
export const BLOCK_MAX_BYTES = 1024 * 1024;
/** Largest credit record message: a record crediting the maximum 1,024 + 1,024 peer ids of
 * ≤ 128 chars is ~270 KB; typical records are < 1 KB. */
export const CREDIT_MAX_BYTES = 300 * 1024;

const blockCodec = jsonCodec<{ block: Block }>({
  version: 1,
  maxBytes: BLOCK_MAX_BYTES,
  check: (raw) => ({ block: checkBlockShape((raw as { block?: unknown }).block) }),
});

/** Encode a block as the wire envelope (gossip and block requests). */
export function encodeBlock(block: Block): Uint8Array {
  return blockCodec.encode({ block });
}

/** Decode a block envelope. @throws DrillError CODEC_* / BLOCK_MALFORMED (as CODEC_SCHEMA). */
export function decodeBlock(bytes: Uint8Array): Block {
  return blockCodec.decode(bytes).block;
}

/** The blocks TopicSpec with a given validator (ChainService supplies its own). */
export function blocksTopic(validate?: (b: Block, from: string) => 'accept' | 'ignore' | 'reject' | Promise<'accept' | 'ignore' | 'reject'>): TopicSpec<Block> {
  const spec: TopicSpec<Block> = { name: BLOCKS_TOPIC_NAME, maxBytes: BLOCK_MAX_BYTES, encode: encodeBlock, decode: decodeBlock };
  if (validate) spec.validate = validate;
  return spec;
}

const creditCodec = jsonCodec<{ record: CreditRecord }>({
  version: 1,
  maxBytes: CREDIT_MAX_BYTES,
  check: (raw) => {
    const r = (raw as { record?: unknown }).record;
    const p = creditRecordProblem(r);
    if (p !== null) throw new DrillError(CreditGossipErrorCode.MALFORMED, `record: ${p}`);
    return { record: copyCredit(r as CreditRecord) };
  },
});

/**
 * The credits TopicSpec. The default validator checks the coordinator signature only (any
 * node may relay); ChainService adds the authorised-coordinator and already-seen checks.
 */
export function creditsTopic(validate?: (r: CreditRecord, from: string) => 'accept' | 'ignore' | 'reject' | Promise<'accept' | 'ignore' | 'reject'>): TopicSpec<CreditRecord> {
  return {
    name: CREDITS_TOPIC_NAME,
    maxBytes: CREDIT_MAX_BYTES,
    encode: (r) => creditCodec.encode({ record: r }),
    decode: (b) => creditCodec.decode(b).record,
    validate: validate ?? ((r) => (verifyCreditRecord(r) ? 'accept' : 'reject')),
  };
}

/** The credits topic with the signature-only validator (for publishers that do not run a chain). */
export const CREDITS_TOPIC: TopicSpec<CreditRecord> = creditsTopic();

/**
 * Publish a PoD credit record for block producers to include (the coordinator side calls this
 * after PoD verifies a unit). The node need not subscribe to the topic.
 * @throws NetError as DrillNode.publish (CODEC_TOO_LARGE, NET_STOPPED).
 */
export async function publishCreditRecord(node: DrillNode, record: CreditRecord): Promise<{ recipients: number }> {
  return node.publish(CREDITS_TOPIC, record);
}

/** Largest fault message: equivocation evidence is two headers (~1 KB); a fault record lists
 * at most 64 reasons. 16 KiB is ample. */
export const FAULT_MAX_BYTES = 16 * 1024;

const faultCodec = jsonCodec<{ fault: ChainFault }>({
  version: 1,
  maxBytes: FAULT_MAX_BYTES,
  check: (raw) => {
    const f = (raw as { fault?: unknown }).fault;
    const p = chainFaultProblem(f);
    if (p !== null) throw new DrillError(FaultGossipErrorCode.MALFORMED, `fault: ${p}`);
    return { fault: copyChainFault(f as ChainFault) };
  },
});

/**
 * The faults TopicSpec: coordinators' fault records and equivocation evidence, gossiped for
 * inclusion in blocks. ChainService supplies the validator (proof, genesis, already seen);
 * publishers that do not run a chain use the plain spec (no validator runs on publish).
 */
export function faultsTopic(validate?: (f: ChainFault, from: string) => 'accept' | 'ignore' | 'reject' | Promise<'accept' | 'ignore' | 'reject'>): TopicSpec<ChainFault> {
  const spec: TopicSpec<ChainFault> = {
    name: FAULTS_TOPIC_NAME,
    maxBytes: FAULT_MAX_BYTES,
    encode: (f) => faultCodec.encode({ fault: f }),
    decode: (b) => faultCodec.decode(b).fault,
  };
  if (validate) spec.validate = validate;
  return spec;
}

export const FAULTS_TOPIC: TopicSpec<ChainFault> = faultsTopic();

/** Publish a fault (a coordinator's fault record) for block producers to include. */
export async function publishFault(node: DrillNode, fault: ChainFault): Promise<{ recipients: number }> {
  return node.publish(FAULTS_TOPIC, fault);
}

/** Register the chain's error codes with the net layer's verdict table (idempotent). */
export function registerChainVerdicts(): void {
  registerVerdicts({ ...BLOCK_ERROR_VERDICTS, ...CREDIT_GOSSIP_VERDICTS, ...FAULT_GOSSIP_VERDICTS });
}
