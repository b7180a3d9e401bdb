/**
 * Attack: three cheaters that each add noise of their own (they agree with nobody), among
 * three honest workers at R = 2 — disputes everywhere, settled by a drawn jury.
 */
import { describe, it } from 'vitest';
import { startAttack, runJob, expectOutputsEqualDirect, expectCheatersCaught } from './harness.ts';

describe('noisy cheaters', () => {
  it('three noisy cheaters among three honest workers: outputs exact, cheaters caught', async () => {
    const a = await startAttack({ workers: 3, cheaters: 3, cheat: 'noise', seed: 'adv-noise' });
    try {
      const { report } = await runJob(a, 'encoder', { unitRows: 16, tag: 'noise' });
      await expectOutputsEqualDirect('encoder', report);
      expectCheatersCaught(a, report);
    } finally {
      await a.stop();
    }
  });
});
