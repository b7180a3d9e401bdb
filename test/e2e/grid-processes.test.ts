/**
 * Separate processes on loopback, as trainers and partners run them: `drill coordinator`,
 * `drill worker`s and `drill submit` (workers without --shared-fs: every input byte crosses
 * libp2p). A worker killed (SIGKILL) mid-job has its units re-issued; a coordinator killed
 * mid-job resumes from its store. Either way the job completes with every row, equal to a
 * direct ONNX Runtime run. And models whose inputs are not all rows (a state split on axis 1,
 * a scalar sent whole) and an external-data model go through `drill submit` the same way.
 */
import { describe, it, expect, afterAll, beforeAll } from 'vitest';
import { mkdtemp, rm, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readNpy, readNpyRows, encodeNpy } from '../../src/util/npy.ts';
import { parsePolicy, tensorsAgree } from '../../src/pod/policy.ts';
import { DirectSession } from '../../src/worker/direct.ts';
import type { JobReport } from '../../src/coordinator/report.ts';
import { ROOT, drill } from '../helpers/grid.ts';
import type { Proc } from '../helpers/grid.ts';

const ROWS = 128;
const POLICY = 'allclose:1e-4,1e-5';
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

/** The partner identity `drill submit` uses (its own data dir), allowed by the coordinators below. */
async function partnerId(): Promise<string> {
  const p = drill(['submit', '--show-id', '--data-dir', join(tmp, 'partner')]);
  procs.push(p);
  expect(await p.exited, p.output()).toBe(0);
  return p.output().match(/^(12D3KooW\w+)$/m)![1]!;
}

/** A coordinator and `n` workers as child processes; resolves once every worker has joined. */
async function startGrid(dir: string, n: number, workerFlags: string[] = []): Promise<{ coord: Proc; addr: string; workers: Proc[] }> {
  const coord = drill(['coordinator', '--http', 'off', '--listen', '/ip4/127.0.0.1/tcp/0', '--data-dir', join(dir, 'coord'), '--allow-partner', await partnerId()]);
  procs.push(coord);
  const [, addr] = await coord.waitFor(/listening: (\S+)/);
  const workers = Array.from({ length: n }, (_, i) => drill(['worker', '--join', addr!, '--threads', '1', '--data-dir', join(dir, `w${i}`), '--listen', '/ip4/127.0.0.1/tcp/0', ...workerFlags]));
  procs.push(...workers);
  await Promise.all(workers.map((w) => w.waitFor(/joined coordinator/)));
  return { coord, addr: addr!, workers };
}

/** `drill submit` of the CNN slice: 16 units of 8 rows, 2 replicas; progress printed per event. */
function submitSlice(addr: string, out: string): Proc {
  const p = drill(['submit', '--to', addr, '--model', 'workloads/cnn/model.onnx', '--input', `image=${join(tmp, 'image.npy')}`, '--out', out, '--unit-rows', '8', '--replicas', '2', '--compare', POLICY, '--json', '--data-dir', join(tmp, 'partner')], { DRILL_PROGRESS_MS: '0' });
  procs.push(p);
  return p;
}

/** The job's report after `submit` exited 0, with every row's output equal to a direct ORT run. */
async function expectCompleteAndCorrect(submit: Proc, out: string): Promise<JobReport> {
  const code = await submit.exited;
  expect(code, submit.output()).toBe(0);
  const report = JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as JobReport;
  expect(report.status).toBe('done');
  expect(report.rows).toBe(ROWS);
  expect(report.units.failed).toBe(0);
  const got = await readNpy(join(out, 'probs.npy'));
  const s = await DirectSession.open(join(ROOT, 'workloads/cnn/model.onnx'));
  const direct = await s.run({ image: await readNpy(join(tmp, 'image.npy')) });
  await s.release();
  expect(got.dims).toEqual([ROWS, 10]);
  expect(tensorsAgree(parsePolicy(POLICY), got, direct.probs!)).toBe(true);
  return report;
}

