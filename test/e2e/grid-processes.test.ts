/**
 * Separate processes on loopback, as trainers and partners run them: `drill coordinator`,
 * three `drill worker`s and `drill submit`. One worker is killed (SIGKILL) mid-job: its units
 * are re-issued and the job completes with every row, equal to a direct ONNX Runtime run.
 */
import { describe, it, expect, afterAll, beforeAll } from 'vitest';
import { mkdtemp, rm, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readNpy, readNpyRows, encodeNpy } from '../../src/util/npy.ts';
import { parsePolicy, tensorsAgree } from '../../src/pod/policy.ts';
import { DirectSession } from '../../src/worker/direct.ts';
import type { JobReport } from '../../src/coordinator/service.ts';
import { ROOT, drill } from '../helpers/grid.ts';
import type { Proc } from '../helpers/grid.ts';

const ROWS = 128;
let tmp: string;
const procs: Proc[] = [];

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'drill-mp-'));
  // A slice of the CNN workload: heavy enough per unit that the kill lands mid-job.
  const slice = await readNpyRows(join(ROOT, 'workloads/cnn/inputs/image.npy'), 0, ROWS);
  await writeFile(join(tmp, 'image.npy'), encodeNpy(slice));
});
afterAll(async () => {
  for (const p of procs) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.exited));
  await rm(tmp, { recursive: true, force: true });
});

describe('grid as separate processes', () => {
  it('survives a worker killed mid-job: units re-issued, every row delivered, outputs equal direct ORT', async () => {
    const coord = drill(['coordinator', '--listen', '/ip4/127.0.0.1/tcp/0', '--data-dir', join(tmp, 'coord')]);
    procs.push(coord);
    const [, addr] = await coord.waitFor(/listening: (\S+)/);
    const workers = [0, 1, 2].map((i) => drill(['worker', '--join', addr!, '--threads', '1', '--data-dir', join(tmp, `w${i}`), '--listen', '/ip4/127.0.0.1/tcp/0', '--verbose']));
    procs.push(...workers);
    await Promise.all(workers.map((w) => w.waitFor(/joined coordinator/)));

    const out = join(tmp, 'out');
    const submit = drill(['submit', '--to', addr!, '--model', 'workloads/cnn/model.onnx', '--input', `image=${join(tmp, 'image.npy')}`, '--out', out, '--unit-rows', '8', '--replicas', '2', '--compare', 'allclose:1e-4,1e-5', '--json'], { DRILL_PROGRESS_MS: '0' });
    procs.push(submit);

    // Kill worker 0 as soon as it has finished a unit (it then holds further leases).
    await workers[0]!.waitFor(/unit \S+ done/);
    workers[0]!.child.kill('SIGKILL');

    const code = await submit.exited;
    expect(code, submit.output()).toBe(0);
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as JobReport;
    expect(report.status).toBe('done');
    expect(report.rows).toBe(ROWS);
    expect(report.units.failed).toBe(0);
    expect(report.units.reissued).toBeGreaterThanOrEqual(1);

    const got = await readNpy(join(out, 'probs.npy'));
    const s = await DirectSession.open(join(ROOT, 'workloads/cnn/model.onnx'));
    const direct = await s.run({ image: await readNpy(join(tmp, 'image.npy')) });
    await s.release();
    expect(got.dims).toEqual(direct.probs!.dims);
    expect(got.dims[0]).toBe(ROWS);
    expect(tensorsAgree(parsePolicy('allclose:1e-4,1e-5'), got, direct.probs!)).toBe(true);
  });
});

describe('coordinator crash', () => {
  it('a coordinator killed mid-job resumes from its store: no finished unit is lost, the partner gets every row', async () => {
    const dir = join(tmp, 'crash');
    const coord1 = drill(['coordinator', '--listen', '/ip4/127.0.0.1/tcp/0', '--data-dir', join(dir, 'coord')]);
    procs.push(coord1);
    const [, addr] = await coord1.waitFor(/listening: (\S+)/);
    const port = /\/tcp\/(\d+)\//.exec(addr!)![1]!;
    const workers = [0, 1].map((i) => drill(['worker', '--join', addr!, '--threads', '1', '--data-dir', join(dir, `w${i}`), '--listen', '/ip4/127.0.0.1/tcp/0']));
    procs.push(...workers);
    await Promise.all(workers.map((w) => w.waitFor(/joined coordinator/)));

    const out = join(dir, 'out');
    const submit = drill(['submit', '--to', addr!, '--model', 'workloads/cnn/model.onnx', '--input', `image=${join(tmp, 'image.npy')}`, '--out', out, '--unit-rows', '8', '--replicas', '2', '--compare', 'allclose:1e-4,1e-5', '--json'], { DRILL_PROGRESS_MS: '0' });
    procs.push(submit);
    // Kill the coordinator once a few of the 16 units are done (and recorded in its store).
    await submit.waitFor(/units ([3-9]|1[0-5])\/16/);
    coord1.child.kill('SIGKILL');
    await coord1.exited;

    const coord2 = drill(['coordinator', '--listen', `/ip4/127.0.0.1/tcp/${port}`, '--data-dir', join(dir, 'coord')]);
    procs.push(coord2);
    await coord2.waitFor(/resumed job/);

    const code = await submit.exited;
    expect(code, submit.output()).toBe(0);
    const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as JobReport;
    expect(report.status).toBe('done');
    expect(report.rows).toBe(ROWS);
    expect(report.units.failed).toBe(0);
    expect(report.units.agreed + report.units.disputed).toBe(report.units.total);
    // Credit from before the crash came back from the store: every row credited to both replicas.
    expect(report.totalCredit).toBe(report.model.flopsPerRow * ROWS * 2);

    const got = await readNpy(join(out, 'probs.npy'));
    const s = await DirectSession.open(join(ROOT, 'workloads/cnn/model.onnx'));
    const direct = await s.run({ image: await readNpy(join(tmp, 'image.npy')) });
    await s.release();
    expect(got.dims).toEqual([ROWS, 10]);
    expect(tensorsAgree(parsePolicy('allclose:1e-4,1e-5'), got, direct.probs!)).toBe(true);
  });
});
