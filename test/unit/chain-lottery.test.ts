/**
 * Statistical test (fixed keys, so deterministic): over 2,000 slots, blocks follow weight.
 * Three in-memory producers with credited weights 1 : 2 : 5 share one chain state (perfect
 * propagation); every slot each runs the real lottery (ECVRF-TAI + exact threshold) on the head,
 * and every winning block is validated and added. Checks:
 *  - winning tickets per producer match the exact win probabilities 1 − (1 − c)^(w/W)
 *    (chi-square, 3 degrees of freedom, below the 99.9% quantile 16.27);
 *  - the canonical chain's block share is within 0.05 of the weight share;
 *  - empty slots ≈ (1 − c) of all slots (the lottery is split-independent).
 */
import { describe, it, expect } from 'vitest';
import { ChainState } from '../../src/chain/state.ts';
import { validateBlock } from '../../src/chain/validate.ts';
import { tryProduce } from '../../src/chain/produce.ts';
import { makeDevGenesis } from '../../src/chain/devgenesis.ts';
import { winProbability } from '../../src/vrf/lottery.ts';
import { KEYS, COORD_SEED } from './chain-fixture.ts';

const SLOTS = 2000;
const C = 0.25;
const WEIGHTS = [1000, 2000, 5000];

describe('lottery fairness over many slots', () => {
  it('block share follows weight share', () => {
    const g = makeDevGenesis({
      genesisTime: 0, slotMs: 1000, epochSlots: 50, c: C, coordinatorSeed: COORD_SEED, maxClockDriftMs: 0,
      allocations: KEYS.map((k, i) => ({ peerId: k.peerId, flops: WEIGHTS[i]! })),
    });
    const s = new ChainState(g);
    const wins = [0, 0, 0];
    let empty = 0;
    for (let slot = 0; slot < SLOTS; slot++) {
      const blocks = KEYS.map((k) => tryProduce(s, k, slot));
      blocks.forEach((b, i) => { if (b) wins[i]!++; });
      if (blocks.every((b) => b === null)) empty++;
      for (const b of blocks) if (b) { const v = validateBlock(s, b, slot * 1000 + 1); s.add(v.block, v.hash); }
    }
    const W = WEIGHTS.reduce((a, b) => a + b, 0);
    const p = WEIGHTS.map((w) => winProbability(C, w, W));
    const chi2 = wins.reduce((acc, o, i) => acc + (o - SLOTS * p[i]!) ** 2 / (SLOTS * p[i]! * (1 - p[i]!)), 0);
    const canon = s.canonicalChain().slice(1).map((h) => s.getNode(h)!.producer);
    const share = KEYS.map((k) => canon.filter((x) => x === k.peerId).length / canon.length);
    const weightShare = WEIGHTS.map((w) => w / W);
    console.log(JSON.stringify({ wins, expected: p.map((x) => +(x * SLOTS).toFixed(1)), chi2: +chi2.toFixed(2), canonical: canon.length, share: share.map((x) => +x.toFixed(3)), weightShare, empty, orphans: s.orphanCount() }));
    expect(chi2).toBeLessThan(16.27);
    for (let i = 0; i < 3; i++) expect(Math.abs(share[i]! - weightShare[i]!)).toBeLessThan(0.05);
    // P(empty) = 1 − c exactly, whatever the split: 1500 ± 3σ (σ ≈ 19.4).
    expect(Math.abs(empty - SLOTS * (1 - C))).toBeLessThan(60);
  });
});
