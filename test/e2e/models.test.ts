/**
 * Any model ONNX Runtime runs, the grid runs: every fixture of test/fixtures/models/ goes through
 * `prepareJob` and the embedded grid (3 workers, 2 replicas, real libp2p, real ORT pools) and
 * its `.npy` outputs must equal one direct ONNX Runtime run over the whole inputs — exactly for
 * integer and bool outputs, by value for floats (halves decoded). Also: the split/broadcast plan
 * in report.json, credit = FLOPs per row × rows × replicas from the real shapes, external data
 * inlined into a self-contained model, and the remote-intake refusal of external data.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, rm, readdir, readFile, copyFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, basename } from 'node:path';
import { LocalGrid } from '../../src/node/local-grid.ts';
import { prepareJob } from '../../src/coordinator/job.ts';
import type { JobRequest, JobSpec } from '../../src/coordinator/job.ts';
import type { JobReport } from '../../src/coordinator/report.ts';
import { readNpy, parseNpy } from '../../src/util/npy.ts';
import type { HostTensor } from '../../src/util/tensor.ts';
import { parsePolicy, tensorsAgree } from '../../src/pod/policy.ts';
import { DirectSession } from '../../src/worker/direct.ts';
import { decodeModel } from '../../src/onnx/decode.ts';
import { ROOT } from '../helpers/grid.ts';

const FIX = join(ROOT, 'test', 'fixtures', 'models');
/** Values compared with the default tolerance; integer and bool outputs must be equal exactly. */
const POLICY = parsePolicy('allclose:1e-3,1e-4');

let tmp: string;
let grid: LocalGrid;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'drill-models-'));
  grid = new LocalGrid({ workers: 3, threadsPerWorker: 1, dataDir: join(tmp, 'grid') });
  await grid.start();
});
afterAll(async () => {
  await grid?.stop();
  await rm(tmp, { recursive: true, force: true });
});

async function inputsOf(name: string): Promise<Record<string, string>> {
  const dir = join(FIX, name);
  return Object.fromEntries((await readdir(dir)).filter((f) => f.endsWith('.npy')).map((f) => [basename(f, '.npy'), join(dir, f)]));
}

async function runFixture(name: string, over: Partial<JobRequest> = {}): Promise<{ spec: JobSpec; report: JobReport }> {
  const spec = await prepareJob({ model: join(FIX, `${name}.onnx`), inputs: await inputsOf(name), outDir: join(tmp, `out-${name}`), replicas: 2, ...over });
  const h = await grid.coordinator.submit(spec);
  const report = await h.result;
  expect(report.status, report.error).toBe('done');
  return { spec, report };
}

/** One ORT session over the whole inputs: the reference. */
async function direct(model: string, inputs: Record<string, string>): Promise<Record<string, HostTensor>> {
  const feeds: Record<string, HostTensor> = {};
  for (const [k, p] of Object.entries(inputs)) feeds[k] = await readNpy(p);
  const s = await DirectSession.open(model, { intraOpThreads: 1 });
  try {
    return await s.run(feeds);
  } finally {
    await s.release();
  }
}

async function expectMatchesDirect(name: string, report: JobReport): Promise<void> {
  const ref = await direct(join(FIX, `${name}.onnx`), await inputsOf(name));
  expect(Object.keys(report.outputs).sort()).toEqual(Object.keys(ref).sort());
  for (const [k, path] of Object.entries(report.outputs)) {
    const got = await readNpy(path);
    expect(got.dtype, k).toBe(ref[k]!.dtype);
    expect(got.dims, k).toEqual(ref[k]!.dims);
    expect(tensorsAgree(POLICY, got, ref[k]!), `output ${k} of ${name}`).toBe(true);
  }
}

/** Credit: every credited replica earns rows × flopsPerRow; with 2 honest replicas per unit. */
function expectCredit(report: JobReport, flopsPerRow: number): void {
  expect(report.model.flopsPerRow).toBe(flopsPerRow);
  expect(report.totalCredit).toBe(flopsPerRow * report.rows * 2);
}

