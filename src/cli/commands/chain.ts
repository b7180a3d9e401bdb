/**
 * `drill chain blocks --store PATH`: list a block store's blocks (any node's: a coordinator's
 * or a worker's `<data-dir>/chain/<genesis>.sqlite`) with the peers each credits and the
 * faults it carries, so an operator can pick what to verify (`drill verify-credit --block H`)
 * without reading SQLite. Opens the store read-only, so it can run beside the node writing it.
 * Canonical blocks are those on the path from the store's recorded head to genesis; others are
 * forks that fork choice settled against.
 */
import { statSync } from 'node:fs';
import type { Command } from '../command.ts';
import { parseArgs, str, bool, int, helpText } from '../args.ts';
import type { FlagSpec } from '../args.ts';
import { UserError } from '../../util/errors.ts';
import { BlockStore } from '../../chain/store.ts';
import type { Block } from '../../chain/block.ts';
import { shortId } from '../../chain/block.ts';
import { fmtNum } from '../progress.ts';
import { table } from './status.ts';

const FLAGS: Record<string, FlagSpec> = {
  store: { type: 'string', help: "a node's block store (<data-dir>/chain/<genesis>.sqlite)" },
  from: { type: 'string', help: 'first height to list (default: the latest --limit heights)' },
  limit: { type: 'string', help: 'heights to list', default: '20' },
  json: { type: 'boolean', help: 'one JSON object per block (JSON lines)' },
  help: { type: 'boolean', help: 'show this help' },
};

export interface BlockListing {
  height: number;
  slot: number;
  hash: string;
  parent: string;
  producer: string;
  canonical: boolean;
  creditRecords: number;
  /** Peer → FLOPs this block credits it. */
  credited: Record<string, number>;
  faults: { kind: string; worker: string; job?: string; reasons?: string[]; slot?: number }[];
}

/** What a block credits and carries (pure). */
export function listBlock(hash: string, b: Block, canonical: boolean): BlockListing {
  const credited: Record<string, number> = {};
  for (const r of b.credits) for (const w of r.credited) credited[w] = (credited[w] ?? 0) + r.flops;
  return {
    height: b.header.height, slot: b.header.slot, hash, parent: b.header.parent, producer: b.header.producer, canonical,
    creditRecords: b.credits.length, credited,
    faults: b.faults.map((f) => (f.kind === 'equivocation' ? { kind: 'equivocation', worker: f.producer, slot: f.slot } : { kind: f.kind, worker: f.worker, job: f.job, reasons: f.reasons })),
  };
}

export const command: Command = {
  name: 'chain',
  summary: "inspect a node's block store",
  async run(argv) {
    const [sub, ...rest] = argv;
    const p = parseArgs(sub === 'blocks' ? rest : argv, FLAGS);
    if (bool(p, 'help') || sub !== 'blocks') {
      process.stdout.write(helpText('usage: drill chain blocks --store PATH [--from H] [--limit N] [--json]', FLAGS));
      return bool(p, 'help') ? 0 : 2;
    }
    const path = str(p, 'store');
    if (path === undefined) throw new UserError('--store', "a node's block store file (<data-dir>/chain/<genesis>.sqlite)", undefined);
    let store: BlockStore;
    try {
      statSync(path);
      store = BlockStore.openReadOnly(path);
    } catch (e) {
      throw new UserError('--store', "a node's block store file (<data-dir>/chain/<genesis>.sqlite)", path, (e as Error).message);
    }
    try {
      const all = new Map<string, Block>();
      for (const { hash, block } of store.blocks()) all.set(hash, block);
      const canonical = new Set<string>();
      for (let h = store.head(); h !== undefined && all.has(h); h = all.get(h)!.header.parent) canonical.add(h);
      const heights = [...all.values()].map((b) => b.header.height);
      const top = heights.length ? Math.max(...heights) : 0;
      const limit = int(p, 'limit', 1, 1_000_000)!;
      const from = int(p, 'from', 0) ?? Math.max(0, top - limit + 1);
      const rows = [...all].filter(([, b]) => b.header.height >= from && b.header.height < from + limit)
        .map(([hash, b]) => listBlock(hash, b, canonical.has(hash)))
        .sort((a, b) => a.height - b.height || Number(b.canonical) - Number(a.canonical) || a.slot - b.slot);
      if (bool(p, 'json')) {
        for (const r of rows) process.stdout.write(JSON.stringify(r) + '\n');
        return 0;
      }
      process.stdout.write(`${path}: ${all.size} block(s), head #${store.head() ? all.get(store.head()!)?.header.height ?? '?' : '-'}, ${all.size - canonical.size} off the canonical chain\n`);
      if (rows.length === 0) return 0;
      const cells = rows.map((r) => [
        String(r.height), String(r.slot), r.hash.slice(0, 12), r.canonical ? 'yes' : 'fork', shortId(r.producer), String(r.creditRecords),
        Object.entries(r.credited).map(([w, f]) => `${shortId(w)} ${fmtNum(f)}`).join(', ') || '-',
        r.faults.map((f) => `${f.kind} ${shortId(f.worker)}${f.reasons ? ` (${f.reasons.join(', ')})` : ''}`).join(', ') || '-',
      ]);
      process.stdout.write(table([['height', 'slot', 'block', 'canonical', 'producer', 'records', 'credits (FLOP)', 'faults'], ...cells]) + '\n');
      return 0;
    } finally {
      store.close();
    }
  },
};
