/**
 * The embedded local grid: one coordinator and N workers (plus K demo cheaters) on 127.0.0.1,
 * each worker with its own libp2p node, model cache and ONNX Runtime thread pool, all in this
 * process. `drill run`, `drill demo` (npm start) and the benchmark use it. Built in order,
 * closed in reverse.
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createDrillNode } from '../net/node.ts';
import type { DrillNode } from '../net/node.ts';
import type { Logger } from '../util/log.ts';
import { silentLogger } from '../util/log.ts';
import { Coordinator } from '../coordinator/service.ts';
import type { CoordinatorOptions } from '../coordinator/service.ts';
import { InferencePool } from '../worker/pool.ts';
import type { Device } from '../worker/pool.ts';
import { ModelCache } from '../worker/models.ts';
import { WorkerNode } from '../worker/node.ts';

export interface LocalGridOptions {
  /** Honest workers. Default 3. */
  workers?: number;
  /** Extra workers that corrupt their results (demo). Default 0. */
  cheaters?: number;
  /**
   * Threads per worker. Default: cores / (workers + cheaters), at least 1 — the grid as a whole
   * uses one session per core, like the raw ONNX Runtime baseline it is compared with.
   */
  threadsPerWorker?: number;
  device?: Device;
  /** Working directory for stores and model caches; a temp dir (removed at stop) when absent. */
  dataDir?: string;
  coordinator?: Partial<CoordinatorOptions>;
  logger?: Logger;
}

export interface LocalWorker {
  node: DrillNode;
  pool: InferencePool;
  worker: WorkerNode;
  cheater: boolean;
}

export class LocalGrid {
  coordinator!: Coordinator;
  coordinatorNode!: DrillNode;
  readonly workers: LocalWorker[] = [];
  readonly #opts: LocalGridOptions;
  readonly #log: Logger;
  #tmp: string | null = null;
  dataDir = '';

  constructor(opts: LocalGridOptions = {}) {
    this.#opts = opts;
    this.#log = opts.logger ?? silentLogger;
  }

  async start(): Promise<void> {
    const honest = this.#opts.workers ?? 3;
    const cheaters = this.#opts.cheaters ?? 0;
    const total = honest + cheaters;
    const threads = this.#opts.threadsPerWorker ?? Math.max(1, Math.floor(availableParallelism() / Math.max(1, total)));
    this.dataDir = this.#opts.dataDir ?? (this.#tmp = await mkdtemp(join(tmpdir(), 'drill-grid-')));

    this.coordinatorNode = await createDrillNode({ logger: this.#log });
    this.coordinator = new Coordinator(this.coordinatorNode, { dataDir: join(this.dataDir, 'coordinator'), stallMs: 0, logger: this.#log, ...this.#opts.coordinator });
    await this.coordinator.start();
    const addr = this.coordinatorNode.multiaddrs()[0]!;

    await Promise.all(
      Array.from({ length: total }, async (_, i) => {
        const cheater = i >= honest;
        const node = await createDrillNode({ logger: this.#log });
        const pool = new InferencePool({ threads, intraOpThreads: 1, device: this.#opts.device ?? 'cpu', logger: this.#log });
        await pool.start();
        const models = new ModelCache(join(this.dataDir, `worker-${i}`, 'models'));
        const worker = new WorkerNode(node, pool, models, { threads, device: pool.profile?.device ?? 'cpu', cheat: cheater, logger: this.#log });
        await worker.start();
        this.workers.push({ node, pool, worker, cheater });
        await worker.join(addr);
      }),
    );
    await this.coordinator.waitForWorkers(total);
  }

  async stop(): Promise<void> {
    for (const w of this.workers.reverse()) {
      await w.worker.stop().catch(() => undefined);
      await w.pool.stop().catch(() => undefined);
      await w.node.stop().catch(() => undefined);
    }
    this.workers.length = 0;
    await this.coordinator?.stop().catch(() => undefined);
    await this.coordinatorNode?.stop().catch(() => undefined);
    if (this.#tmp) await rm(this.#tmp, { recursive: true, force: true });
  }
}
