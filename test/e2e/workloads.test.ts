/**
 * The committed sample workloads against real ONNX Runtime sessions:
 * - the decoder's declared inputs/outputs (names, types, dims) match what onnxruntime-node reports;
 * - shape inference predicts the output dims ORT actually produces;
 * - job.json has the manifest shape the grid parses, its FLOPs match the graph, its inputs fit the model;
 * - golden outputs agree, under the workload's own policy, with a fresh ORT run done the way a
 *   worker does it (default threads, one unit of rows at a time);
 * - the generator (a child process) reproduces models, inputs and manifests byte for byte.
 */
import { describe, expect, it, afterAll, beforeAll } from 'vitest';
import { readFileSync, readdirSync, mkdtempSync, rmSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { decodeModel, countFlops } from '../../src/onnx/index.ts';
import type { DecodedModel } from '../../src/onnx/index.ts';
import { parseNpy, encodeNpy } from '../../src/util/npy.ts';
import { parsePolicy, tensorsAgree } from '../../src/pod/policy.ts';
import type { HostTensor, TensorData, Dtype } from '../../src/util/tensor.ts';
import { WORKLOADS, workloadSpec } from '../../workloads/models.ts';
import { manifestJson, isRowByRow, workloadFlopsPerRow, type JobManifest } from '../../workloads/generate.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const WL = join(ROOT, 'workloads');
const tmp = mkdtempSync(join(tmpdir(), 'workloads-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Rows of each committed input checked against a fresh run: all of them, except the cnn (~0.2 GFLOP/row) where two units are enough. */
const CHECK_ROWS: Record<string, number> = { cnn: 128 };

function toOrt(t: HostTensor): ort.Tensor {
  return new ort.Tensor(t.dtype, t.data as Float32Array, t.dims);
}
function fromOrt(t: ort.Tensor): HostTensor {
  return { dtype: t.type as Dtype, dims: [...t.dims], data: (t.data as TensorData).slice() as TensorData };
}
function rows(t: HostTensor, a: number, b: number): HostTensor {
  const per = t.dims.slice(1).reduce((x, y) => x * y, 1);
  return { dtype: t.dtype, dims: [b - a, ...t.dims.slice(1)], data: t.data.subarray(a * per, b * per) as TensorData };
}
function concat(parts: HostTensor[]): HostTensor {
  const f = parts[0]!;
  const Ctor = f.data.constructor as new (n: number) => TensorData;
  const data = new Ctor(parts.reduce((s, p) => s + p.data.length, 0));
  let o = 0;
  for (const p of parts) {
    (data as Float32Array).set(p.data as Float32Array, o);
    o += p.data.length;
  }
  return { dtype: f.dtype, dims: [parts.reduce((s, p) => s + p.dims[0]!, 0), ...f.dims.slice(1)], data };
}
function loadManifest(name: string): JobManifest {
  return JSON.parse(readFileSync(join(WL, name, 'job.json'), 'utf8')) as JobManifest;
}
function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => join(d.parentPath, d.name).slice(dir.length + 1))
    .sort();
}

describe.each(WORKLOADS.map((w) => w.name))('workload %s', (name) => {
  const dir = join(WL, name);
  const model = readFileSync(join(dir, 'model.onnx'));
  let info: DecodedModel;
  beforeAll(async () => {
    info = await decodeModel(model, `${name}/model.onnx`);
  });

  it('the decoder agrees with the ORT session on declared input/output names, types and dims', async () => {
    const s = await ort.InferenceSession.create(model);
    try {
      expect(info.inputs.map((v) => v.name)).toEqual([...s.inputNames]);
      expect(info.outputs.map((v) => v.name)).toEqual([...s.outputNames]);
      const meta = [...s.inputMetadata, ...s.outputMetadata] as unknown as { name: string; isTensor: boolean; type: string; shape: (number | string)[] }[];
      const ours = [...info.inputs, ...info.outputs];
      expect(meta.length).toBe(ours.length);
      meta.forEach((m, i) => {
        expect(m.isTensor).toBe(true);
        expect({ name: m.name, type: m.type, shape: m.shape }).toEqual({ name: ours[i]!.name, type: ours[i]!.dtype, shape: ours[i]!.dims });
      });
      expect(info.opset).toBe(17);
      expect(model.length).toBeLessThan(3 * 1024 * 1024);
    } finally {
      await s.release();
    }
  });

  it('shape inference predicts the output dims ORT produces', async () => {
    const s = await ort.InferenceSession.create(model);
    try {
      const batch = isRowByRow(info) ? 1 : 3;
      const ins = workloadSpec(name).makeInputs(batch, 99);
      const feeds = Object.fromEntries(Object.entries(ins).map(([k, t]) => [k, toOrt(t)]));
      const out = await s.run(feeds);
      const inferred = countFlops(info, Object.fromEntries(Object.entries(ins).map(([k, t]) => [k, { dtype: t.dtype, dims: t.dims }])));
      expect(s.outputNames.map((o) => inferred.outputs[o])).toEqual(s.outputNames.map((o) => [...out[o]!.dims]));
      expect(inferred.notes).toEqual([]);
      if (isRowByRow(info)) {
        // The model really is row-at-a-time: ORT refuses two rows.
        const two = Object.fromEntries(Object.entries(workloadSpec(name).makeInputs(2, 99)).map(([k, t]) => [k, toOrt(t)]));
        await expect(s.run(two)).rejects.toThrow();
      } else expect(info.inputs.every((v) => typeof v.dims?.[0] === 'string')).toBe(true);
    } finally {
      await s.release();
    }
  });

  it('job.json has the manifest shape, the graph FLOPs, and inputs that fit the model', () => {
    const m = loadManifest(name);
    expect(Object.keys(m)).toEqual(['name', 'model', 'inputs', 'policy', 'replicas', 'unitRows', 'flopsPerRow']);
    expect(m.name).toBe(name);
    expect(m.model).toBe('model.onnx');
    const committed = Object.fromEntries(Object.entries(m.inputs).map(([k, p]) => [k, parseNpy(readFileSync(join(dir, p)))]));
    expect(m.flopsPerRow).toBe(workloadFlopsPerRow(info, committed));
    expect(m.flopsPerRow).toBeGreaterThan(0);
    parsePolicy(m.policy, `${name}/job.json policy`);
    expect(Number.isInteger(m.replicas) && m.replicas >= 2).toBe(true);
    expect(Object.keys(m.inputs).sort()).toEqual(info.inputs.map((v) => v.name).sort());
    const nRows = new Set<number>();
    for (const v of info.inputs) {
      const t = parseNpy(readFileSync(join(dir, m.inputs[v.name]!)), m.inputs[v.name]);
      expect(t.dtype).toBe(v.dtype);
      expect(t.dims.slice(1)).toEqual(v.dims!.slice(1));
      nRows.add(t.dims[0]!);
    }
    expect(nRows.size).toBe(1);
    const total = [...nRows][0]!;
    expect(total).toBe(workloadSpec(name).rows);
    expect(m.unitRows).toBeGreaterThan(0);
    expect(total % m.unitRows).toBe(0);
  });

  it('golden outputs agree with a fresh ORT run under the workload policy', async () => {
    const m = loadManifest(name);
    const policy = parsePolicy(m.policy);
    const inputs = Object.fromEntries(Object.entries(m.inputs).map(([k, p]) => [k, parseNpy(readFileSync(join(dir, p)))]));
    const total = Object.values(inputs)[0]!.dims[0]!;
    const n = Math.min(total, CHECK_ROWS[name] ?? total);
    // Like a worker: default session options, one unit (or one row, for fixed-1 models) at a time.
    const step = isRowByRow(info) ? 1 : m.unitRows;
    const s = await ort.InferenceSession.create(model);
    const got: Record<string, HostTensor[]> = {};
    try {
      for (let r = 0; r < n; r += step) {
        const feeds = Object.fromEntries(Object.entries(inputs).map(([k, t]) => [k, toOrt(rows(t, r, Math.min(n, r + step)))]));
        const out = await s.run(feeds);
        for (const o of s.outputNames) (got[o] ??= []).push(fromOrt(out[o]!));
      }
    } finally {
      await s.release();
    }
    expect(files(join(dir, 'golden'))).toEqual(info.outputs.map((o) => `${o.name}.npy`).sort());
    for (const o of info.outputs) {
      const golden = parseNpy(readFileSync(join(dir, 'golden', `${o.name}.npy`)));
      expect(golden.dims[0]).toBe(total);
      const fresh = concat(got[o.name]!);
      expect(tensorsAgree(policy, rows(golden, 0, n), fresh), `${name}/${o.name}`).toBe(true);
      // And the check can fail: a perturbed result is rejected (exact/allclose by value, argmax by decision).
      const bad = { ...fresh, data: fresh.data.slice() as TensorData };
      if (bad.data instanceof Float32Array) {
        // First vector along the last axis becomes one-hot at a position other than its argmax.
        const C = bad.dims[bad.dims.length - 1]!;
        const first = Array.from(fresh.data.subarray(0, C) as Float32Array);
        const hot = (first.indexOf(Math.max(...first)) + 1) % C;
        for (let i = 0; i < C; i++) bad.data[i] = i === hot ? 10 : -10;
      } else (bad.data as Int32Array)[0] = (bad.data as Int32Array)[0]! + 1;
      expect(tensorsAgree(policy, rows(golden, 0, n), bad)).toBe(false);
    }
  });
});

describe('encoder semantics', () => {
  it('padding tokens do not change the pooled embedding; a real token does', async () => {
    const s = await ort.InferenceSession.create(readFileSync(join(WL, 'encoder', 'model.onnx')));
    try {
      const base = workloadSpec('encoder').makeInputs(8, 5);
      const ids = base.input_ids!.data as BigInt64Array;
      const mask = base.attention_mask!.data as Float32Array;
      const run = async (idData: BigInt64Array): Promise<Float32Array> =>
        (await s.run({ input_ids: toOrt({ ...base.input_ids!, data: idData }), attention_mask: toOrt(base.attention_mask!) })).pooled!.data as Float32Array;
      const ref = await run(ids);
      const padChanged = ids.slice();
      const realChanged = ids.slice();
      for (let i = 0; i < ids.length; i++) if (mask[i] === 0) padChanged[i] = 7n;
      realChanged[0] = ids[0]! === 3n ? 4n : 3n; // position 0 is always a real token (every row has ≥ 4)
      const pad = await run(padChanged);
      const real = await run(realChanged);
      expect(mask.some((m) => m === 0)).toBe(true);
      const maxDiff = (a: Float32Array, b: Float32Array, from: number, to: number): number => {
        let d = 0;
        for (let i = from; i < to; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
        return d;
      };
      expect(maxDiff(ref, pad, 0, ref.length)).toBeLessThan(1e-5);
      expect(maxDiff(ref, real, 0, 64)).toBeGreaterThan(1e-3);
      expect(maxDiff(ref, real, 64, ref.length)).toBe(0); // other rows untouched
    } finally {
      await s.release();
    }
  });
});

describe('generator', () => {
  it('reproduces every committed model, input and manifest byte for byte (cnn golden excluded for time)', async () => {
    const out = join(tmp, 'regen');
    execFileSync(process.execPath, [join(WL, 'generate.ts'), '--out', out, '--only', 'mlp,encoder,rowwise'], { stdio: 'pipe' });
    for (const name of ['mlp', 'encoder', 'rowwise']) {
      expect(files(join(out, name))).toEqual(files(join(WL, name)));
      for (const f of files(join(out, name))) {
        const a = readFileSync(join(out, name, f));
        const b = readFileSync(join(WL, name, f));
        if (f.startsWith('golden/')) {
          // Golden bytes can differ on another CPU; values must agree under the policy.
          expect(tensorsAgree(parsePolicy(loadManifest(name).policy), parseNpy(a), parseNpy(b)), `${name}/${f}`).toBe(true);
        } else expect(a.equals(b), `${name}/${f}`).toBe(true);
      }
    }
    // cnn: model, inputs and manifest rebuilt in-process (its golden run alone takes seconds).
    const spec = workloadSpec('cnn');
    const cnnModel = await spec.build();
    expect(Buffer.from(cnnModel).equals(readFileSync(join(WL, 'cnn', 'model.onnx')))).toBe(true);
    const m = loadManifest('cnn');
    const ins = spec.makeInputs(spec.rows, spec.inputSeed);
    for (const [k, p] of Object.entries(m.inputs)) expect(Buffer.from(encodeNpy(ins[k]!)).equals(readFileSync(join(WL, 'cnn', p)))).toBe(true);
    expect(manifestJson({ ...m, flopsPerRow: workloadFlopsPerRow(await decodeModel(cnnModel), ins) })).toBe(readFileSync(join(WL, 'cnn', 'job.json'), 'utf8'));
  });

  it('--bench writes bigger inputs and no golden; bad flags exit 2 with the field named', () => {
    const out = join(tmp, 'bench');
    execFileSync(process.execPath, [join(WL, 'generate.ts'), '--bench', '--rows', '40', '--only', 'mlp', '--out', out], { stdio: 'pipe' });
    expect(existsSync(join(out, 'mlp', 'golden'))).toBe(false);
    const m = JSON.parse(readFileSync(join(out, 'mlp', 'job.json'), 'utf8')) as JobManifest;
    expect(parseNpy(readFileSync(join(out, 'mlp', m.inputs.features!))).dims).toEqual([40, 32]);
    let status = 0;
    let stderr = '';
    try {
      execFileSync(process.execPath, [join(WL, 'generate.ts'), '--only', 'resnet'], { stdio: 'pipe' });
    } catch (e) {
      status = (e as { status: number }).status;
      stderr = String((e as { stderr: Buffer }).stderr);
    }
    expect(status).toBe(2);
    expect(stderr).toMatch(/workload: expected one of cnn, mlp, encoder, upscale, rowwise, received "resnet"/);
  });
});
