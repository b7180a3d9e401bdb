/**
 * A development network in one process: N block-producing ChainServices on real libp2p nodes
 * on 127.0.0.1, with different genesis credit (node i gets (i + 1) units), a devnet
 * coordinator that publishes one PoD-style credit record per slot (so blocks carry records and
 * weights move), S slots of production, then an event-driven wait until every node reports
 * the same head. Used by `drill devnet` and the e2e tests.
 */
import { join } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { generateKeyPairFromSeed } from '../vendor/libp2p.ts';
import { createDrillNode } from '../net/node.ts';
import type { DrillNode } from '../net/node.ts';
import { signCreditRecord } from '../pod/credit.ts';
import { bytesToHex, utf8ToBytes } from '../util/bytes.ts';
import type { Logger } from '../util/log.ts';
import { silentLogger } from '../util/log.ts';
import { makeDevGenesis } from './devgenesis.ts';
import { slotStartTime } from './epoch.ts';
import { BLOCKS_TOPIC_NAME, CREDITS_TOPIC_NAME } from './topics.ts';
import { ChainService } from './service.ts';
import type { ChainStatus } from './service.ts';
import { producerKeyFromSeed } from './produce.ts';

export interface DevnetOptions {
  nodes: number;
  slots: number;
  slotMs?: number;
  epochSlots?: number;
  c?: number;
  /** Genesis FLOPs per weight unit: node i starts with (i + 1) · unitFlops. */
  unitFlops?: number;
  /** Credit records the devnet coordinator publishes per slot (0 = none). */
  creditsPerSlot?: number;
  /** Bound on the wait for agreement after the last slot, ms. */
  settleTimeoutMs?: number;
  /** Each node dials up to this many earlier nodes (a connected, redundant mesh). */
  dialDegree?: number;
  /** Directory for each node's SQLite block store (<chainId>-node-<i>.sqlite); none = memory. */
  storeDir?: string;
  /** Seed label for node and coordinator keys (same label → same peer ids). */
  seed?: string;
  logger?: Logger;
  /** Called on every block imported by node 0 (the demo's "block #12 by …" line). */
  onBlock?: (ev: { hash: string; height: number; slot: number; producer: string; credits: number }) => void;
}

export const defaultDevnetOptions = {
  /** 250 ms: loopback gossip and validation take a few ms; short slots keep runs quick. */
  slotMs: 250,
  /** 8 slots per epoch so a run of tens of slots crosses epochs (snapshot + randomness change). */
  epochSlots: 8,
  /** c = 1/2 on a devnet: more blocks per run than the production 1/4, still few forks. */
  c: 0.5,
  unitFlops: 1_000_000_000,
  creditsPerSlot: 1,
  settleTimeoutMs: 10_000,
  dialDegree: 3,
  seed: 'devnet',
} as const;

export interface DevnetNodeReport {
  peer: string;
  head: string;
  height: number;
  blocksProduced: number;
  weightShare: number;
}

export interface DevnetReport {
  nodes: DevnetNodeReport[];
  /** Slots of the run without a canonical block (nobody won, or the winner's block lost). */
  emptySlots: number;
  /** Competing blocks orphaned by fork choice (known to some node, off the agreed chain). */
  forksResolved: number;
  /** Credit records carried by the agreed chain's blocks. */
  creditsIncluded: number;
  /** Reorgs summed over nodes. */
  reorgs: number;
  /** Did every node report the same head? */
  agreed: boolean;
  slots: number;
  slotMs: number;
  chainId: string;
}

