/**
 * Slots, epochs and epoch randomness. Pure.
 *
 * slot(t)  = floor((t − genesisTime) / slotMs)            (negative before genesis)
 * epoch(s) = floor(s / epochSlots)
 *
 * Weights of epoch e = credit in blocks of epochs ≤ e − 1 − lookback on the branch (only the
 * last `windowEpochs` of them when that is > 0), plus the genesis allocations
 * (`snapshotBucket`, `windowStartBucket`). Epoch randomness follows BABE:
 *
 *   r(0) = r(1) = genesis randomness
 *   r(e) = SHA-256("matrix-drill/epoch-randomness/v1" ‖ r(e − 2) ‖ u64be(e) ‖ β₁ ‖ … ‖ βₙ)
 *
 * where β₁..βₙ are the VRF outputs of the branch's blocks in epoch e − 2, in chain order. The
 * outputs of epoch e − 2 are all known (and final on the branch) before epoch e begins, and no
 * producer can steer its own β (the VRF is unique); the last producers of epoch e − 2 can only
 * choose to withhold a block — BABE's known, bounded bias.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { concatBytes, utf8ToBytes } from '../util/bytes.ts';
import type { GenesisConfig } from './genesis.ts';
import { GENESIS_BUCKET } from './genesis.ts';

const RANDOMNESS_TAG = utf8ToBytes('matrix-drill/epoch-randomness/v1');

type Clock = Pick<GenesisConfig, 'genesisTime' | 'slotMs'>;

/** Slot at time `nowMs` (may be negative before genesis). */
export function slotAt(g: Clock, nowMs: number): number {
  return Math.floor((nowMs - g.genesisTime) / g.slotMs);
}

/** Start time (ms) of a slot. */
export function slotStartTime(g: Clock, slot: number): number {
  return g.genesisTime + slot * g.slotMs;
}

/** Epoch of a slot. */
export function epochOfSlot(g: Pick<GenesisConfig, 'epochSlots'>, slot: number): number {
  return Math.floor(slot / g.epochSlots);
}

/** First slot of an epoch. */
export function epochStartSlot(g: Pick<GenesisConfig, 'epochSlots'>, epoch: number): number {
  return epoch * g.epochSlots;
}

/**
 * The last ledger bucket (epoch) whose credit counts in epoch e's weights: e − 1 − lookback,
 * never below the genesis bucket (so epochs 0..lookback use the genesis allocations alone).
 */
export function snapshotBucket(g: Pick<GenesisConfig, 'lookbackEpochs'>, epoch: number): number {
  return Math.max(epoch - 1 - g.lookbackEpochs, GENESIS_BUCKET);
}

/**
 * First ledger bucket counted in epoch e's weights besides genesis: snapshotBucket − window + 1
 * for a window > 0, else −∞ (all history).
 */
export function windowStartBucket(g: Pick<GenesisConfig, 'lookbackEpochs' | 'windowEpochs'>, epoch: number): number {
  const w = g.windowEpochs ?? 0;
  return w > 0 ? snapshotBucket(g, epoch) - w + 1 : Number.NEGATIVE_INFINITY;
}

/** r(e) from r(e − 2) and the VRF outputs of epoch e − 2 (see the module comment). */
export function nextEpochRandomness(prev: Uint8Array, epoch: number, outputs: readonly Uint8Array[]): Uint8Array {
  const e = new Uint8Array(8);
  new DataView(e.buffer).setBigUint64(0, BigInt(epoch), false);
  return sha256(concatBytes(RANDOMNESS_TAG, prev, e, ...outputs));
}
