/**
 * What the API shows of the network: workers, credit, blocks and jobs, as plain JSON built from
 * the coordinator's registry and job store and, when the coordinator follows a chain, the
 * chain state (canonical ledger, lottery snapshot, block tree). No I/O of its own beyond the
 * store queries; `now` is passed in.
 */
import type { Coordinator } from '../coordinator/service.ts';
import type { IntakeJobStatus } from '../coordinator/intake/core.ts';
import type { ChainService } from '../chain/service.ts';
import type { ChainState, BlockNode } from '../chain/state.ts';
import { epochOfSlot, slotAt, snapshotBucket } from '../chain/epoch.ts';
import { progressData } from './events.ts';

export interface JobView {
  id: string;
  name: string;
  partner: string;
  status: 'running' | 'done' | 'failed';
  error?: string;
  cancelled: boolean;
  rows: number;
  rowsDone: number;
  units: number;
  unitsDone: number;
  rowsPerSecond: number;
  etaMs: number | null;
  progress?: IntakeJobStatus['progress'];
  report?: IntakeJobStatus['report'];
  createdAt: number;
  finishedAt?: number;
  files: string[];
  freed: boolean;
}

/** A job's status as the API shows it: counters, rows/s and ETA on top of the intake's status. */
export function jobView(st: IntakeJobStatus, rows: number, now: number): JobView {
  const p = st.progress;
  const ended = st.finishedAt ?? now;
  const pd = p ? progressData(st.job, p, rows, st.report ? st.report.elapsedMs : ended - st.createdAt) : null;
  return {
    id: st.job,
    name: st.name,
    partner: st.partner,
    status: st.status,
    ...(st.error ? { error: st.error } : {}),
    cancelled: st.cancelled,
    rows,
    rowsDone: p?.rowsDone ?? 0,
    units: p?.total ?? 0,
    unitsDone: p?.done ?? 0,
    rowsPerSecond: st.report ? st.report.rowsPerSecond : (pd?.rowsPerSecond ?? 0),
    etaMs: st.status === 'running' ? (pd?.etaMs ?? null) : 0,
    ...(p ? { progress: p } : {}),
    ...(st.report ? { report: st.report } : {}),
    createdAt: st.createdAt,
    ...(st.finishedAt !== undefined ? { finishedAt: st.finishedAt } : {}),
    files: st.files,
    freed: st.freed,
  };
}

interface ChainView {
  /** Canonical ledger window per worker. */
  credit: Map<string, { credit: bigint; unitsAgreed: number; unitsFaulty: number; faults: number }>;
  weights: ReadonlyMap<string, bigint>;
  total: bigint;
  banned: Set<string>;
  blocks: Map<string, number>;
  canonicalBlocks: number;
  epoch: number;
  height: number;
}

function chainView(state: ChainState, now: number): ChainView {
  const g = state.genesis;
  const head = state.head;
  const slot = Math.max(slotAt(g, now), head.slot, 0);
  const epoch = epochOfSlot(g, slot);
  const snap = state.epochSnapshot(head.hash, epoch);
  const blocks = new Map<string, number>();
  const chain = state.canonicalChain();
  for (const h of chain.slice(1)) {
    const p = state.getNode(h)!.producer;
    blocks.set(p, (blocks.get(p) ?? 0) + 1);
  }
  return { credit: state.ledger.window(), weights: snap.weights, total: snap.total, banned: state.ledger.bannedAt(snapshotBucket(g, epoch)), blocks, canonicalBlocks: chain.length - 1, epoch, height: head.height };
}

const share = (x: bigint, total: bigint): number => (total > 0n ? Number((x * 1_000_000n) / total) / 1_000_000 : 0);

export interface WorkerView {
  peer: string;
  connected: boolean;
  lastSeen?: number;
  device?: string;
  threads?: number;
  score?: number;
  gossipScore?: number;
  units: number;
  unitsCredited: number;
  credit: number;
  faults: number;
  chainCredit: number | null;
  weightShare: number | null;
  blockShare: number | null;
  banned: boolean;
}

/**
 * Workers this coordinator knows (registered now, or credited in its store), with what they
 * earned here and, with a chain, their canonical credit, lottery weight share and block share.
 */
export function workersView(coord: Coordinator, chain: ChainService | null, score: (peer: string) => number, now: number): WorkerView[] {
  const totals = coord.store().workerTotals();
  const cv = chain ? chainView(chain.state, now) : null;
  const registered = new Map(coord.workers().map((w) => [w.peer, w]));
  const peers = new Set([...registered.keys(), ...totals.keys()]);
  return [...peers].sort().map((peer) => {
    const w = registered.get(peer);
    const t = totals.get(peer);
    const c = cv?.credit.get(peer);
    return {
      peer,
      connected: w?.connected ?? false,
      ...(w ? { lastSeen: w.connected ? now : (w.leftAt ?? now), device: w.device, threads: w.threads, score: w.score, gossipScore: score(peer) } : {}),
      units: t?.units ?? 0,
      unitsCredited: t?.unitsCredited ?? 0,
      credit: t?.credit ?? 0,
      faults: t?.faults ?? 0,
      chainCredit: cv ? Number(c && c.credit > 0n ? c.credit : 0n) : null,
      weightShare: cv ? share(cv.weights.get(peer) ?? 0n, cv.total) : null,
      blockShare: cv ? (cv.canonicalBlocks > 0 ? (cv.blocks.get(peer) ?? 0) / cv.canonicalBlocks : 0) : null,
      banned: cv?.banned.has(peer) ?? false,
    };
  });
}