describe('models the old decoder refused or mis-costed run on the grid', () => {
  it('a toy BERT (int64 ids, dynamic batch and sequence, nodes out of topological order)', async () => {
    const { report } = await runFixture('toy_bert');
    await expectMatchesDirect('toy_bert', report);
    expect(report.model.costNotes.join('\n')).toMatch(/not in topological order; sorted/);
    expect(report.model.flopsPerRow).toBeGreaterThan(20_000);
    expect(report.totalCredit).toBe(report.model.flopsPerRow * report.rows * 2);
  });

  it('a 300,000-element int64_data initializer', async () => {
    const { report } = await runFixture('big_int64');
    await expectMatchesDirect('big_int64', report);
  });

  it('If and Loop subgraphs, costed with their iterations and the branch taken', async () => {
    const { report } = await runFixture('if_loop');
    await expectMatchesDirect('if_loop', report);
    expectCredit(report, 3 * (2 * 8 * 8 + 8) + 2 * 8 * 4); // mode = True: the then branch
  });

  it('float16 in and out', async () => {
    const { report } = await runFixture('fp16');
    await expectMatchesDirect('fp16', report);
    const y = parseNpy(await readFile(report.outputs.y!));
    expect(y.dtype).toBe('float16');
    expectCredit(report, 2 * 8 * 6 + 6 + 6);
  });

  it('int8-quantized MatMul/Conv (QLinearMatMul, MatMulInteger, QLinearConv) and com.microsoft QLinearAdd / FusedMatMul', async () => {
    const { report } = await runFixture('int8_quant');
    await expectMatchesDirect('int8_quant', report);
    const dtypes = await Promise.all(Object.values(report.outputs).map(async (p) => parseNpy(await readFile(p)).dtype));
    expect(dtypes.sort()).toEqual(['float32', 'float32', 'int32', 'uint8', 'uint8']);
  });

  it('the CumSum model that minted 512 GFLOP of credit is credited 8 FLOPs a row', async () => {
    const { report } = await runFixture('cumsum_mint');
    await expectMatchesDirect('cumsum_mint', report);
    expectCredit(report, 8);
    expect(report.totalCredit).toBe(256 * 8 * 2);
  });
});

describe('inputs that are not rows', () => {
  it('a voice-activity model: a recurrent state [2, batch, 16] split on axis 1 and stitched back, a scalar sample rate sent whole, nested Ifs', async () => {
    const { report } = await runFixture('vad', { unitRows: 5 });
    expect(report.batching).toEqual({
      inputs: { audio: { split: true, axis: 0 }, state: { split: true, axis: 1 }, sr: { split: false, axis: null } },
      outputs: { output: { stitched: true, axis: 0 }, stateN: { stitched: true, axis: 1 } },
      notes: [],
    });
    await expectMatchesDirect('vad', report);
    // sr = 16000 is known at intake: both nested Ifs are costed on the branch they take.
    expectCredit(report, 2 * 2 * 64 * 16 + 2 * (2 * 16 * 16 + 16 + 16) + 2 * 16 + 1);
  });

  it('a greedy decoder with [1]-shaped settings sent whole and a sequence that grows in a Loop', async () => {
    const { report } = await runFixture('beam', { unitRows: 3 });
    expect(report.batching.inputs).toEqual({ input_ids: { split: true, axis: 0 }, max_new_tokens: { split: false, axis: null }, temperature: { split: false, axis: null } });
    await expectMatchesDirect('beam', report);
    const seq = parseNpy(await readFile(report.outputs.sequences!));
    expect(seq.dims).toEqual([20, 5 + 6]);
    expectCredit(report, 8 * (5 + 6 + 7 + 8 + 9 + 10) + 6 * (2 * 8 * 20 + 20 + 20));
  });

  it('an output marked as having no batch axis fails the job when units disagree on it, leaving no output file', async () => {
    // vad's stateN marked --broadcast: each unit's own state differs, so units disagree.
    const spec = await prepareJob({ model: join(FIX, 'vad.onnx'), inputs: await inputsOf('vad'), outDir: join(tmp, 'out-vad-bcast'), replicas: 2, unitRows: 6, broadcast: ['stateN'] });
    const report = await (await grid.coordinator.submit(spec)).result;
    expect(report.status).toBe('failed');
    expect(report.error).toMatch(/output stateN has no batch axis, so every unit must give the same value, but rows \[\d+, \d+\) gave a different one/);
    expect(existsSync(join(tmp, 'out-vad-bcast', 'stateN.npy'))).toBe(false);
  });
});

