/** Five producer nodes on loopback (real libp2p via src/net) agree on the head after S slots. */
import { describe, it, expect } from 'vitest';
import { runDevnet } from '../../src/chain/devnet.ts';

describe('devnet: 5 nodes on 127.0.0.1', () => {
  it('produces blocks with credit records and every node reports the same head', async () => {
    // c = 1/2 over 16 slots: P(no block at all) = 2^-16.
    const r = await runDevnet({ nodes: 5, slots: 16, slotMs: 250, c: 0.5, epochSlots: 8 });
    expect(r.agreed).toBe(true);
    expect(new Set(r.nodes.map((n) => n.head)).size).toBe(1);
    expect(r.nodes[0]!.height).toBeGreaterThan(0);
    expect(r.nodes.reduce((a, n) => a + n.blocksProduced, 0)).toBe(r.nodes[0]!.height);
    expect(r.emptySlots).toBe(16 - r.nodes[0]!.height);
    expect(r.creditsIncluded).toBeGreaterThan(0);
    // Genesis weights 1:2:3:4:5 (plus devnet credit by epoch 2 at most): shares sum to ~1.
    expect(r.nodes.reduce((a, n) => a + n.weightShare, 0)).toBeCloseTo(1, 4);
    expect(r.nodes[4]!.weightShare).toBeGreaterThan(r.nodes[0]!.weightShare);
  });
});
