/**
 * Raw onnxruntime-node baseline pieces for bench/grid.bench.ts: `runRange` (chunked runs of a
 * row range, outputs gathered in order) and, when loaded as a worker_threads module, one
 * single-threaded session that runs its share of the rows (the "one session per core" baseline).
 * Kept apart from the bench so a raw thread loads only ORT and the .npy reader, not libp2p.
 */
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { DirectSession } from '../src/worker/direct.ts';
import { readNpyRows } from '../src/util/npy.ts';
import type { HostTensor, TensorData } from '../src/util/tensor.ts';

/** What a raw thread is asked to do. */
export interface RawTask {
  model: string;
  inputs: Record<string, string>;
  start: number;
  end: number;
  chunk: number;
  intraOpThreads: number;
}

/** A raw thread's answer: its rows' outputs, in order. */
export interface RawReply {
  outputs: Record<string, HostTensor>;
}

function rowsOf(t: HostTensor, s: number, e: number): HostTensor {
  const per = t.data.length / t.dims[0]!;
  return { dtype: t.dtype, dims: [e - s, ...t.dims.slice(1)], data: t.data.subarray(s * per, e * per) as TensorData };
}

/**
 * Run rows [start, end) of `inputs` (whose row 0 is row `base` of the job) in chunks of `chunk`
 * rows; each output gathered into one array.
 */
export async function runRange(s: DirectSession, inputs: Record<string, HostTensor>, base: number, start: number, end: number, chunk: number): Promise<Record<string, HostTensor>> {
  const out: Record<string, HostTensor> = {};
  for (let r = start; r < end; r += chunk) {
    const e = Math.min(end, r + chunk);
    const feeds: Record<string, HostTensor> = {};
    for (const [k, t] of Object.entries(inputs)) feeds[k] = rowsOf(t, r - base, e - base);
    const res = await s.run(feeds);
    for (const [k, t] of Object.entries(res)) {
      let o = out[k];
      const per = t.data.length / t.dims[0]!;
      if (!o) {
        const Ctor = t.data.constructor as new (n: number) => TensorData;
        o = out[k] = { dtype: t.dtype, dims: [end - start, ...t.dims.slice(1)], data: new Ctor(per * (end - start)) };
      }
      (o.data as Float32Array).set(t.data as Float32Array, (r - start) * per);
    }
  }
  return out;
}

if (!isMainThread && parentPort) {
  const task = workerData as RawTask;
  const s = await DirectSession.open(task.model, { intraOpThreads: task.intraOpThreads, allowSpinning: false });
  const inputs: Record<string, HostTensor> = {};
  for (const [k, p] of Object.entries(task.inputs)) inputs[k] = await readNpyRows(p, task.start, task.end);
  const outputs = await runRange(s, inputs, task.start, task.start, task.end, task.chunk);
  await s.release();
  const reply: RawReply = { outputs };
  parentPort.postMessage(reply, Object.values(outputs).map((t) => t.data.buffer as ArrayBuffer));
}
