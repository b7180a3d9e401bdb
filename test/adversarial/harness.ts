/**
 * Shared harness of the adversarial tests: an embedded grid (real libp2p nodes on 127.0.0.1,
 * real ONNX Runtime pools, real SQLite store) with honest workers and cheaters, a job of a
 * sample workload, and the checks every attack test makes — every output row equals a direct
 * ONNX Runtime run under the policy, every cheater ends with no credit and quarantined, no
 * honest worker ends with a fault.
 */
import { expect } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalGrid } from '../../src/node/local-grid.ts';
import type { LocalGridOptions } from '../../src/node/local-grid.ts';
import { prepareJob, readJobManifest } from '../../src/coordinator/job.ts';
import type { JobReport } from '../../src/coordinator/service.ts';
import type { UnitDone } from '../../src/coordinator/scheduler.ts';
import type { AuditEvent } from '../../src/coordinator/running.ts';
import { readNpy } from '../../src/util/npy.ts';
import { parsePolicy, tensorsAgree } from '../../src/pod/policy.ts';
import { ROOT, directRun } from '../helpers/grid.ts';

export interface Attack {
  grid: LocalGrid;
  dir: string;
  cheaters: Set<string>;
  stop(): Promise<void>;
}

/** Start an embedded grid of `honest` workers and `cheaters` cheating ones (one thread each). */
export async function startAttack(opts: LocalGridOptions & { workers: number; cheaters: number; seed?: string }): Promise<Attack> {
  const dir = await mkdtemp(join(tmpdir(), 'drill-adv-'));
  const grid = new LocalGrid({ threadsPerWorker: 1, dataDir: join(dir, 'grid'), ...opts, coordinator: { ...(opts.seed ? { seed: opts.seed } : {}), ...opts.coordinator } });
  await grid.start();
  const cheaters = new Set(grid.workers.filter((w) => w.cheater).map((w) => w.node.peerId));
  return {
    grid,
    dir,
    cheaters,
    async stop() {
      await grid.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface RunResult {
  report: JobReport;
  /** Every unit decision of the job, in order (re-decisions of reopened units included). */
  decisions: UnitDone[];
}

/** Run a sample workload's job on the grid. */
export function runJob(a: Attack, workload: string, over: { replicas?: number; audit?: number; unitRows?: number; tag?: string } = {}): Promise<RunResult> {
  return runJobWatching(a, workload, over, () => undefined);
}

/** runJob, also reporting every audit coin toss (spot checks). */
export async function runJobWatching(a: Attack, workload: string, over: { replicas?: number; audit?: number; unitRows?: number; tag?: string }, onAudit: (e: AuditEvent) => void): Promise<RunResult> {
  const m = await readJobManifest(join(ROOT, 'workloads', workload, 'job.json'));
  const outDir = join(a.dir, `out-${workload}-${over.tag ?? Math.random().toString(36).slice(2)}`);
  const spec = await prepareJob({
    model: m.model, inputs: m.inputs, outDir, policy: m.policy, name: workload,
    replicas: over.replicas ?? (over.audit ? 1 : m.replicas), audit: over.audit, unitRows: over.unitRows ?? m.unitRows,
  });
  const h = await a.grid.coordinator.submit(spec);
  const decisions: UnitDone[] = [];
  h.events.on('unit', (d) => decisions.push(d));
  h.events.on('audit', onAudit);
  return { report: await h.result, decisions };
}

const directCache = new Map<string, Promise<Awaited<ReturnType<typeof directRun>>>>();

/** Every output of the job equals a direct ONNX Runtime run (values, under allclose or exact). */
export async function expectOutputsEqualDirect(workload: string, report: JobReport): Promise<void> {
  expect(report.status, report.error).toBe('done');
  const m = await readJobManifest(join(ROOT, 'workloads', workload, 'job.json'));
  const policy = parsePolicy(m.policy === 'exact' ? 'exact' : 'allclose:1e-3,1e-4');
  if (!directCache.has(workload)) directCache.set(workload, directRun(workload, workload === 'rowwise'));
  const direct = await directCache.get(workload)!;
  for (const [k, path] of Object.entries(report.outputs)) {
    const got = await readNpy(path);
    expect(got.dims).toEqual(direct[k]!.dims);
    expect(tensorsAgree(policy, got, direct[k]!), `output ${k} of ${workload} equals a direct ONNX Runtime run`).toBe(true);
  }
}

/** Cheaters: no credit, quarantined with a fault; honest workers: no fault, credited for what they ran. */
export function expectCheatersCaught(a: Attack, report: JobReport): void {
  for (const w of report.workers) {
    if (a.cheaters.has(w.peer)) {
      expect(w.credit, `cheater ${w.peer} credit`).toBe(0);
      if (w.unitsRun > 0) expect(w.quarantined, `cheater ${w.peer} quarantined`).toBe(true);
    } else {
      expect(w.quarantined, `honest ${w.peer} quarantined (${w.faultReasons.join(', ')})`).toBe(false);
      expect(w.faultReasons).toEqual([]);
    }
  }
  expect(report.workers.filter((w) => a.cheaters.has(w.peer)).some((w) => w.unitsRun > 0), 'the cheaters took part').toBe(true);
}
