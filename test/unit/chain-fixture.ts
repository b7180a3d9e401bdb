/** Shared fixtures of the chain tests: deterministic keys, a dev genesis, block builders. */
import { sha256 } from '@noble/hashes/sha2.js';
import { utf8ToBytes } from '../../src/util/bytes.ts';
import { signCreditRecord } from '../../src/pod/credit.ts';
import type { CreditRecord } from '../../src/pod/credit.ts';
import { signFaultRecord } from '../../src/pod/fault.ts';
import type { FaultRecord } from '../../src/pod/fault.ts';
import type { ChainFault } from '../../src/chain/faults.ts';
import { makeDevGenesis } from '../../src/chain/devgenesis.ts';
import type { DevGenesisOptions } from '../../src/chain/devgenesis.ts';
import { producerKeyFromSeed, slotTicket, buildBlock } from '../../src/chain/produce.ts';
import type { ProducerKey } from '../../src/chain/produce.ts';
import type { Block, BlockHeader } from '../../src/chain/block.ts';
import { signBlock } from '../../src/chain/block.ts';
import type { ChainState } from '../../src/chain/state.ts';

export const seed = (label: string): Uint8Array => sha256(utf8ToBytes(`chain-test/${label}`));
export const COORD_SEED = seed('coordinator');
export const OTHER_COORD_SEED = seed('rogue-coordinator');
export const KEYS: ProducerKey[] = ['p0', 'p1', 'p2'].map((l) => producerKeyFromSeed(seed(l)));
export const OUTSIDER = producerKeyFromSeed(seed('outsider'));

/** Genesis time 0, 1 s slots, 4-slot epochs, c = 1 (every weighted producer wins every slot). */
export function testGenesis(over: Partial<DevGenesisOptions> = {}) {
  return makeDevGenesis({
    genesisTime: 0,
    slotMs: 1000,
    epochSlots: 4,
    c: 1,
    lookbackEpochs: 1,
    maxClockDriftMs: 0,
    coordinatorSeed: COORD_SEED,
    allocations: KEYS.map((k, i) => ({ peerId: k.peerId, flops: (i + 1) * 1000 })),
    ...over,
  });
}

let unitCounter = 0;
/** A fresh credit record crediting `workers` with `flops` each. */
export function credit(workers: string[], flops = 100, coordSeed = COORD_SEED): CreditRecord {
  const unit = unitCounter++;
  return signCreditRecord(
    { job: 'job-test', unit, resultDigest: Buffer.from(sha256(utf8ToBytes(`r${unit}`))).toString('hex'), flops, credited: workers, faulty: [], status: 'agreed', time: 1 },
    coordSeed,
  );
}

/** A coordinator's fault record against `worker` in `job`. */
export function fault(worker: string, job = 'job-test', reasons = ['minority:0'], coordSeed = COORD_SEED): FaultRecord {
  return signFaultRecord({ job, worker, reasons, time: 1 }, coordSeed);
}

/** A block by `key` at `slot` on `parent` carrying `credits` and `faults`, with a real VRF proof. */
export function makeBlock(state: ChainState, key: ProducerKey, slot: number, parent: string = state.head.hash, credits: CreditRecord[] = [], faults: ChainFault[] = []): Block {
  const t = slotTicket(state, key, slot, parent);
  return buildBlock(state, key, slot, parent, t, credits, faults);
}

/** Change header fields and re-sign with `key` (so only the changed rule breaks). */
export function resign(b: Block, key: ProducerKey, change: Partial<BlockHeader>, credits: CreditRecord[] = b.credits, faults: ChainFault[] = b.faults): Block {
  return signBlock({ ...b.header, ...change }, credits, faults, key.seed);
}

/** Time (ms) inside `slot` for the test genesis. */
export const at = (slot: number): number => slot * 1000 + 1;
