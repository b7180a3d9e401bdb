import { describe, it, expect } from 'vitest';
import { ChainState } from '../../src/chain/state.ts';
import type { BlockNode } from '../../src/chain/state.ts';
import { validateBlock } from '../../src/chain/validate.ts';
import { blockHash } from '../../src/chain/block.ts';
import type { Block } from '../../src/chain/block.ts';
import { compareHeads, bestHead } from '../../src/chain/forkchoice.ts';
import type { CreditLedger } from '../../src/pod/ledger.ts';
import { creditRecordId } from '../../src/pod/credit.ts';
import { KEYS, testGenesis, credit, makeBlock, at } from './chain-fixture.ts';

const [A, B, C] = KEYS as [(typeof KEYS)[0], (typeof KEYS)[0], (typeof KEYS)[0]];

function addValid(s: ChainState, b: Block) {
  const v = validateBlock(s, b, at(1000));
  return s.add(v.block, v.hash);
}

const ledgerView = (l: CreditLedger) => [...l.window().entries()].sort(([a], [b]) => (a < b ? -1 : 1));

describe('fork choice', () => {
  it('prefers more primary blocks, then the lower tip VRF ticket, then the lower hash', () => {
    const n = (hash: string, primaryCount: number, vrfOutput: string) => ({ hash, primaryCount, vrfOutput });
    expect(compareHeads(n('ff', 3, 'ff'.repeat(64)), n('00', 2, '00'.repeat(64)))).toBeLessThan(0);
    expect(compareHeads(n('ff', 2, '01'.repeat(64)), n('00', 2, '02'.repeat(64)))).toBeLessThan(0);
    expect(compareHeads(n('01', 2, '05'.repeat(64)), n('02', 2, '05'.repeat(64)))).toBeLessThan(0);
    expect(bestHead([n('a', 1, '9'.repeat(128)), n('b', 2, 'f'.repeat(128)), n('c', 2, 'e'.repeat(128))])!.hash).toBe('c');
  });

  it('picks the same head whatever order competing blocks of one slot arrive in', () => {
    const heads = [0, 1].map((order) => {
      const s = new ChainState(testGenesis());
      const bs = [makeBlock(s, A, 1), makeBlock(s, B, 1), makeBlock(s, C, 1)];
      for (const b of order ? bs.reverse() : bs) addValid(s, b);
      return s.head.hash;
    });
    expect(heads[0]).toBe(heads[1]);
  });
});

describe('reorg', () => {
  // Two branches from genesis with different credit records, crossing epoch boundaries
  // (4-slot epochs, lookback 1) so credit of epoch 0 enters the snapshot of epoch 2.
  function build(key: (typeof KEYS)[0], slots: number[], creditsAt: (slot: number) => ReturnType<typeof credit>[]): Block[] {
    const builder = new ChainState(testGenesis()); // a private copy of the branch's history
    const out: Block[] = [];
    for (const slot of slots) {
      const b = makeBlock(builder, key, slot, builder.head.hash, creditsAt(slot));
      addValid(builder, b);
      out.push(b);
    }
    return out;
  }
  function branches(s: ChainState) {
    const shared = credit([A.peerId], 50);
    const a = build(A, [1, 5, 9], (slot) => [credit([A.peerId], 500), ...(slot === 5 ? [shared] : [])]);
    const b = build(B, [2, 3, 6, 10], (slot) => [credit([B.peerId, C.peerId], 300), ...(slot === 6 ? [shared] : [])]);
    for (const blk of a) addValid(s, blk);
    return { a, b };
  }

  it('moves the ledger to the longer branch: equal to replaying that branch from scratch', () => {
    const s = new ChainState(testGenesis());
    const { a, b } = branches(s);
    expect(s.head.hash).toBe(blockHash(a[2]!.header));
    const results = b.map((blk) => addValid(s, blk));
    // B overtakes A at its 3rd block (a tie on height, won on the tip ticket) or at its 4th
    // (longer): either way exactly one reorg of depth 3 back to genesis.
    const reorgs = results.filter((r) => r.reorg !== undefined);
    expect(reorgs).toHaveLength(1);
    expect(reorgs[0]!.reorg).toMatchObject({ depth: 3, ancestor: s.genesisHash, from: blockHash(a[2]!.header) });
    expect(results[3]!.headChanged).toBe(true);
    expect(s.reorgCount).toBe(1);
    expect(s.orphanCount()).toBe(3);

    const replay = new ChainState(testGenesis());
    for (const blk of b) addValid(replay, blk);
    expect(ledgerView(s.ledger)).toEqual(ledgerView(replay.ledger));
    expect(s.head.hash).toBe(replay.head.hash);
    // Snapshots and randomness on the new head agree with the replay.
    for (const e of [0, 1, 2, 3, 4]) {
      const x = s.epochSnapshot(s.head.hash, e);
      const y = replay.epochSnapshot(replay.head.hash, e);
      expect(x.weights).toEqual(y.weights);
      expect(x.total).toBe(y.total);
      expect(x.randomness).toEqual(y.randomness);
    }
    // Reorg back: extend A past B, and the ledger equals a replay of A.
    const a3 = makeBlock(s, A, 13, blockHash(a[2]!.header), [credit([A.peerId], 7)]);
    const r3 = addValid(s, a3);
    const a4 = makeBlock(s, A, 14, blockHash(a3.header));
    const r4 = addValid(s, a4);
    expect([r3, r4].filter((r) => r.reorg).map((r) => r.reorg!.depth)).toEqual([4]);
    expect(s.head.hash).toBe(blockHash(a4.header));
    const replayA = new ChainState(testGenesis());
    for (const blk of [...a, a3, a4]) addValid(replayA, blk);
    expect(ledgerView(s.ledger)).toEqual(ledgerView(replayA.ledger));
  });

  it('snapshots follow the branch: epoch 2 weights include epoch-0 credit of that branch only', () => {
    const s = new ChainState(testGenesis());
    const { a, b } = branches(s);
    for (const blk of b.slice(0, 3)) addValid(s, blk); // B shorter: A stays head
    const aTip = blockHash(a[2]!.header);
    const bTip = blockHash(b[2]!.header);
    const wa = s.epochSnapshot(aTip, 2).weights;
    const wb = s.epochSnapshot(bTip, 2).weights;
    expect(wa.get(A.peerId)).toBe(1000n + 500n); // genesis + A's epoch-0 block (slot 1)
    expect(wb.get(A.peerId)).toBe(1000n);
    expect(wb.get(B.peerId)).toBe(2000n + 600n); // genesis + B's two epoch-0 blocks
    expect(wb.get(C.peerId)).toBe(3000n + 600n);
    // Epoch 1 uses genesis only (lookback 1); randomness of epoch 2 differs per branch.
    expect(s.epochSnapshot(aTip, 1).total).toBe(6000n);
    expect(s.epochSnapshot(aTip, 2).randomness).not.toEqual(s.epochSnapshot(bTip, 2).randomness);
    expect(s.epochSnapshot(aTip, 1).randomness).toEqual(s.epochSnapshot(bTip, 1).randomness);
  });

  it('the head is never a block that fork choice ranks below another known block', () => {
    const s = new ChainState(testGenesis());
    const { b } = branches(s);
    for (const blk of b) addValid(s, blk);
    const all = [...s.nodes()] as BlockNode[];
    expect(bestHead(all)!.hash).toBe(s.head.hash);
  });
});

