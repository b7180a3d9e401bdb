import { describe, it, expect } from 'vitest';
import { ChainState } from '../../src/chain/state.ts';
import { validateBlock } from '../../src/chain/validate.ts';
import type { Block } from '../../src/chain/block.ts';
import { makeEquivocation } from '../../src/chain/faults.ts';
import type { ChainFault } from '../../src/chain/faults.ts';
import { signCreditRecord } from '../../src/pod/credit.ts';
import type { CreditRecord } from '../../src/pod/credit.ts';
import { CreditLedger } from '../../src/pod/ledger.ts';
import { KEYS, COORD_SEED, testGenesis, fault, makeBlock, at } from './chain-fixture.ts';

const [A, B, C] = KEYS as [(typeof KEYS)[0], (typeof KEYS)[0], (typeof KEYS)[0]];
// testGenesis: allocations A 1000, B 2000, C 3000; 4-slot epochs, lookback 1 (epoch e's weights
// are the credit of buckets ≤ e − 2), c = 1 (every weighted producer wins every slot).

let unit = 0;
function jobCredit(worker: string, job: string, flops: number): CreditRecord {
  return signCreditRecord({ job, unit: unit++, resultDigest: 'ab'.repeat(32), flops, credited: [worker], faulty: [], status: 'agreed', time: 1 }, COORD_SEED);
}

function addValid(s: ChainState, b: Block): void {
  const v = validateBlock(s, b, at(1000));
  s.add(v.block, v.hash);
}

/** Extend the head of `s` by `key` at each slot, carrying what `at(slot)` says. */
function grow(s: ChainState, key: (typeof KEYS)[0], slots: number[], load: (slot: number) => { credits?: CreditRecord[]; faults?: ChainFault[] } = () => ({})): Block[] {
  return slots.map((slot) => {
    const { credits = [], faults = [] } = load(slot);
    const b = makeBlock(s, key, slot, s.head.hash, credits, faults);
    addValid(s, b);
    return b;
  });
}

const weightOf = (s: ChainState, who: string, epoch: number): bigint | undefined => s.epochSnapshot(s.head.hash, epoch).weights.get(who);

