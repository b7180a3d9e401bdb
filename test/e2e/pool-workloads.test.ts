/**
 * The committed sample workloads through the pool, in work-unit-sized pieces over two threads:
 * reassembled outputs agree with the committed golden outputs under each job's own policy.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePolicy, resultsAgree } from '../../src/pod/policy.ts';
import { readNpyHeader, readNpyRows } from '../../src/util/npy.ts';
import type { HostTensor } from '../../src/util/tensor.ts';
import { concatRows } from '../../src/worker/plan.ts';
import { modelHashOf } from '../../src/worker/models.ts';
import { InferencePool } from '../../src/worker/pool.ts';

const ROOT = join(import.meta.dirname, '..', '..', 'workloads');
/** Units checked per workload: two full ones plus a one-row remainder, lean on a 2-core CI box (the cnn is ~40 MFLOP/row). */
const unitsChecked = (unitRows: number): number => 2 * unitRows + 1;

interface Job {
  model: string;
  inputs: Record<string, string>;
  policy: string;
  unitRows: number;
}

let pool: InferencePool;
beforeAll(async () => {
  pool = new InferencePool({ threads: 2 });
  await pool.start();
});
afterAll(async () => {
  await pool.stop();
});

describe.each(['mlp', 'encoder', 'cnn', 'rowwise'])('workload %s', (name) => {
  const dir = join(ROOT, name);
  it.skipIf(!existsSync(join(dir, 'job.json')))('unit by unit through the pool matches golden under the job policy', async () => {
    const job = JSON.parse(await readFile(join(dir, 'job.json'), 'utf8')) as Job;
    const modelPath = join(dir, job.model);
    const modelHash = modelHashOf(new Uint8Array(await readFile(modelPath)));
    const first = Object.values(job.inputs)[0]!;
    const rows = Math.min(unitsChecked(job.unitRows), (await readNpyHeader(join(dir, first))).dims[0]!);
    const units: Promise<Record<string, HostTensor>>[] = [];
    for (let start = 0; start < rows; start += job.unitRows) {
      const end = Math.min(rows, start + job.unitRows);
      units.push(
        (async () => {
          const inputs: Record<string, HostTensor> = {};
          for (const [k, f] of Object.entries(job.inputs)) inputs[k] = await readNpyRows(join(dir, f), start, end);
          return (await pool.run({ modelHash, modelPath, inputs })).outputs;
        })(),
      );
    }
    const parts = await Promise.all(units);
    const got: Record<string, HostTensor> = {};
    const want: Record<string, HostTensor> = {};
    for (const out of Object.keys(parts[0]!)) {
      got[out] = concatRows(out, parts.map((p) => p[out]!));
      want[out] = await readNpyRows(join(dir, 'golden', `${out}.npy`), 0, rows);
    }
    expect(Object.keys(got).length).toBeGreaterThan(0);
    expect(resultsAgree(parsePolicy(job.policy), got, want)).toBe(true);
  });
});
