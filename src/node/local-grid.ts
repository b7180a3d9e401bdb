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
import { trace } from '../util/trace.ts';
import { Coordinator } from '../coordinator/service.ts';
import type { CoordinatorOptions } from '../coordinator/service.ts';
import { InferencePool } from '../worker/pool.ts';
import type { Device } from '../worker/pool.ts';
import { ModelCache } from '../worker/models.ts';
import { WorkerNode } from '../worker/node.ts';
import type { ChainService } from '../chain/service.ts';
import type { CheatMode } from '../worker/cheat.ts';
import type { GenesisConfig } from '../chain/genesis.ts';

/** The hashrate chain of an embedded grid: the workers produce blocks carrying PoD credit. */
export interface LocalChainOptions {
  /**
   * Slot length. 500 ms: a demo job lasts ~10 s, so it sees ~20 slots; loopback gossip and
   * block validation take a few ms.
   */
  slotMs?: number;
  /** Slots per epoch: 8, so weights re-snapshot (and PoD credit starts to count) within a demo. */
  epochSlots?: number;
  /** Lottery c: 1/2 on a local grid, for more blocks per demo. */
  c?: number;
  /** Genesis credit per worker (a bootstrap weight, before any PoD credit): 1 GFLOP. */
  genesisFlops?: number;
  /** Epochs a fault record bans a worker's lottery weight (genesis faultEpochs; default 2). */
  faultEpochs?: number;
  /** SQLite block store of the coordinator's view of the chain (e.g. for `drill settle`); in memory when absent. */
  storePath?: string;
}

export interface LocalGridOptions {
  /** Honest workers. Default 3. */
  workers?: number;
  /** Extra workers that cheat (demo and adversarial tests). Default 0. */
  cheaters?: number;
  /** How the cheaters cheat (worker/cheat.ts). Default 'corrupt': the same wrong answer, so they agree with each other. */
  cheat?: CheatMode;
  /**
   * Threads per worker. Default: cores / (workers + cheaters), at least 1 — the grid as a whole
   * uses one session per core, like the raw ONNX Runtime baseline it is compared with.
   */
  threadsPerWorker?: number;
  device?: Device;
  /** Working directory for stores and model caches; a temp dir (removed at stop) when absent. */
  dataDir?: string;
  coordinator?: Partial<CoordinatorOptions>;
  /**
   * Workers read input rows from the coordinator's files instead of receiving them over the
   * network (they share this process's filesystem). Default true; false sends every byte over
   * libp2p as remote workers do.
   */
  sharedFs?: boolean;
  /** Run the hashrate lottery chain on the workers (blocks carry the coordinator's credit records). */
  chain?: LocalChainOptions | boolean;
  logger?: Logger;
}

export interface LocalWorker {
  node: DrillNode;
  pool: InferencePool;
  worker: WorkerNode;
  cheater: boolean;
  chain?: ChainService;
}

export class LocalGrid {
  coordinator!: Coordinator;
  coordinatorNode!: DrillNode;
  readonly workers: LocalWorker[] = [];
  /** The coordinator's follower view of the chain (when `chain` is on). */
  chain: ChainService | null = null;
  genesis: GenesisConfig | null = null;
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

