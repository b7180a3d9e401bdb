/**
 * The embedded grid end to end (real libp2p nodes on 127.0.0.1, real ONNX Runtime pools,
 * real SQLite store): outputs equal a direct ONNX Runtime run under the workload's policy;
 * a cheating worker earns nothing while the outputs stay correct.
 */
import { describe, it, expect, afterAll, beforeAll } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalGrid } from '../../src/node/local-grid.ts';
import { prepareJob, readJobManifest } from '../../src/coordinator/job.ts';
import type { JobReport } from '../../src/coordinator/service.ts';
import { readNpy } from '../../src/util/npy.ts';
import { parsePolicy, tensorsAgree } from '../../src/pod/policy.ts';
import { ROOT, directRun } from '../helpers/grid.ts';

let tmp: string;
let grid: LocalGrid;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'drill-e2e-'));
  grid = new LocalGrid({ workers: 3, cheaters: 1, threadsPerWorker: 1, dataDir: join(tmp, 'grid') });
  await grid.start();
});
afterAll(async () => {
  await grid?.stop();
  await rm(tmp, { recursive: true, force: true });
});

async function runWorkload(name: string, over: { replicas?: number; unitRows?: number; defaultUnits?: boolean } = {}): Promise<{ report: JobReport; outDir: string }> {
  const m = await readJobManifest(join(ROOT, 'workloads', name, 'job.json'));
  const outDir = join(tmp, `out-${name}-${over.replicas ?? m.replicas}`);
  const unitRows = over.defaultUnits ? undefined : (over.unitRows ?? m.unitRows);
  const spec = await prepareJob({ model: m.model, inputs: m.inputs, outDir, replicas: over.replicas ?? m.replicas, ...(unitRows !== undefined ? { unitRows } : {}), policy: m.policy, name });
  const h = await grid.coordinator.submit(spec);
  return { report: await h.result, outDir };
}

async function expectMatchesDirect(name: string, report: JobReport, rowwise = false): Promise<void> {
  const m = await readJobManifest(join(ROOT, 'workloads', name, 'job.json'));
  // Compare values, not just decisions: the default allclose even for argmax workloads.
  const policy = parsePolicy(m.policy === 'exact' ? 'exact' : 'allclose:1e-3,1e-4');
  const direct = await directRun(name, rowwise);
  expect(Object.keys(report.outputs).sort()).toEqual(Object.keys(direct).sort());
  for (const [k, path] of Object.entries(report.outputs)) {
    const got = await readNpy(path);
    expect(got.dims).toEqual(direct[k]!.dims);
    expect(tensorsAgree(policy, got, direct[k]!), `output ${k} of ${name}`).toBe(true);
  }
}

describe('embedded grid', () => {
  it('multi-input, multi-output encoder: outputs equal a direct ORT run; the cheater earns 0 credit', async () => {
    const { report, outDir } = await runWorkload('encoder');
    expect(report.status).toBe('done');
    expect(report.rows).toBe((await readNpy(join(ROOT, 'workloads/encoder/inputs/input_ids.npy'))).dims[0]);
    await expectMatchesDirect('encoder', report);
    const cheater = report.workers.find((w) => w.cheater)!;
    expect(cheater, 'the cheater ran units').toBeDefined();
    expect(cheater.unitsRun).toBeGreaterThan(0);
    // Its first disputed unit quarantined it for the job: no credit, a fault on record.
    expect(cheater.credit).toBe(0);
    expect(cheater.quarantined).toBe(true);
    expect(cheater.faultReasons.some((r) => r.startsWith('minority:'))).toBe(true);
    for (const w of report.workers.filter((x) => !x.cheater)) {
      expect(w.unitsFaulty).toBe(0);
      expect(w.quarantined).toBe(false);
      expect(w.credit > 0).toBe(w.unitsAgreed > 0);
    }
    expect(report.units.disputed).toBeGreaterThan(0);
    expect(report.units.agreed + report.units.disputed).toBe(report.units.total);
    expect(report.units.failed).toBe(0);
    // Credit is verified FLOPs: every unit credits each honest replica rows × flopsPerRow — two
    // for an agreed unit, the honest jurors (up to all three) for a disputed one.
    const honestCredit = report.workers.reduce((a, w) => a + w.credit, 0);
    const unitFlops = report.model.flopsPerRow * report.rows;
    expect(honestCredit).toBeGreaterThanOrEqual(unitFlops * 2);
    expect(honestCredit).toBeLessThanOrEqual(unitFlops * 3);
    expect(honestCredit % report.model.flopsPerRow).toBe(0);
    expect(existsSync(join(outDir, 'report.json'))).toBe(true);
    // Workers in this process share the coordinator's filesystem: they read the input rows
    // from its files and the honest ones write their results into its spool (the bytes-over-
    // libp2p paths are covered by grid-processes.test.ts); the outputs above came through it.
    expect(grid.workers.reduce((a, w) => a + w.worker.unitsFromFiles, 0)).toBeGreaterThan(0);
    expect(grid.workers.reduce((a, w) => a + w.worker.unitsSpooled, 0)).toBeGreaterThan(0);
  });

  it('a model with batch dimension fixed at 1 is run row by row', async () => {
    const { report } = await runWorkload('rowwise');
    expect(report.status).toBe('done');
    await expectMatchesDirect('rowwise', report, true);
  });

  it('R = 1 accepts results unverified and credits nobody', async () => {
    const { report } = await runWorkload('mlp', { replicas: 1 });
    expect(report.status).toBe('done');
    expect(report.units.unverified + report.units.disputed + report.units.agreed).toBe(report.units.total);
    expect(report.totalCredit).toBe(0);
    // with one replica a cheater's unit goes through unverified: that is why R ≥ 2 is the default
  });

  it('a job whose unit size the coordinator chose ends in smaller units; outputs equal a direct ORT run', async () => {
    const rows = (await readNpy(join(ROOT, 'workloads/cnn/inputs/image.npy'))).dims[0]!;
    const { report } = await runWorkload('cnn', { defaultUnits: true });
    expect(report.status).toBe('done');
    // The default splits into at least 32 units; the last two units' rows run as 2 halves and 4 quarters.
    const equal = Math.ceil(rows / report.unitRows);
    expect(equal).toBeGreaterThanOrEqual(32);
    expect(report.units.total).toBe(equal + 4);
    await expectMatchesDirect('cnn', report);
  });
});
