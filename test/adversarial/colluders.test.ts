/**
 * Attack: two workers that return the same wrong answer (the demo's deterministic corruption:
 * they agree without talking, like two lazy workers returning the same garbage), among three
 * honest workers at R = 2. Before random replica sets, claiming one after the other always put
 * them on the same unit; now they meet only by the draw, are caught in the units they share
 * with honest workers, and every decision that rested on them is redone.
 */
import { describe, it, expect } from 'vitest';
import { startAttack, runJob, expectOutputsEqualDirect, expectCheatersCaught } from './harness.ts';

describe('two colluding cheaters among three honest workers, R = 2', () => {
  for (const seed of ['colluders-1', 'colluders-2', 'colluders-3']) {
    it(`seed ${seed}: outputs equal a direct run, the cheaters end with no credit, honest workers with no fault`, async () => {
      const a = await startAttack({ workers: 3, cheaters: 2, cheat: 'corrupt', seed });
      try {
        // mlp at 16 rows a unit: 64 units, so each cheater runs many and shares some with the other.
        const { report, decisions } = await runJob(a, 'mlp', { unitRows: 16, tag: seed });
        await expectOutputsEqualDirect('mlp', report);
        expectCheatersCaught(a, report);
        // Every unit's standing decision rests only on honest workers.
        const last = new Map<number, string[]>();
        for (const d of decisions) last.set(d.unit, d.decidedBy);
        expect(last.size).toBe(report.units.total);
        for (const by of last.values()) for (const w of by) expect(a.cheaters.has(w)).toBe(false);
        expect(report.units.failed).toBe(0);
      } finally {
        await a.stop();
      }
    });
  }
});