describe('weight window', () => {
  it('windowEpochs = 1 counts only the last snapshot epoch plus genesis, on canonical and forked branches alike', () => {
    const g = testGenesis({ windowEpochs: 1 });
    const s = new ChainState(g);
    // 4-slot epochs, lookback 1: epoch 3's snapshot bucket is 1, its window [1, 1].
    for (const [slot, f] of [[1, 100], [5, 20], [9, 3]] as const) {
      const b = makeBlock(s, A, slot, s.head.hash, [credit([B.peerId], f)]);
      addValid(s, b);
    }
    const tip = s.head.hash;
    expect(s.epochSnapshot(tip, 2).weights.get(B.peerId)).toBe(2000n + 100n); // bucket 0
    expect(s.epochSnapshot(tip, 3).weights.get(B.peerId)).toBe(2000n + 20n); // bucket 1 only
    expect(s.epochSnapshot(tip, 4).weights.get(B.peerId)).toBe(2000n + 3n); // bucket 2 only
    expect(s.epochSnapshot(tip, 6).weights.get(B.peerId)).toBe(2000n); // window past all credit
    expect(s.epochSnapshot(tip, 6).total).toBe(6000n);
    // Make that branch non-canonical (a longer one by C), then ask again: same answers.
    let p = s.genesisHash;
    for (const slot of [2, 3, 6, 7]) {
      const b = makeBlock(s, C, slot, p);
      addValid(s, b);
      p = blockHash(b.header);
    }
    expect(s.isCanonical(tip)).toBe(false);
    const fresh = new ChainState(g);
    for (const h of [...s.nodes()].filter((n) => n.block && !s.isCanonical(n.hash)).sort((x, y) => x.height - y.height)) addValid(fresh, h.block!);
    for (const e of [2, 3, 4, 6]) expect(s.epochSnapshot(tip, e).weights).toEqual(fresh.epochSnapshot(tip, e).weights);
  });
});

describe('property: the result does not depend on arrival order', () => {
  it('any parent-before-child arrival order of a random block tree gives the same head, chain and ledger', async () => {
    const fc = await import('fast-check');
    // A random tree of 16 blocks (seeded), records shared between branches now and then.
    let x = 42;
    const rnd = (n: number): number => {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      return x % n;
    };
    const builder = new ChainState(testGenesis());
    const blocks: Block[] = [];
    const shared = [credit([A.peerId], 11), credit([B.peerId], 13)];
    for (let i = 0; i < 16; i++) {
      const nodes = [...builder.nodes()];
      const parent = nodes[rnd(nodes.length)]!;
      const slot = Math.max(parent.slot, 0) + 1 + rnd(3);
      const recs = [credit([KEYS[rnd(3)]!.peerId], 1 + rnd(100))];
      const s = shared[rnd(4)];
      if (s && builder.replayedCredit(parent.hash, [creditRecordId(s)]) === null) recs.push(s);
      const b = makeBlock(builder, KEYS[rnd(3)]!, slot, parent.hash, recs);
      addValid(builder, b);
      blocks.push(b);
    }
    expect(builder.orphanCount()).toBeGreaterThanOrEqual(4); // a real tree, not a line
    const ref = { head: builder.head.hash, chain: [...builder.canonicalChain()], ledger: ledgerView(builder.ledger) };
    fc.assert(
      fc.property(fc.array(fc.nat(), { minLength: 16, maxLength: 16 }), (picks) => {
        const s = new ChainState(testGenesis());
        const pending = [...blocks];
        for (const p of picks) {
          const ready = pending.filter((b) => s.has(b.header.parent));
          const b = ready[p % ready.length]!;
          pending.splice(pending.indexOf(b), 1);
          s.add(b);
        }
        expect(s.head.hash).toBe(ref.head);
        expect(s.canonicalChain()).toEqual(ref.chain);
        expect(ledgerView(s.ledger)).toEqual(ref.ledger);
      }),
      { numRuns: 200, seed: 7 },
    );
  });
});