/** Run a devnet to completion and report. Never leaves nodes running (stops them on error). */
export async function runDevnet(o: DevnetOptions): Promise<DevnetReport> {
  const opt = { ...defaultDevnetOptions, ...o };
  const log = (opt.logger ?? silentLogger).child('devnet');
  const seed = (label: string): Uint8Array => sha256(utf8ToBytes(`${opt.seed}/${label}`));
  const coordinatorSeed = seed('coordinator');
  const nodes: DrillNode[] = [];
  const services: ChainService[] = [];
  try {
    for (let i = 0; i < opt.nodes; i++) {
      nodes.push(await createDrillNode({ privateKey: await generateKeyPairFromSeed('Ed25519', seed(`node/${i}`)), logger: opt.logger }));
    }
    for (let i = 1; i < nodes.length; i++) {
      for (let j = Math.max(0, i - opt.dialDegree); j < i; j++) await nodes[i]!.dial(nodes[j]!.multiaddrs()[0]!);
    }
    // Genesis a little in the future so every service is subscribed before slot 0.
    const genesisTime = Date.now() + Math.max(1500, 2 * opt.slotMs);
    const genesis = makeDevGenesis({
      chainId: `matrix-drill-devnet-${genesisTime}`,
      genesisTime,
      slotMs: opt.slotMs,
      epochSlots: opt.epochSlots,
      c: opt.c,
      coordinatorSeed,
      maxClockDriftMs: Math.min(500, opt.slotMs),
      allocations: nodes.map((n, i) => ({ peerId: n.peerId, flops: (i + 1) * opt.unitFlops })),
    });
    for (const node of nodes) {
      const i = services.length;
      const storePath = opt.storeDir ? join(opt.storeDir, `${genesis.chainId}-node-${i}.sqlite`) : ':memory:';
      const s = new ChainService({ node, genesis, logger: opt.logger }, { untilSlot: opt.slots, storePath });
      await s.start();
      services.push(s);
    }
    const want = Math.min(nodes.length - 1, opt.dialDegree);
    await Promise.all(nodes.map((n) => Promise.all([n.waitForTopicPeers(BLOCKS_TOPIC_NAME, want), n.waitForTopicPeers(CREDITS_TOPIC_NAME, want)])));
    log.info('devnet ready', { nodes: nodes.length, genesisTime, chainId: genesis.chainId });
    if (opt.onBlock) services[0]!.on('block', opt.onBlock);

    // The devnet coordinator: one credit record per slot, crediting a rotating pair of nodes.
    let unit = 0;
    const coordinatorKey = producerKeyFromSeed(coordinatorSeed);
    services[0]!.on('slot', ({ slot }) => {
      if (slot >= opt.slots) return;
      for (let k = 0; k < opt.creditsPerSlot; k++) {
        const a = nodes[(slot + k) % nodes.length]!.peerId;
        const b = nodes[(slot + k + 1) % nodes.length]!.peerId;
        const credited = a === b ? [a] : [a, b].sort();
        const record = signCreditRecord({ job: 'devnet', unit: unit++, resultDigest: bytesToHex(seed(`result/${unit}`)), flops: opt.unitFlops / 10, credited, faulty: [], status: 'agreed', time: Date.now() }, coordinatorKey.seed);
        services[0]!.submitCredit(record).catch((e: unknown) => log.warn('credit submit failed', { err: (e as Error).message }));
      }
    });

    // Wait for the end of the last slot (a time event), then for agreement (head events).
    const endAt = slotStartTime(genesis, opt.slots);
    await new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, endAt - Date.now())));
    const agreed = await waitForAgreement(services, opt.settleTimeoutMs);

    const statuses: ChainStatus[] = services.map((s) => s.status());
    const ref = services[0]!.state;
    const canonical = new Set(ref.canonicalChain());
    const known = new Set<string>();
    for (const s of services) for (const n of s.state.nodes()) known.add(n.hash);
    let inRun = 0;
    let creditsIncluded = 0;
    for (const h of canonical) {
      const n = ref.getNode(h)!;
      if (n.block && n.slot < opt.slots) inRun++;
      if (n.block) creditsIncluded += n.block.credits.length;
    }
    const report: DevnetReport = {
      nodes: statuses.map((st) => ({ peer: st.peer, head: st.head, height: st.height, blocksProduced: st.blocksProduced, weightShare: st.weightShare })),
      emptySlots: opt.slots - inRun,
      forksResolved: [...known].filter((h) => !canonical.has(h)).length,
      creditsIncluded,
      reorgs: statuses.reduce((a, st) => a + st.reorgs, 0),
      agreed,
      slots: opt.slots,
      slotMs: opt.slotMs,
      chainId: genesis.chainId,
    };
    return report;
  } finally {
    for (const s of services) await s.stop();
    await Promise.all(nodes.map((n) => n.stop().catch(() => {})));
  }
}

/** Resolve true once all services report the same head (checked on every head event), false after `timeoutMs`. */
export function waitForAgreement(services: ChainService[], timeoutMs: number): Promise<boolean> {
  const same = (): boolean => services.every((s) => s.state.head.hash === services[0]!.state.head.hash);
  if (same()) return Promise.resolve(true);
  return new Promise((resolve) => {
    const off = (): void => { for (const s of services) s.off('head', check); clearTimeout(timer); };
    const check = (): void => { if (same()) { off(); resolve(true); } };
    const timer = setTimeout(() => { off(); resolve(same()); }, timeoutMs);
    for (const s of services) s.on('head', check);
  });
}
