/** Shared helpers for grid e2e tests: run a workload job, compare with a direct ORT run. */
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readNpy } from '../../src/util/npy.ts';
import type { HostTensor } from '../../src/util/tensor.ts';
import { DirectSession } from '../../src/worker/direct.ts';
import { readJobManifest } from '../../src/coordinator/job.ts';

export const ROOT = join(import.meta.dirname, '..', '..');
export const BIN = join(ROOT, 'bin', 'drill.js');

/** Direct, single-session ONNX Runtime run of a whole workload, row by row when `rowwise`. */
export async function directRun(workload: string, rowwise = false): Promise<Record<string, HostTensor>> {
  const m = await readJobManifest(join(ROOT, 'workloads', workload, 'job.json'));
  const inputs: Record<string, HostTensor> = {};
  for (const [k, p] of Object.entries(m.inputs)) inputs[k] = await readNpy(p);
  const s = await DirectSession.open(m.model, { intraOpThreads: 1 });
  try {
    if (!rowwise) return await s.run(inputs);
    const rows = Object.values(inputs)[0]!.dims[0]!;
    const parts: Record<string, HostTensor>[] = [];
    for (let r = 0; r < rows; r++) {
      const one: Record<string, HostTensor> = {};
      for (const [k, t] of Object.entries(inputs)) {
        const per = t.data.length / rows;
        one[k] = { dtype: t.dtype, dims: [1, ...t.dims.slice(1)], data: t.data.slice(r * per, (r + 1) * per) as HostTensor['data'] };
      }
      parts.push(await s.run(one));
    }
    const out: Record<string, HostTensor> = {};
    for (const k of Object.keys(parts[0]!)) {
      const first = parts[0]![k]!;
      const per = first.data.length;
      const data = new (first.data.constructor as Float32ArrayConstructor)(per * rows);
      parts.forEach((p, i) => data.set(p[k]!.data as Float32Array, i * per));
      out[k] = { dtype: first.dtype, dims: [rows, ...first.dims.slice(1)], data };
    }
    return out;
  } finally {
    await s.release();
  }
}

export interface Proc {
  child: ChildProcess;
  /** Resolves with the first stdout line matching `re`. */
  waitFor(re: RegExp): Promise<RegExpMatchArray>;
  output(): string;
  exited: Promise<number | null>;
}

/** Start `node bin/drill.js ...args` as a child process, collecting its output. */
export function drill(args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const waiters: { re: RegExp; resolve: (m: RegExpMatchArray) => void; reject: (e: Error) => void }[] = [];
  const check = (): void => {
    for (const w of [...waiters]) {
      const m = out.match(w.re);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  };
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    check();
  });
  child.stderr!.on('data', (d: Buffer) => {
    out += d.toString();
    check();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => {
    for (const w of waiters.splice(0)) w.reject(new Error(`process exited (${code}) before printing ${w.re}:\n${out}`));
    resolve(code);
  }));
  return {
    child,
    exited,
    output: () => out,
    waitFor: (re) => {
      const m = out.match(re);
      if (m) return Promise.resolve(m);
      return new Promise((resolve, reject) => waiters.push({ re, resolve, reject }));
    },
  };
}
