/**
 * `drill devnet`: run N block-producing nodes on 127.0.0.1 in this process, with different
 * genesis credit, for S slots; wait until they agree on the head; report.
 *
 *   drill devnet --nodes N --slots S [--slot-ms MS] [--epoch-slots E] [--c C]
 *                [--credits-per-slot K] [--store-dir DIR] [--json]
 *
 * --json prints one object on stdout:
 *   {"nodes":[{"peer","head","height","blocksProduced","weightShare"}], "emptySlots",
 *    "forksResolved", "creditsIncluded", "reorgs", "agreed", "slots", "slotMs", "chainId"}
 * Exit code 0 when every node reports the same head, 1 otherwise.
 */
import type { Command } from '../command.ts';
import { mkdirSync } from 'node:fs';
import { parseArgs, bool, int, num, str, helpText } from '../args.ts';
import type { FlagSpec } from '../args.ts';
import { LOG_FORMAT_FLAG, cliOutput, logFormatOf } from '../output.ts';
import { UserError } from '../../util/errors.ts';
import { runDevnet, defaultDevnetOptions } from '../../chain/devnet.ts';
import type { DevnetReport } from '../../chain/devnet.ts';
import { shortId } from '../../chain/block.ts';

const FLAGS: Record<string, FlagSpec> = {
  nodes: { type: 'string', help: 'number of producer nodes (1..32)', default: '3' },
  slots: { type: 'string', help: 'slots to run (1..100000)', default: '20' },
  'slot-ms': { type: 'string', help: 'slot length in ms (50..60000)', default: String(defaultDevnetOptions.slotMs) },
  'epoch-slots': { type: 'string', help: 'slots per epoch', default: String(defaultDevnetOptions.epochSlots) },
  c: { type: 'string', help: 'lottery c: probability that a slot has at least one winner', default: String(defaultDevnetOptions.c) },
  'credits-per-slot': { type: 'string', help: 'credit records the devnet coordinator publishes per slot', default: String(defaultDevnetOptions.creditsPerSlot) },
  'store-dir': { type: 'string', help: "directory for the nodes' SQLite block stores (for drill settle --chain-store); default in memory" },
  json: { type: 'boolean', help: 'print one JSON object on stdout instead of the table' },
  'log-format': LOG_FORMAT_FLAG,
  help: { type: 'boolean', help: 'show this help' },
};

const USAGE = 'usage: drill devnet --nodes N --slots S [--slot-ms MS] [--epoch-slots E] [--c C] [--credits-per-slot K] [--store-dir DIR] [--json]';

function table(r: DevnetReport): string {
  const rows = r.nodes.map((n, i) => `  ${String(i).padEnd(4)} ${n.peer.padEnd(54)} ${String(n.height).padStart(6)} ${shortId(n.head).padEnd(12)} ${String(n.blocksProduced).padStart(8)} ${(n.weightShare * 100).toFixed(1).padStart(7)}%`);
  return [
    `devnet ${r.chainId}: ${r.nodes.length} nodes, ${r.slots} slots of ${r.slotMs} ms`,
    `  ${'node'.padEnd(4)} ${'peer'.padEnd(54)} ${'height'.padStart(6)} ${'head'.padEnd(12)} ${'produced'.padStart(8)} ${'weight'.padStart(8)}`,
    ...rows,
    `empty slots: ${r.emptySlots}   forks resolved (orphaned blocks): ${r.forksResolved}   reorgs: ${r.reorgs}`,
    r.agreed ? 'all nodes agree on the head' : 'NODES DISAGREE on the head',
  ].join('\n') + '\n';
}

function storeDir(p: ReturnType<typeof parseArgs>): string | undefined {
  const d = str(p, 'store-dir');
  if (d === undefined) return undefined;
  try {
    mkdirSync(d, { recursive: true });
  } catch (e) {
    throw new UserError('--store-dir', 'a directory that can be created', d, (e as Error).message);
  }
  return d;
}

export const command: Command = {
  name: 'devnet',
  summary: 'run N block-producing nodes on 127.0.0.1 and report the chain they agree on',
  async run(argv) {
    const p = parseArgs(argv, FLAGS);
    if (bool(p, 'help')) {
      process.stdout.write(helpText(USAGE, FLAGS));
      return 0;
    }
    const json = bool(p, 'json');
    // N nodes share this process: per-node block logs would repeat every block N times, so the
    // table and the onBlock lines are the output; DRILL_LOG=info shows the nodes' own logs.
    const out = cliOutput('devnet', logFormatOf(p));
    const logger = out.log;
    const report = await runDevnet({
      nodes: int(p, 'nodes', 1, 32)!,
      slots: int(p, 'slots', 1, 100_000)!,
      slotMs: int(p, 'slot-ms', 50, 60_000)!,
      epochSlots: int(p, 'epoch-slots', 1, 1_000_000)!,
      c: num(p, 'c', Number.MIN_VALUE, 1)!,
      creditsPerSlot: int(p, 'credits-per-slot', 0, 64)!,
      storeDir: storeDir(p),
      logger,
      onBlock: json ? undefined : (b) => out.say(`block #${b.height} by ${shortId(b.producer)} (slot ${b.slot}, ${b.credits} credit records)`, { height: b.height, producer: b.producer, slot: b.slot, credits: b.credits }),
    });
    if (json) process.stdout.write(JSON.stringify(report) + '\n');
    else if (out.format === 'json') out.say(`devnet ${report.chainId}: ${report.agreed ? 'all nodes agree on the head' : 'NODES DISAGREE on the head'}`, { ...report });
    else process.stdout.write(table(report));
    return report.agreed ? 0 : 1;
  },
};