    const chainOpts = this.#opts.chain === true ? {} : this.#opts.chain || null;
    // Everything that does not depend on something else starts at once: the workers' ORT thread
    // pools (a thread loads ONNX Runtime in ~0.1 s), every libp2p node, the coordinator.
    const device = this.#opts.device ?? 'cpu';
    const pools = Array.from({ length: total }, () => new InferencePool({ threads, intraOpThreads: 1, device, logger: this.#log }));
    const poolsStarted = pools.map((p) => p.start().then(() => trace('grid: a worker pool started')));
    const workerNodes = Array.from({ length: total }, () => createDrillNode({ logger: this.#log }));
    this.coordinatorNode = await createDrillNode({ logger: this.#log });
    const coordNode = this.coordinatorNode;
    const cheaterPeers = new Set<string>();
    const topics = chainOpts ? await import('../chain/topics.ts') : null;
    this.coordinator = new Coordinator(this.coordinatorNode, {
      dataDir: join(this.dataDir, 'coordinator'),
      stallMs: 0,
      logger: this.#log,
      isCheater: (peer) => cheaterPeers.has(peer),
      ...(topics
        ? {
            onCredit: (r) => void topics.publishCreditRecord(coordNode, r).catch(() => undefined),
            onFault: (r) => void topics.publishFault(coordNode, r).catch(() => undefined),
          }
        : {}),
      ...this.#opts.coordinator,
    });
    await this.coordinator.start();
    trace('grid: coordinator started');
    const addr = this.coordinatorNode.multiaddrs()[0]!;

    await Promise.all(
      Array.from({ length: total }, async (_, i) => {
        const cheater = i >= honest;
        const node = await workerNodes[i]!;
        if (cheater) cheaterPeers.add(node.peerId);
        const pool = pools[i]!;
        await poolsStarted[i];
        const models = new ModelCache(join(this.dataDir, `worker-${i}`, 'models'));
        const worker = new WorkerNode(node, pool, models, { threads, device: pool.profile?.device ?? 'cpu', cheat: cheater ? (this.#opts.cheat ?? 'corrupt') : null, sharedFs: this.#opts.sharedFs ?? true, logger: this.#log });
        await worker.start();
        this.workers.push({ node, pool, worker, cheater });
        await worker.join(addr);
        trace('grid: a worker joined');
      }),
    );
    await this.coordinator.waitForWorkers(total);
    trace('grid: started');
    if (chainOpts) await this.#startChain(chainOpts);
  }

  /**
   * Get a job's model ready on every worker before the job starts: copied into each worker's
   * model cache from the coordinator's file (they share this process's filesystem) and its
   * sessions loaded on their threads, while the job is still being announced.
   */
  async warm(modelHash: string, modelPath: string): Promise<void> {
    await Promise.all(this.workers.map((w) => w.worker.prefetch(modelHash, modelPath)));
    trace('grid: model warm on every worker');
  }

  async #startChain(o: LocalChainOptions): Promise<void> {
    // The chain's modules load only when a grid runs one (`drill run` does not).
    const [{ ChainService }, { makeDevGenesis }, { registerChainVerdicts }] = await Promise.all([import('../chain/service.ts'), import('../chain/devgenesis.ts'), import('../chain/topics.ts')]);
    registerChainVerdicts();
    const slotMs = o.slotMs ?? 500;
    // Every worker starts with the same bootstrap weight; from the first epochs on, the
    // coordinator's PoD credit records (carried in blocks) decide the lottery weights.
    this.genesis = makeDevGenesis({
      chainId: 'matrix-drill-local',
      genesisTime: Date.now() + slotMs,
      allocations: this.workers.map((w) => ({ peerId: w.node.peerId, flops: o.genesisFlops ?? 1e9 })),
      coordinatorSeed: this.coordinatorNode.privateKey.raw.subarray(0, 32),
      slotMs,
      epochSlots: o.epochSlots ?? 8,
      c: o.c ?? 0.5,
      ...(o.faultEpochs !== undefined ? { faultEpochs: o.faultEpochs } : {}),
    });
    this.chain = new ChainService({ node: this.coordinatorNode, genesis: this.genesis, logger: this.#log }, { produce: false, ...(o.storePath ? { storePath: o.storePath } : {}) });
    await this.chain.start();
    for (const w of this.workers) {
      w.chain = new ChainService({ node: w.node, genesis: this.genesis, logger: this.#log }, { produce: true });
      await w.chain.start();
    }
  }

  async stop(): Promise<void> {
    for (const w of this.workers) await w.chain?.stop().catch(() => undefined);
    await this.chain?.stop().catch(() => undefined);
    // Workers are independent of each other: each stops in order (worker, pool, node), all at once.
    await Promise.all(this.workers.map(async (w) => {
      await w.worker.stop().catch(() => undefined);
      await w.pool.stop().catch(() => undefined);
      await w.node.stop().catch(() => undefined);
    }));
    this.workers.length = 0;
    await this.coordinator?.stop().catch(() => undefined);
    await this.coordinatorNode?.stop().catch(() => undefined);
    if (this.#tmp) await rm(this.#tmp, { recursive: true, force: true });
    trace('grid: stopped');
  }
}
