/**
 * Spot-check audits (`--replicas 1 --audit P`, PoSP / BOINC adaptive replication): each unit
 * runs once; after its result is committed a fraction P is re-run by a second, randomly drawn
 * worker. A corrupt cheater is caught at its first audit; it is then quarantined and every unit
 * it ran — audited or not — is run again, so the partner's outputs are exact.
 *
 * The live grid's catch rate (the share of a cheater's falsified first runs that end with it
 * found faulty) is compared with what `drill sim` predicts for the same P, cheater share and
 * population: the simulator models the grid's draws, jury and quarantine.
 */
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAttack, runJob, runJobWatching, expectOutputsEqualDirect, expectCheatersCaught } from './harness.ts';
import { BIN, ROOT } from '../helpers/grid.ts';

describe('spot-check audits', () => {
  it('a corrupt cheater under --audit 0.25 with many small units: caught, its units redone, outputs exact', async () => {
    const a = await startAttack({ workers: 3, cheaters: 1, cheat: 'corrupt', seed: 'adv-audit' });
    try {
      // 2,048 rows at 8 rows a unit: 256 units, so the cheater runs many before its first audit.
      const { report, decisions } = await runJob(a, 'mlp', { audit: 0.25, unitRows: 8, tag: 'audit' });
      await expectOutputsEqualDirect('mlp', report);
      expectCheatersCaught(a, report);
      expect(report.replicas).toBe(1);
      expect(report.units.audited).toBeGreaterThan(0);
      expect(report.units.unaudited).toBeGreaterThan(0);
      expect(report.units.reopened).toBeGreaterThan(0); // the cheater's unaudited units, run again
      // Unaudited units are credited to their one worker; the report says how many rows no second worker checked.
      expect(report.rowsUnchecked).toBeGreaterThan(0);
      expect(report.rowsUnchecked).toBeLessThan(report.rows);
      const last = new Map<number, (typeof decisions)[number]>();
      for (const d of decisions) last.set(d.unit, d);
      let unchecked = 0;
      for (const d of last.values()) {
        expect(d.decidedBy.some((w) => a.cheaters.has(w))).toBe(false);
        if (d.outcome.status === 'unaudited') unchecked += d.end - d.start;
      }
      expect(report.rowsUnchecked).toBe(unchecked);
    } finally {
      await a.stop();
    }
  });

  it("the live grid's catch rate matches drill sim's prediction for the same P, population and cheater share", async () => {
    const P = 0.3;
    const honest = 4;
    const cheaters = 2;
    // Noisy cheaters: each wrong answer unique (the simulator's random cheaters, cheatRate 1).
    const a = await startAttack({ workers: honest, cheaters, cheat: 'noise', seed: 'adv-catch-rate' });
    // The catch rate of a falsified first run = P(audited) × P(found faulty | audited). The grid
    // runs units concurrently, so a cheater also has first runs decided (unaudited) or dropped
    // (it was quarantined first) while an audit is pending: the simulator decides one unit
    // after another. Each factor is measured where the grid and the simulator agree: the coin
    // toss at commit, and the jury's verdict on decided audits.
    let coins = 0;
    let audits = 0;
    let judged = 0;
    let caught = 0;
    try {
      // Many short jobs: quarantine lasts one job, so each job gives each cheater a fresh start.
      for (let j = 0; j < 20; j++) {
        const seen: { cheater: boolean; audited: boolean }[] = [];
        const m = await runJobWatching(a, 'mlp', { audit: P, unitRows: 32, tag: `rate-${j}` }, (e) => {
          if (a.cheaters.has(e.worker)) seen.push({ cheater: true, audited: e.audited });
        });
        expect(m.report.status, m.report.error).toBe('done');
        coins += seen.length;
        audits += seen.filter((x) => x.audited).length;
        for (const d of m.decisions) {
          // Audits the cheater's result was judged in (not rounds it was dropped from when a
          // quarantine elsewhere came first).
          if (!d.audited || d.primary === null || !a.cheaters.has(d.primary) || !d.workers.includes(d.primary)) continue;
          judged++;
          if (d.outcome.faulty.includes(d.primary)) caught++;
        }
      }
    } finally {
      await a.stop();
    }
    const samples = coins;
    const live = (audits / coins) * (caught / judged);
    // The simulator: the same population (equal speeds), the same audit probability and jury,
    // jobs of 64 units (2,048 rows / 32), many of them.
    const dir = mkdtempSync(join(tmpdir(), 'drill-sim-rate-'));
    const scenario = join(dir, 'scenario.json');
    writeFileSync(scenario, JSON.stringify({
      seed: 17, trainers: honest + cheaters, slots: 20000, hashrate: { dist: 'constant', value: 1 },
      behaviours: [{ kind: 'cheater', fraction: cheaters / (honest + cheaters), cheatRate: 1 }],
      pod: { mode: 'spot-check', sampleP: P, jobUnits: 64, unitsPerSlot: 4, quarantine: true },
      lottery: { epochSlots: 16, lookbackEpochs: 1 },
    }));
    const r = spawnSync(process.execPath, [BIN, 'sim', '--scenario', scenario, '--json'], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const sim = JSON.parse(r.stdout) as { pod: { catchRate: number; catchRateSamples: number } };
    const predicted = sim.pod.catchRate;
    process.stdout.write(`catch rate at P = ${P}, ${cheaters} cheaters among ${honest + cheaters}: live ${live.toFixed(3)} (audited ${audits}/${coins} first runs, found faulty ${caught}/${judged} audits); drill sim predicts ${predicted.toFixed(3)} (${sim.pod.catchRateSamples} samples)\n`);
    expect(samples).toBeGreaterThan(100);
    expect(judged).toBeGreaterThanOrEqual(8);
    expect(sim.pod.catchRateSamples).toBeGreaterThan(2000);
    // Within 3.5 standard deviations of the live estimate (delta method over its two binomial
    // factors; the simulator's own error is far smaller).
    const pa = audits / coins;
    const pc = caught / judged;
    const sd = Math.sqrt(pc * pc * (pa * (1 - pa)) / coins + pa * pa * (Math.max(pc * (1 - pc), 0.5 / judged)) / judged);
    expect(Math.abs(live - predicted)).toBeLessThan(3.5 * sd);
  });
});
