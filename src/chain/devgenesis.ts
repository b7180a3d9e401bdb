/**
 * Genesis for development networks (devnet, tests, demo): allocations of genesis credit to
 * given producers, signed by a devnet coordinator key that the genesis authorises. Real
 * networks write their genesis config by hand; this only saves boilerplate.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '../util/bytes.ts';
import { signCreditRecord } from '../pod/credit.ts';
import type { GenesisConfig } from './genesis.ts';
import { defaultGenesisParams } from './genesis.ts';

export interface DevGenesisOptions {
  chainId?: string;
  genesisTime: number;
  /** Initial credited FLOPs per producer peer id (> 0 each). */
  allocations: ReadonlyArray<{ peerId: string; flops: number }>;
  /** 32-byte seed of the devnet coordinator that signs the allocations. */
  coordinatorSeed: Uint8Array;
  /** Extra authorised coordinators (hex public keys), e.g. the grid's coordinator. */
  extraCoordinators?: string[];
  slotMs?: number;
  epochSlots?: number;
  c?: number;
  lookbackEpochs?: number;
  windowEpochs?: number;
  maxCreditsPerBlock?: number;
  maxClockDriftMs?: number;
  /** Epochs a fault bans the worker's lottery weight (DEFAULT_FAULT_EPOCHS when absent). */
  faultEpochs?: number;
}

/** A genesis config with one signed allocation record per producer. */
export function makeDevGenesis(o: DevGenesisOptions): GenesisConfig {
  const chainId = o.chainId ?? 'matrix-drill-devnet';
  const coordinator = bytesToHex(ed25519.getPublicKey(o.coordinatorSeed));
  const credits = o.allocations.map((a, i) =>
    signCreditRecord(
      { job: 'genesis', unit: i, resultDigest: bytesToHex(sha256(utf8ToBytes(`genesis/${chainId}/${a.peerId}`))), flops: a.flops, credited: [a.peerId], faulty: [], status: 'agreed', time: o.genesisTime },
      o.coordinatorSeed,
    ),
  );
  return {
    chainId,
    genesisTime: o.genesisTime,
    slotMs: o.slotMs ?? defaultGenesisParams.slotMs,
    epochSlots: o.epochSlots ?? defaultGenesisParams.epochSlots,
    c: o.c ?? defaultGenesisParams.c,
    lookbackEpochs: o.lookbackEpochs ?? defaultGenesisParams.lookbackEpochs,
    ...(o.windowEpochs ? { windowEpochs: o.windowEpochs } : {}),
    randomness: bytesToHex(sha256(utf8ToBytes(`matrix-drill/genesis-randomness/${chainId}/${o.genesisTime}`))),
    coordinators: [coordinator, ...(o.extraCoordinators ?? [])],
    credits,
    maxCreditsPerBlock: o.maxCreditsPerBlock ?? defaultGenesisParams.maxCreditsPerBlock,
    maxClockDriftMs: o.maxClockDriftMs ?? defaultGenesisParams.maxClockDriftMs,
    ...(o.faultEpochs !== undefined ? { faultEpochs: o.faultEpochs } : {}),
  };
}