describe('grid as separate processes', () => {
  it('survives a worker killed mid-job: units re-issued, every row delivered, outputs equal direct ORT', async () => {
    const { addr, workers } = await startGrid(tmp, 3, ['--verbose']);
    const out = join(tmp, 'out');
    const submit = submitSlice(addr, out);
    // Kill worker 0 as soon as it has finished a unit (it then holds further leases).
    await workers[0]!.waitFor(/unit \S+ done/);
    workers[0]!.child.kill('SIGKILL');
    const report = await expectCompleteAndCorrect(submit, out);
    expect(report.units.reissued).toBeGreaterThanOrEqual(1);
  });
});

describe('coordinator crash', () => {
  it('a coordinator killed mid-job resumes from its store: no finished unit is lost, the partner gets every row', async () => {
    const dir = join(tmp, 'crash');
    const { coord, addr } = await startGrid(dir, 2);
    const port = /\/tcp\/(\d+)\//.exec(addr)![1]!;
    const out = join(dir, 'out');
    const submit = submitSlice(addr, out);
    // Kill the coordinator once a few of the 16 units are done (and recorded in its store).
    await submit.waitFor(/units ([3-9]|1[0-5])\/16/);
    coord.child.kill('SIGKILL');
    await coord.exited;
    const again = drill(['coordinator', '--http', 'off', '--listen', `/ip4/127.0.0.1/tcp/${port}`, '--data-dir', join(dir, 'coord'), '--allow-partner', await partnerId()]);
    procs.push(again);
    await again.waitFor(/resumed job/);

    const report = await expectCompleteAndCorrect(submit, out);
    expect(report.units.agreed + report.units.disputed).toBe(report.units.total);
    // Credit from before the crash came back from the store: every row credited to both replicas.
    expect(report.totalCredit).toBe(report.model.flopsPerRow * ROWS * 2);
  });
});

describe('drill submit of models whose inputs are not all rows', () => {
  it('over libp2p (no shared filesystem): a state split on axis 1 and a scalar sent whole; an external-data model inlined before upload', async () => {
    const dir = join(tmp, 'submit-models');
    const { addr } = await startGrid(dir, 2);
    const fx = join(ROOT, 'test/fixtures/models');
    const run = async (args: string[], out: string): Promise<JobReport> => {
      const p = drill(['submit', '--to', addr, ...args, '--out', out, '--replicas', '2', '--json', '--quiet', '--data-dir', join(tmp, 'partner')]);
      procs.push(p);
      const code = await p.exited;
      expect(code, p.output()).toBe(0);
      return JSON.parse(await readFile(join(out, 'report.json'), 'utf8')) as JobReport;
    };
    const vadIn = { audio: join(fx, 'vad/audio.npy'), state: join(fx, 'vad/state.npy'), sr: join(fx, 'vad/sr.npy') };
    const vad = await run(['--model', join(fx, 'vad.onnx'), ...Object.entries(vadIn).flatMap(([k, v]) => ['--input', `${k}=${v}`]), '--unit-rows', '5'], join(dir, 'out-vad'));
    expect(vad.batching.inputs.state).toEqual({ split: true, axis: 1 });
    expect(vad.batching.inputs.sr).toEqual({ split: false, axis: null });
    const mlp = await run(['--model', join(fx, 'external_mlp.onnx'), '--input', `x=${join(fx, 'external_mlp/x.npy')}`], join(dir, 'out-ext'));
    for (const [model, inputs, report] of [
      ['vad.onnx', vadIn, vad],
      ['external_mlp.onnx', { x: join(fx, 'external_mlp/x.npy') }, mlp],
    ] as const) {
      const feeds: Record<string, Awaited<ReturnType<typeof readNpy>>> = {};
      for (const [k, p] of Object.entries(inputs)) feeds[k] = await readNpy(p);
      const s = await DirectSession.open(join(fx, model));
      const direct = await s.run(feeds);
      await s.release();
      for (const [name, ref] of Object.entries(direct)) {
        const got = await readNpy(join(dir, model === 'vad.onnx' ? 'out-vad' : 'out-ext', `${name}.npy`));
        expect(got.dims, `${model} ${name}`).toEqual(ref.dims);
        expect(tensorsAgree(parsePolicy('allclose:1e-3,1e-4'), got, ref), `${model} ${name}`).toBe(true);
      }
      expect(report.totalCredit).toBe(report.model.flopsPerRow * report.rows * 2);
    }
  });
});
