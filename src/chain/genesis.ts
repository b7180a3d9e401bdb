/**
 * The genesis configuration: everything every node of one network must agree on before the
 * first block — chain id, clock (genesis time, slot length), epoch length and lookback, the
 * lottery's c, the genesis randomness, the coordinators whose credit records count, and the
 * genesis credit allocations that give a fresh network its first weights.
 *
 * Total weight 0 is impossible by construction: `checkGenesis` requires genesis credits with
 * positive FLOPs, and genesis credits stay in every epoch's snapshot (bucket GENESIS_BUCKET,
 * never reverted, never outside the window). A network therefore always has producers; new
 * trainers join the lottery once coordinator credit for them reaches a snapshot.
 */
import { readFileSync } from 'node:fs';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, concatBytes, utf8ToBytes } from '../util/bytes.ts';
import { UserError } from '../util/errors.ts';
import { creditLeaf, creditRecordId, verifyCreditRecord } from '../pod/credit.ts';
import type { CreditRecord } from '../pod/credit.ts';
import { DEFAULT_C, DEFAULT_SLOT_MS } from '../vrf/lottery.ts';
import { chainError, ChainErrorCode } from './errors.ts';

export interface GenesisConfig {
  /** Network name; blocks carry it and other networks' blocks are rejected. */
  chainId: string;
  /** Start of slot 0, ms since the Unix epoch. */
  genesisTime: number;
  /** Slot length in ms. */
  slotMs: number;
  /** Slots per epoch. */
  epochSlots: number;
  /** Lottery c in (0, 1]: the probability that a slot has at least one winner. */
  c: number;
  /**
   * Epochs of lookback ≥ 1: epoch e's weights are the credit included in blocks of epochs
   * ≤ e − 1 − lookbackEpochs (plus genesis). With 1, the snapshot is frozen a whole epoch
   * before it is used, so credit cannot be bought just before a slot.
   */
  lookbackEpochs: number;
  /**
   * Epochs of credit that count in a snapshot (the "credited hashrate" window): epoch e's
   * weights are the credit of epochs e − lookback − windowEpochs … e − 1 − lookback, plus the
   * genesis allocations. 0 or absent = all history (the default).
   */
  windowEpochs?: number;
  /** Genesis randomness (32-byte hex): the epoch randomness of epochs 0 and 1. */
  randomness: string;
  /** Ed25519 public keys (hex) of the coordinators whose credit records count. */
  coordinators: string[];
  /** Genesis credit allocations (signed by a listed coordinator); their total must be > 0. */
  credits: CreditRecord[];
  /** Most credit records one block may carry (and, separately, most faults). */
  maxCreditsPerBlock: number;
  /**
   * Epochs a fault (a coordinator's fault record, or equivocation evidence) bans the worker's
   * lottery weight, counted in snapshot buckets from the epoch of the block that carries it.
   * Absent = DEFAULT_FAULT_EPOCHS.
   */
  faultEpochs?: number;
  /** Clock drift tolerated when judging "slot in the future", ms. Local policy: not part of
   * the genesis hash. */
  maxClockDriftMs: number;
}

/** The ledger bucket of genesis credits (block credits go to the bucket of their block's epoch). */
export const GENESIS_BUCKET = -1;

/**
 * Default epoch length: 32 slots. BABE uses 2,400 slots (4 h) to amortise its epoch change;
 * here an epoch only fixes a weight snapshot and randomness, and short epochs let newly
 * credited trainers join the lottery within ~2 epochs (~2 min at 2 s slots). 32 slots at
 * c = 1/4 still gives ~8 VRF outputs per epoch to seed the randomness of epoch e + 2.
 */
export const DEFAULT_EPOCH_SLOTS = 32;
/** Default lookback: one full epoch between the snapshot and its use (see lookbackEpochs). */
export const DEFAULT_LOOKBACK_EPOCHS = 1;
/**
 * Default cap on credit records per block: 512 records are ~350 KB of JSON (within the
 * 1 MiB block topic limit) and ~0.5 s of Ed25519 verification in JavaScript, inside a 2 s slot.
 */
export const DEFAULT_MAX_CREDITS_PER_BLOCK = 512;
/**
 * Default weight ban after a fault: 2 epochs. Long enough that a caught cheater loses block
 * production for a while beyond the credit it forfeits (at 32 slots × 2 s, ~2 minutes of the
 * lottery), short enough that an honest worker hit by a misconfigured model or a hardware fault
 * is back soon; operators tune it per network (`drill genesis --fault-epochs`).
 */
export const DEFAULT_FAULT_EPOCHS = 2;
/** Default clock drift allowance: 500 ms, NTP-synchronised hosts are well within it. */
export const DEFAULT_MAX_CLOCK_DRIFT_MS = 500;

export const defaultGenesisParams = {
  slotMs: DEFAULT_SLOT_MS,
  epochSlots: DEFAULT_EPOCH_SLOTS,
  c: DEFAULT_C,
  lookbackEpochs: DEFAULT_LOOKBACK_EPOCHS,
  maxCreditsPerBlock: DEFAULT_MAX_CREDITS_PER_BLOCK,
  maxClockDriftMs: DEFAULT_MAX_CLOCK_DRIFT_MS,
} as const;

const isHex32 = (v: unknown): boolean => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);

