/**
 * Shared pieces of the hostile-peer tests: heap measurement (with `global.gc`, which
 * vitest.config.ts exposes through execArgv), small models built with the project's ONNX
 * builder, and waiting on events.
 */
import { writeFile } from 'node:fs/promises';
import { GraphBuilder } from '../../src/onnx/builder.ts';
import type { Dtype } from '../../src/util/tensor.ts';

/** Live heap bytes after a full collection (gc is exposed by vitest.config.ts). */
export function heapUsed(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('global.gc is not exposed: run through vitest (execArgv --expose-gc)');
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

/** Write an Identity model y = x for inputs [batch, ...tail] of `dtype`; returns its path. */
export async function writeIdentityModel(path: string, tail: number[], dtype: Dtype = 'float32'): Promise<string> {
  const g = new GraphBuilder({ name: 'identity', seed: 1 });
  const x = g.input('x', dtype, ['batch', ...tail]);
  g.output(g.op('Identity', [x]), dtype, ['batch', ...tail], 'y');
  await writeFile(path, await g.toBytes());
  return path;
}

/** Resolve when `cond()` holds, checking whenever `on` fires (and once at once). */
export function when(cond: () => boolean, subscribe: (check: () => void) => () => void, timeoutMs = 30_000, what = 'condition'): Promise<void> {
  if (cond()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      off();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    const off = subscribe(() => {
      if (!cond()) return;
      clearTimeout(t);
      off();
      resolve();
    });
  });
}

import { join } from 'node:path';
import { createDrillNode } from '../../src/net/node.ts';
import type { DrillNode } from '../../src/net/node.ts';
import { InferencePool } from '../../src/worker/pool.ts';
import { ModelCache } from '../../src/worker/models.ts';
import { WorkerNode } from '../../src/worker/node.ts';
import type { WorkerNodeOptions } from '../../src/worker/node.ts';

export interface TestWorker {
  node: DrillNode;
  pool: InferencePool;
  worker: WorkerNode;
  models: ModelCache;
  stop(): Promise<void>;
}

/** A real worker (libp2p node, one-thread ONNX Runtime pool, model cache in `dir`); joins `coordinator` unless it is undefined. */
export async function startWorker(dir: string, coordinator?: string, opts: Partial<WorkerNodeOptions> = {}): Promise<TestWorker> {
  const node = await createDrillNode();
  const pool = new InferencePool({ threads: 1, intraOpThreads: 1 });
  await pool.start();
  const models = new ModelCache(join(dir, 'models'));
  const worker = new WorkerNode(node, pool, models, { threads: 1, device: 'cpu', ...opts });
  await worker.start();
  if (coordinator) await worker.join(coordinator);
  return {
    node, pool, worker, models,
    async stop() {
      await worker.stop();
      await pool.stop();
      await node.stop();
    },
  };
}