describe('detectors: outputs whose size depends on the image', () => {
  it('a single-image detector with no batch dim ([3, height, width]) runs as one unit of one row', async () => {
    const { spec, report } = await runFixture('detector');
    expect(spec.rows).toBe(1);
    expect(report.batching.inputs).toEqual({ image: { split: false, axis: null } });
    expect(report.batching.notes.join('\n')).toMatch(/no input has a batch dimension: the job is one unit of one row/);
    await expectMatchesDirect('detector', report);
    // One run: Conv 2·3·9·24·32 + its bias 24·32, Sigmoid 24·32, Greater 24·32, TopK over the 768 scores.
    expectCredit(report, 2 * 3 * 9 * 24 * 32 + 24 * 32 + 24 * 32 + 24 * 32 + 24 * 32);
  });

  it('a batched detector whose detections have a data-dependent size runs as one unit by default', async () => {
    const { spec, report } = await runFixture('detector_batched');
    expect(spec.unitRows).toBe(spec.rows);
    expect(report.batching.outputs.detections).toEqual({ stitched: false, axis: null });
    expect(report.batching.notes.join('\n')).toMatch(/the batch axis of output detections is not known .*one unit/);
    await expectMatchesDirect('detector_batched', report);
    // Split into several units anyway, the detections cannot be stitched: the job fails saying so
    // (and no worker is blamed: every one returned what the model gives).
    const split = await prepareJob({ model: join(FIX, 'detector_batched.onnx'), inputs: await inputsOf('detector_batched'), outDir: join(tmp, 'out-det-split'), replicas: 2, unitRows: 4 });
    const failed = await (await grid.coordinator.submit(split)).result;
    expect(failed.status).toBe('failed');
    expect(failed.error).toMatch(/output detections: .*run the job as one unit with --unit-rows 12/);
    expect(failed.workers.every((w) => !w.quarantined)).toBe(true);
  });
});

describe('every dtype through the grid and back', () => {
  it('float16/32/64, int8–64, uint8–64 and bool: .npy in → grid → .npy out equals a direct run, byte for byte', async () => {
    const { report } = await runFixture('dtypes');
    const ref = await direct(join(FIX, 'dtypes.onnx'), await inputsOf('dtypes'));
    expect(Object.keys(report.outputs)).toHaveLength(12);
    for (const [k, path] of Object.entries(report.outputs)) {
      const bytes = await readFile(path);
      const got = parseNpy(bytes);
      expect(got.dtype, k).toBe(ref[k]!.dtype);
      expect(Buffer.from(got.data.buffer, got.data.byteOffset, got.data.byteLength).equals(Buffer.from(ref[k]!.data.buffer, ref[k]!.data.byteOffset, ref[k]!.data.byteLength)), k).toBe(true);
      // Identity: the output file holds the input file's data exactly, with the same header numpy would write.
      const input = await readFile(join(FIX, 'dtypes', `${k.replace('out_', 'in_')}.npy`));
      expect(bytes.equals(input), `${k} is the input's .npy byte for byte`).toBe(true);
    }
  });
});

describe('external data', () => {
  it('a .onnx with its data file beside it is inlined into one self-contained model the workers receive', async () => {
    const { spec, report } = await runFixture('external_mlp');
    await expectMatchesDirect('external_mlp', report);
    expect(spec.modelPath).toBe(join(tmp, 'out-external_mlp', '.drill', 'external_mlp.inlined.onnx'));
    const inlined = await decodeModel(await readFile(spec.modelPath));
    expect(inlined.externalTensors).toBe(0);
    expect((await decodeModel(await readFile(join(FIX, 'external_mlp.onnx')))).externalTensors).toBe(4);
    expectCredit(report, 2 * 12 * 32 + 32 + 32 + 2 * 32 * 3 + 3);
  });

  it('without its data file: a clear error saying how to fix it; a remote intake refuses external data', async () => {
    const dir = join(tmp, 'lonely');
    await mkdir(dir, { recursive: true });
    await copyFile(join(FIX, 'external_mlp.onnx'), join(dir, 'external_mlp.onnx'));
    const req = { model: join(dir, 'external_mlp.onnx'), inputs: await inputsOf('external_mlp'), outDir: join(tmp, 'out-lonely') };
    await expect(prepareJob(req)).rejects.toThrow(/--model: expected its external data file external_mlp\.onnx\.data next to the model, received ".*external_mlp\.onnx" \(ENOENT for tensor W1: copy the data file next to the \.onnx\)/);
    await expect(prepareJob({ ...req, model: join(FIX, 'external_mlp.onnx'), allowExternalData: false })).rejects.toThrow(/--model: expected a self-contained model .*4 tensors keep their data in files beside the model; drill submit inlines them/);
  });
});
