/**
 * The raw onnxruntime-node baseline as a whole process (what a partner would write without the
 * grid): read the inputs, run every row, write the outputs as .npy. Two ways with the same
 * total thread count:
 *   --mode split  one single-threaded session per thread in worker_threads, each a contiguous share
 *   --mode intra  one session with intraOpThreads = threads, rows in chunks
 * Prints one JSON line {rows, maxRssBytes} on stdout. Timed from outside (bench/grid.bench.ts).
 *
 *   node bench/raw.ts --model M.onnx --input NAME=X.npy [...] --out DIR [--threads N] [--mode split|intra] [--chunk ROWS]
 */
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DirectSession } from '../src/worker/direct.ts';
import { readNpy, readNpyHeader, NpyWriter } from '../src/util/npy.ts';
import type { HostTensor, TensorData } from '../src/util/tensor.ts';
import { runRange } from './raw-thread.ts';
import { peakRssBytes } from '../src/util/rss.ts';
import type { RawReply, RawTask } from './raw-thread.ts';

function args(): { model: string; inputs: Record<string, string>; out: string; threads: number; mode: 'split' | 'intra'; chunk: number } {
  const a = process.argv.slice(2);
  const inputs: Record<string, string> = {};
  let model = '';
  let out = '';
  let threads = availableParallelism();
  let mode: 'split' | 'intra' = 'split';
  let chunk = 64;
  for (let i = 0; i < a.length; i++) {
    const v = a[i + 1]!;
    switch (a[i]) {
      case '--model': model = v; i++; break;
      case '--input': inputs[v.slice(0, v.indexOf('='))] = v.slice(v.indexOf('=') + 1); i++; break;
      case '--out': out = v; i++; break;
      case '--threads': threads = Number(v); i++; break;
      case '--mode': mode = v as 'split' | 'intra'; i++; break;
      case '--chunk': chunk = Number(v); i++; break;
      default: throw new Error(`bench/raw.ts: unknown argument ${a[i]}`);
    }
  }
  if (!model || !out || Object.keys(inputs).length === 0) throw new Error('bench/raw.ts: --model, --input and --out are required');
  return { model, inputs, out, threads, mode, chunk };
}

async function writeOutputs(dir: string, outputs: Record<string, HostTensor>): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [k, t] of Object.entries(outputs)) {
    const w = await NpyWriter.open(join(dir, `${k.replace(/[^A-Za-z0-9._-]/g, '_')}.npy`), t.dtype, t.dims);
    await w.write(t);
    await w.close();
  }
}

function concat(parts: Record<string, HostTensor>[], rows: number): Record<string, HostTensor> {
  const out: Record<string, HostTensor> = {};
  for (const name of Object.keys(parts[0]!)) {
    const ts = parts.map((p) => p[name]!);
    const Ctor = ts[0]!.data.constructor as new (n: number) => TensorData;
    const data = new Ctor(ts.reduce((s, t) => s + t.data.length, 0));
    let o = 0;
    for (const t of ts) {
      (data as Float32Array).set(t.data as Float32Array, o);
      o += t.data.length;
    }
    out[name] = { dtype: ts[0]!.dtype, dims: [rows, ...ts[0]!.dims.slice(1)], data };
  }
  return out;
}

const o = args();
const rows = (await readNpyHeader(Object.values(o.inputs)[0]!)).dims[0]!;
let outputs: Record<string, HostTensor>;
if (o.mode === 'intra') {
  const s = await DirectSession.open(o.model, { intraOpThreads: o.threads, allowSpinning: true });
  const inputs: Record<string, HostTensor> = {};
  for (const [k, p] of Object.entries(o.inputs)) inputs[k] = await readNpy(p);
  outputs = await runRange(s, inputs, 0, 0, rows, o.chunk);
  await s.release();
} else {
  const per = Math.ceil(rows / o.threads);
  const parts = await Promise.all(
    Array.from({ length: o.threads }, (_, i) => {
      const task: RawTask = { model: o.model, inputs: o.inputs, start: Math.min(rows, i * per), end: Math.min(rows, (i + 1) * per), chunk: o.chunk, intraOpThreads: 1 };
      return new Promise<RawReply>((res, rej) => {
        const w = new Worker(new URL('./raw-thread.ts', import.meta.url), { workerData: task });
        w.once('message', (m: RawReply) => {
          res(m);
          void w.terminate();
        });
        w.once('error', rej);
      });
    }),
  );
  outputs = concat(parts.map((p) => p.outputs), rows);
}
await writeOutputs(o.out, outputs);
process.stdout.write(JSON.stringify({ rows, maxRssBytes: peakRssBytes() }) + '\n');
