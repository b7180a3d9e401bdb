/**
 * Attacks: a lazy worker (zeros of the right shapes, never runs the model) and a stale one
 * (replays an earlier result of the same job with the same row count), each among three
 * honest workers at R = 2, on the encoder workload (allclose policy, two outputs).
 */
import { describe, it } from 'vitest';
import { startAttack, runJob, expectOutputsEqualDirect, expectCheatersCaught } from './harness.ts';

describe('lazy and stale cheaters', () => {
  for (const cheat of ['lazy', 'stale'] as const) {
    it(`a ${cheat} cheater is caught, its units redone, and earns nothing`, async () => {
      const a = await startAttack({ workers: 3, cheaters: 1, cheat, seed: `adv-${cheat}` });
      try {
        const { report } = await runJob(a, 'encoder', { unitRows: 16, tag: cheat });
        await expectOutputsEqualDirect('encoder', report);
        expectCheatersCaught(a, report);
      } finally {
        await a.stop();
      }
    });
  }
});
