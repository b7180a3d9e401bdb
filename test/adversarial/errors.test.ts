/**
 * Attack: two workers that report an error for every unit (the same message, so they agree
 * with each other), among three honest workers at R = 2. Errors are results: a unit fails the
 * job only when a strict majority of distinct workers report the same error, and a decision
 * resting on a worker found faulty elsewhere is redone — so two hostile workers paired on a unit
 * cannot fail the partner's job.
 */
import { describe, it, expect } from 'vitest';
import { startAttack, runJob, expectOutputsEqualDirect, expectCheatersCaught } from './harness.ts';

describe('workers that fail every unit', () => {
  it('two error workers cannot fail the job; they end quarantined with no credit', async () => {
    const a = await startAttack({ workers: 3, cheaters: 2, cheat: 'error', seed: 'adv-errors' });
    try {
      const { report } = await runJob(a, 'mlp', { unitRows: 16, tag: 'errors' });
      await expectOutputsEqualDirect('mlp', report);
      expectCheatersCaught(a, report);
      expect(report.units.failed).toBe(0);
    } finally {
      await a.stop();
    }
  });
});
