/**
 * Bad input gets a clear error and loses nothing: `drill run` exits 2 with one line naming the
 * field, what was expected and what was received — no stack trace — and writes no output
 * that could look complete.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeNpy, readNpyRows } from '../../src/util/npy.ts';
import { ROOT, drill } from '../helpers/grid.ts';

let tmp: string;
const mlp = join(ROOT, 'workloads/mlp/model.onnx');
const refused = join(ROOT, 'test/fixtures/models/refused.onnx');
const refusedX = join(ROOT, 'test/fixtures/models/refused/x.npy');
const enc = join(ROOT, 'workloads/encoder/model.onnx');

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'drill-cli-'));
  await writeFile(join(tmp, 'f64.npy'), encodeNpy({ dtype: 'float64', dims: [4, 32], data: new Float64Array(128) }));
  await writeFile(join(tmp, 'wide.npy'), encodeNpy({ dtype: 'float32', dims: [4, 31], data: new Float32Array(124) }));
  await writeFile(join(tmp, 'ok.npy'), encodeNpy({ dtype: 'float32', dims: [4, 32], data: new Float32Array(128) }));
  await writeFile(join(tmp, 'garbage.npy'), 'this is not numpy');
  await writeFile(join(tmp, 'model.txt'), 'not a model at all');
  await writeFile(join(tmp, 'a-file'), '');
  const ids = await readNpyRows(join(ROOT, 'workloads/encoder/inputs/input_ids.npy'), 0, 4);
  const mask = await readNpyRows(join(ROOT, 'workloads/encoder/inputs/attention_mask.npy'), 0, 3);
  await writeFile(join(tmp, 'ids4.npy'), encodeNpy(ids));
  await writeFile(join(tmp, 'mask3.npy'), encodeNpy(mask));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function run(args: string[], outName = 'out'): Promise<{ code: number | null; text: string; out: string }> {
  const out = join(tmp, outName);
  const p = drill(['run', '--out', out, '--quiet', ...args]);
  const code = await p.exited;
  return { code, text: p.output(), out };
}

const cases: [string, string[], RegExp][] = [
  ['missing model file', ['--model', '@nope.onnx', '--input', 'x.npy'], /--model: expected a readable \.onnx file, received ".*nope\.onnx" \(no such file\)/],
  ['not an ONNX model', ['--model', '@model.txt', '--input', '@ok.npy'], /--model: expected a model ONNX Runtime can load, received ".*model\.txt" \(ONNX Runtime: .+\)\n/],
  // Valid protobuf that ORT refuses (Add of float32 and int64): ORT's own message, on one line.
  ['a model ONNX Runtime refuses', ['--model', refused, '--input', refusedX], /--model: expected a model ONNX Runtime can load, received ".*refused\.onnx" \(ONNX Runtime: [^\n]*Type parameter \(T\) of Optype \(Add\) bound to different types[^\n]*\)\n/],
  ['--batch-axis naming nothing', ['--model', mlp, '--input', '@ok.npy', '--batch-axis', 'nope=0'], /--batch-axis nope: expected an input or output the model has \(features, logits, probs\), received "nope"/],
  ['--batch-axis without an axis', ['--model', mlp, '--input', '@ok.npy', '--batch-axis', 'features'], /--batch-axis: expected NAME=AXIS with AXIS a non-negative integer, received "features"/],
  ['--batch-axis on a fixed dim', ['--model', mlp, '--input', '@ok.npy', '--batch-axis', 'features=1'], /--batch-axis features: expected an axis the model leaves dynamic \(model input \[batch, 32\]\), received "axis 1, fixed at 32"/],
  ['--batch-axis beyond the data', ['--model', mlp, '--input', '@ok.npy', '--batch-axis', 'features=2'], /--batch-axis features: expected an axis of its data \(rank 2, shape \[4, 32\] in .*ok\.npy\), received 2/],
  ['input name the model lacks', ['--model', mlp, '--input', 'pixels=@ok.npy'], /--input pixels: expected an input the model has \(features\), received "pixels"/],
  ['wrong dtype', ['--model', mlp, '--input', '@f64.npy'], /--input features: expected dtype float32 .*received "float64 in .*f64\.npy"/],
  ['wrong shape', ['--model', mlp, '--input', '@wide.npy'], /--input features: expected shape \[rows, 32\].*received "shape \[4, 31\]/],
  ['malformed .npy', ['--model', mlp, '--input', '@garbage.npy'], /--input features: expected a readable \.npy file/],
  ['inputs with different row counts', ['--model', enc, '--input', 'input_ids=@ids4.npy', '--input', 'attention_mask=@mask3.npy'], /--input attention_mask: expected 4 rows \(as input input_ids\), received "3 rows"/],
  ['a missing model input', ['--model', enc, '--input', 'input_ids=@ids4.npy'], /--input attention_mask: expected a \.npy file for model input "attention_mask", received nothing/],
  ['bad policy', ['--model', mlp, '--input', '@ok.npy', '--compare', 'fuzzy'], /--compare: expected one of exact, argmax, allclose:RTOL,ATOL/],
  ['bad replicas', ['--model', mlp, '--input', '@ok.npy', '--replicas', 'two'], /--replicas: expected an integer from 1 to 16, received "two"/],
  ['unknown flag', ['--model', mlp, '--input', '@ok.npy', '--wrokers', '3'], /--wrokers: expected one of --model/],
];

describe('drill run rejects bad input clearly', () => {
  for (const [name, args, re] of cases) {
    it(name, async () => {
      // '@' stands for the temp folder, which only exists once the suite has started
      const r = await run(args.map((a) => a.replace('@', `${tmp}/`)), `out-${name.replace(/\W+/g, '-')}`);
      expect(r.code, r.text).toBe(2);
      expect(r.text).toMatch(re);
      expect(r.text).not.toMatch(/\n\s+at /); // no stack trace
      expect(existsSync(join(r.out, 'report.json'))).toBe(false);
    });
  }

  it('an output directory that cannot be written', async () => {
    // a file where the directory should be, and a path through a file (root ignores mode bits)
    const blocked = [join(tmp, 'a-file'), join(tmp, 'a-file', 'sub')];
    for (const out of blocked) {
      const p = drill(['run', '--model', mlp, '--input', join(tmp, 'ok.npy'), '--out', out, '--quiet']);
      const code = await p.exited;
      expect(code, p.output()).toBe(2);
      expect(p.output()).toMatch(/--out: expected a directory that can be created and written/);
    }
  });
});

describe('credited cost', () => {
  it('comes from the model graph, not from a number in the manifest', async () => {
    const { prepareJob } = await import('../../src/coordinator/job.ts');
    const spec = await prepareJob({ model: mlp, inputs: { features: join(tmp, 'ok.npy') }, outDir: join(tmp, 'out-flops'), flopsPerRow: 10 ** 12 });
    // The mlp by hand: Gemm 32→128 (2·32·128 + 128), Relu 128, Gemm 128→64 (2·128·64 + 64), Relu 64,
    // Gemm 64→3 (2·64·3 + 3), Softmax 5·3.
    expect(spec.flopsPerRow).toBe(2 * 32 * 128 + 128 + 128 + 2 * 128 * 64 + 64 + 64 + 2 * 64 * 3 + 3 + 5 * 3);
  });
});
