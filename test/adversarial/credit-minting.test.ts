/**
 * Attack: minting credit with a model. Credit is lottery weight, so whoever writes models must
 * not write weight. The fixture `cumsum_mint` (test/fixtures/models/make_models.py) is a
 * two-node model — CumSum over 4 floats a row, then Relu — whose intermediate is declared
 * `[batch, 1000000000]` in its value_info; it used to credit 512 GFLOP for 256 rows. Here a
 * partner also claims 10^12 FLOPs a row in its manifest. Credit must be what ran: shapes the
 * coordinator infers from the real inputs, 8 FLOPs a row, whatever the model or manifest declares.
 */
import { describe, it, expect } from 'vitest';
import { readdir } from 'node:fs/promises';
import { join, basename } from 'node:path';
import { prepareJob } from '../../src/coordinator/job.ts';
import { ROOT } from '../helpers/grid.ts';
import { startAttack } from './harness.ts';

const FIX = join(ROOT, 'test', 'fixtures', 'models');

describe('a model that declares huge shapes, a manifest that claims huge FLOPs', () => {
  it('credits the FLOPs that ran (8 a row), not what anyone declared', async () => {
    const a = await startAttack({ workers: 3, cheaters: 0, seed: 'adv-mint' });
    try {
      const dir = join(FIX, 'cumsum_mint');
      const inputs = Object.fromEntries((await readdir(dir)).filter((f) => f.endsWith('.npy')).map((f) => [basename(f, '.npy'), join(dir, f)]));
      const spec = await prepareJob({ model: join(FIX, 'cumsum_mint.onnx'), inputs, outDir: join(a.dir, 'out'), replicas: 2, flopsPerRow: 1e12 });
      expect(spec.flopsPerRow).toBe(8);
      const report = await (await a.grid.coordinator.submit(spec)).result;
      expect(report.status, report.error).toBe('done');
      expect(report.rows).toBe(256);
      expect(report.model.flopsPerRow).toBe(8);
      // Two replicas of every row credited 8 FLOPs each: 4,096 FLOP, against 512 GFLOP before.
      expect(report.totalCredit).toBe(256 * 8 * 2);
      for (const w of report.workers) expect(w.credit).toBeLessThanOrEqual(256 * 8);
    } finally {
      await a.stop();
    }
  });
});