describe('faults in blocks', () => {
  it("a fault record forfeits the worker's credit for that job and bans its weight for faultEpochs; other jobs still count", () => {
    const s = new ChainState(testGenesis({ faultEpochs: 2 }));
    grow(s, A, [1, 5, 9, 13, 17, 21, 25], (slot) => {
      if (slot === 1) return { credits: [jobCredit(B.peerId, 'job-x', 500), jobCredit(B.peerId, 'job-y', 70)] }; // bucket 0
      if (slot === 5) return { faults: [fault(B.peerId, 'job-x')] }; // bucket 1: forfeit 500, ban buckets 1..2
      if (slot === 9) return { credits: [jobCredit(B.peerId, 'job-x', 900), jobCredit(B.peerId, 'job-y', 30)] }; // bucket 2: job-x gives nothing
      return {};
    });
    expect(weightOf(s, B.peerId, 2)).toBe(2000n + 500n + 70n); // snapshot bucket 0: before the fault
    expect(weightOf(s, B.peerId, 3)).toBeUndefined(); // bucket 1: banned
    expect(weightOf(s, B.peerId, 4)).toBeUndefined(); // bucket 2: banned
    expect(weightOf(s, B.peerId, 5)).toBe(2000n + 70n + 30n); // bucket 3: back, job-x forfeited, job-y kept
    expect(weightOf(s, A.peerId, 3)).toBe(1000n); // nobody else is touched
    expect(s.ledger.isForfeited(B.peerId, 'job-x')).toBe(true);
    expect(s.ledger.isForfeited(B.peerId, 'job-y')).toBe(false);
  });

  it('faultEpochs 0 forfeits the job credit without a ban', () => {
    const s = new ChainState(testGenesis({ faultEpochs: 0 }));
    grow(s, A, [1, 5, 9], (slot) => (slot === 1 ? { credits: [jobCredit(B.peerId, 'j', 500)] } : slot === 5 ? { faults: [fault(B.peerId, 'j')] } : {}));
    expect(weightOf(s, B.peerId, 3)).toBe(2000n);
  });

  it('a reorg that drops the block carrying the fault restores the weight, and the ledger equals a replay of the winner', () => {
    const g = testGenesis({ faultEpochs: 2 });
    const s = new ChainState(g);
    const shared = jobCredit(B.peerId, 'job-x', 500);
    // Branch 1 (A): the credit, then the fault.
    grow(s, A, [1, 5, 9], (slot) => (slot === 1 ? { credits: [shared] } : slot === 5 ? { faults: [fault(B.peerId, 'job-x')] } : {}));
    expect(weightOf(s, B.peerId, 3)).toBeUndefined();
    // Branch 2 (C), built privately: the same credit, no fault, one block more: it wins.
    const other = new ChainState(g);
    const blocks = grow(other, C, [2, 6, 10, 11], (slot) => (slot === 2 ? { credits: [shared] } : {}));
    for (const b of blocks) addValid(s, b);
    expect(s.head.hash).toBe(other.head.hash);
    expect(weightOf(s, B.peerId, 3)).toBe(2500n);
    expect(s.ledger.isForfeited(B.peerId, 'job-x')).toBe(false);
    expect([...s.ledger.window()]).toEqual([...other.ledger.window()]);
    // And back: branch 1 grows longer again; the fault applies again, exactly.
    const again = grow(new ChainState(g), A, [1, 5, 9, 12, 13], (slot) => (slot === 1 ? { credits: [shared] } : slot === 5 ? { faults: [fault(B.peerId, 'job-x')] } : {}));
    for (const b of again) {
      try {
        addValid(s, b);
      } catch {
        /* already known */
      }
    }
    expect(weightOf(s, B.peerId, 3)).toBeUndefined();
    expect(s.ledger.isForfeited(B.peerId, 'job-x')).toBe(true);
  });

  it('equivocation evidence bans the producer for faultEpochs and is accepted once per producer and slot', () => {
    const s = new ChainState(testGenesis({ faultEpochs: 1 }));
    const x = makeBlock(s, A, 1);
    const y = makeBlock(s, A, 1, undefined, [jobCredit(C.peerId, 'j', 1)]);
    grow(s, B, [1]);
    grow(s, B, [5], () => ({ faults: [makeEquivocation(x, y)] })); // bucket 1: ban bucket 1
    expect(weightOf(s, A.peerId, 3)).toBeUndefined();
    expect(weightOf(s, A.peerId, 4)).toBe(1000n);
    // The same offence shown with another pair of headers is a replay.
    const z = makeBlock(s, A, 1, s.genesisHash, [jobCredit(C.peerId, 'j', 2)]);
    expect(() => grow(s, B, [9], () => ({ faults: [makeEquivocation(x, z)] }))).toThrow(/already included/);
  });
});

describe('CreditLedger faults', () => {
  it('apply then revert in reverse order restores every window exactly (random sequences)', () => {
    let seed = 7;
    const rnd = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    for (let trial = 0; trial < 20; trial++) {
      const l = new CreditLedger();
      const ops: Array<() => void> = [];
      const undo: Array<() => void> = [];
      for (let i = 0; i < 40; i++) {
        const w = `w${rnd(3)}`;
        const job = `j${rnd(3)}`;
        const bucket = Math.floor(i / 5);
        if (rnd(4) === 0) {
          const f = { worker: w, job };
          ops.push(() => l.applyFault(f, bucket, 2));
          undo.push(() => l.revertFault(f, bucket, 2));
        } else {
          const r = { credited: [w], faulty: [], flops: 1 + rnd(100), job };
          ops.push(() => l.apply(r, bucket));
          undo.push(() => l.revert(r, bucket));
        }
      }
      const snapshots: string[] = [];
      const view = (): string => JSON.stringify([...l.window()].sort(), (_k, v) => (typeof v === 'bigint' ? v.toString() : v)) + [...l.bannedAt(3)].sort().join();
      for (const op of ops) {
        snapshots.push(view());
        op();
      }
      for (let i = ops.length - 1; i >= 0; i--) {
        undo[i]!();
        expect(view()).toBe(snapshots[i]);
      }
    }
  });
});