function bad(field: string, expected: string, received: unknown): never {
  throw chainError(ChainErrorCode.BAD_GENESIS, `genesis.${field}: expected ${expected}, received ${typeof received === 'string' ? JSON.stringify(received.slice(0, 40)) : String(received)}`, { field });
}

/**
 * Check a genesis config (operator input).
 * @throws DrillError CHAIN_BAD_GENESIS naming the field, what was expected and received.
 */
export function checkGenesis(g: GenesisConfig): void {
  if (typeof g.chainId !== 'string' || g.chainId.length === 0 || g.chainId.length > 128) bad('chainId', 'a string of 1..128 chars', g.chainId);
  if (!Number.isSafeInteger(g.genesisTime) || g.genesisTime < 0) bad('genesisTime', 'ms since the Unix epoch', g.genesisTime);
  if (!Number.isSafeInteger(g.slotMs) || g.slotMs < 10) bad('slotMs', 'an integer ≥ 10', g.slotMs);
  if (!Number.isSafeInteger(g.epochSlots) || g.epochSlots < 1) bad('epochSlots', 'an integer ≥ 1', g.epochSlots);
  if (typeof g.c !== 'number' || !(g.c > 0 && g.c <= 1)) bad('c', 'a number in (0, 1]', g.c);
  if (!Number.isSafeInteger(g.lookbackEpochs) || g.lookbackEpochs < 1) bad('lookbackEpochs', 'an integer ≥ 1', g.lookbackEpochs);
  if (g.windowEpochs !== undefined && (!Number.isSafeInteger(g.windowEpochs) || g.windowEpochs < 0)) bad('windowEpochs', 'an integer ≥ 0 (0 = all history)', g.windowEpochs);
  if (!isHex32(g.randomness)) bad('randomness', '32-byte lowercase hex', g.randomness);
  if (!Array.isArray(g.coordinators) || g.coordinators.length === 0 || !g.coordinators.every(isHex32)) bad('coordinators', 'a non-empty list of 32-byte hex Ed25519 public keys', g.coordinators);
  if (!Number.isSafeInteger(g.maxCreditsPerBlock) || g.maxCreditsPerBlock < 0 || g.maxCreditsPerBlock > 4096) bad('maxCreditsPerBlock', 'an integer in 0..4096', g.maxCreditsPerBlock);
  if (!Number.isSafeInteger(g.maxClockDriftMs) || g.maxClockDriftMs < 0) bad('maxClockDriftMs', 'an integer ≥ 0', g.maxClockDriftMs);
  if (g.faultEpochs !== undefined && (!Number.isSafeInteger(g.faultEpochs) || g.faultEpochs < 0 || g.faultEpochs > 1_000_000)) bad('faultEpochs', 'an integer in 0..1000000', g.faultEpochs);
  if (!Array.isArray(g.credits) || g.credits.length === 0) bad('credits', 'at least one genesis credit allocation (total weight must be > 0)', g.credits);
  const ids = new Set<string>();
  let total = 0n;
  g.credits.forEach((r, i) => {
    if (!verifyCreditRecord(r)) bad(`credits[${i}]`, 'a well-formed record with a valid coordinator signature', 'an invalid record');
    if (!g.coordinators.includes(r.coordinator)) bad(`credits[${i}].coordinator`, 'one of genesis.coordinators', r.coordinator);
    const id = creditRecordId(r);
    if (ids.has(id)) bad(`credits[${i}]`, 'distinct records', 'a duplicate');
    ids.add(id);
    total += BigInt(r.flops) * BigInt(r.credited.length);
  });
  if (total <= 0n) bad('credits', 'a positive total of credited FLOPs', '0');
}

/**
 * The genesis hash: parent of height-1 blocks; names the network's store. It covers every
 * consensus parameter and NOT `maxClockDriftMs`, a local policy (it only decides IGNORE vs
 * accept-now), so nodes may tune it without splitting the network.
 */
export function genesisHash(g: GenesisConfig): string {
  const params = [g.chainId, g.genesisTime, g.slotMs, g.epochSlots, g.c, g.lookbackEpochs, g.windowEpochs ?? 0, g.randomness, [...g.coordinators], g.maxCreditsPerBlock, faultEpochsOf(g)];
  return bytesToHex(sha256(concatBytes(utf8ToBytes('matrix-drill/genesis/v1'), utf8ToBytes(JSON.stringify(params)), ...g.credits.map((r) => sha256(creditLeaf(r))))));
}

/** The genesis' fault ban length in epochs (DEFAULT_FAULT_EPOCHS when absent). */
export function faultEpochsOf(g: Pick<GenesisConfig, 'faultEpochs'>): number {
  return g.faultEpochs ?? DEFAULT_FAULT_EPOCHS;
}

/**
 * Read a genesis config from a JSON file (what every node of a multi-process network shares).
 * @throws UserError naming the file when it is unreadable or not JSON; DrillError
 *   CHAIN_BAD_GENESIS naming the field when a value is wrong.
 */
export function readGenesisFile(path: string, flag = '--genesis'): GenesisConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UserError(flag, 'a readable genesis JSON file', path, (e as Error).message);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new UserError(flag, 'valid JSON', path, (e as Error).message);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new UserError(flag, 'a JSON object', path);
  const g = raw as GenesisConfig;
  checkGenesis(g);
  return g;
}