export interface CreditView {
  source: 'chain' | 'coordinator';
  epoch: number | null;
  height: number | null;
  totalWeight: number | null;
  workers: { peer: string; credit: number; unitsAgreed: number; unitsFaulty: number; faults: number; weight: number | null; weightShare: number | null; banned: boolean; blocks: number | null; blockShare: number | null }[];
}

/** The chain's ledger and current lottery weights, or (no chain) this coordinator's credit records. */
export function creditView(coord: Coordinator, chain: ChainService | null, now: number): CreditView {
  if (!chain) {
    const totals = coord.store().workerTotals();
    return {
      source: 'coordinator', epoch: null, height: null, totalWeight: null,
      workers: [...totals].sort(([a], [b]) => (a < b ? -1 : 1)).map(([peer, t]) => ({ peer, credit: t.credit, unitsAgreed: t.unitsCredited, unitsFaulty: 0, faults: t.faults, weight: null, weightShare: null, banned: false, blocks: null, blockShare: null })),
    };
  }
  const cv = chainView(chain.state, now);
  const peers = new Set([...cv.credit.keys(), ...cv.weights.keys(), ...cv.blocks.keys()]);
  return {
    source: 'chain', epoch: cv.epoch, height: cv.height, totalWeight: Number(cv.total),
    workers: [...peers].sort().map((peer) => {
      const c = cv.credit.get(peer);
      const w = cv.weights.get(peer) ?? 0n;
      const b = cv.blocks.get(peer) ?? 0;
      return {
        peer, credit: Number(c && c.credit > 0n ? c.credit : 0n), unitsAgreed: c?.unitsAgreed ?? 0, unitsFaulty: c?.unitsFaulty ?? 0, faults: c?.faults ?? 0,
        weight: Number(w), weightShare: share(w, cv.total), banned: cv.banned.has(peer), blocks: b, blockShare: cv.canonicalBlocks > 0 ? b / cv.canonicalBlocks : 0,
      };
    }),
  };
}

export interface BlockSummaryView {
  height: number;
  hash: string;
  parent: string | null;
  slot: number;
  epoch: number;
  producer: string;
  credits: number;
  faults: number;
  canonical: boolean;
  credited: Record<string, number>;
}

export function blockSummary(state: ChainState, n: BlockNode): BlockSummaryView {
  const credited: Record<string, number> = {};
  for (const r of n.block?.credits ?? []) for (const w of r.credited) credited[w] = (credited[w] ?? 0) + r.flops;
  return {
    height: n.height, hash: n.hash, parent: n.parent, slot: n.slot, epoch: n.epoch, producer: n.producer,
    credits: n.creditIds.length, faults: n.faultIds.length, canonical: state.isCanonical(n.hash), credited,
  };
}

export interface ChainInfoView {
  chainId: string;
  genesis: string;
  head: string;
  height: number;
  slot: number;
  epoch: number;
  reorgs: number;
  forks: number;
}

export function chainInfo(chain: ChainService, now: number): ChainInfoView {
  const s = chain.state;
  const g = s.genesis;
  const slot = Math.max(slotAt(g, now), s.head.slot, 0);
  return { chainId: g.chainId, genesis: s.genesisHash, head: s.head.hash, height: s.head.height, slot, epoch: epochOfSlot(g, slot), reorgs: s.reorgCount, forks: s.orphanCount() };
}

/** Canonical blocks [from, from + limit) — or the latest `limit` when `from` is absent — newest first. */
export function blocksView(chain: ChainService | null, from: number | undefined, limit: number, now: number): { chain: ChainInfoView | null; blocks: BlockSummaryView[] } {
  if (!chain) return { chain: null, blocks: [] };
  const s = chain.state;
  const canon = s.canonicalChain();
  const start = from ?? Math.max(0, canon.length - limit);
  const out: BlockSummaryView[] = [];
  for (let h = Math.min(canon.length - 1, start + limit - 1); h >= start; h--) out.push(blockSummary(s, s.getNode(canon[h]!)!));
  return { chain: chainInfo(chain, now), blocks: out };
}

/** A block by canonical height or by hash (any known block), or undefined. */
export function findBlock(chain: ChainService | null, id: string): { summary: BlockSummaryView; block: unknown } | undefined {
  if (!chain) return undefined;
  const s = chain.state;
  let node: BlockNode | undefined;
  if (/^\d{1,12}$/.test(id)) {
    const h = s.canonicalChain()[Number(id)];
    node = h ? s.getNode(h) : undefined;
  } else node = s.getNode(id.toLowerCase());
  return node ? { summary: blockSummary(s, node), block: node.block } : undefined;
}
