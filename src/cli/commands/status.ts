/**
 * `drill status --api URL [--token T] [--json]`: the network as a coordinator's HTTP API shows
 * it — workers (online, device, units, verified credit, faults, lottery weight and block
 * share), recent jobs with their progress, and the chain (height, forks, recent blocks) — as
 * tables, or one JSON object with `--json`.
 */
import type { Command } from '../command.ts';
import { parseArgs, str, bool, int, helpText } from '../args.ts';
import type { FlagSpec } from '../args.ts';
import { UserError } from '../../util/errors.ts';
import { fmtNum, formatMs } from '../progress.ts';

const FLAGS: Record<string, FlagSpec> = {
  api: { type: 'string', help: "the coordinator's HTTP API URL (printed by 'drill coordinator')", default: 'http://127.0.0.1:9361' },
  token: { type: 'string', help: 'bearer token (default $DRILL_API_TOKEN) when the coordinator has --api-tokens' },
  jobs: { type: 'string', help: 'recent jobs to list', default: '10' },
  blocks: { type: 'string', help: 'recent blocks to list', default: '5' },
  json: { type: 'boolean', help: 'print one JSON object {workers, jobs, credit, chain, blocks}' },
  help: { type: 'boolean', help: 'show this help' },
};

const short = (id: string): string => (id.length > 16 ? `${id.slice(0, 8)}…${id.slice(-6)}` : id || '-');
const pct = (x: number | null | undefined): string => (x === null || x === undefined ? '-' : `${(x * 100).toFixed(1)}%`);

/** Rows of cells as an aligned table (first column left, the rest right-aligned), header underlined. */
export function table(rows: string[][]): string {
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r, ri) => '  ' + r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ') + (ri === 0 ? '\n  ' + w.map((x) => '-'.repeat(x)).join('  ') : '')).join('\n');
}

export const command: Command = {
  name: 'status',
  summary: 'show the network (workers, jobs, chain) from a coordinator HTTP API',
  async run(argv) {
    const p = parseArgs(argv, FLAGS);
    if (bool(p, 'help')) {
      process.stdout.write(helpText('usage: drill status [--api URL] [--token T] [--json]', FLAGS));
      return 0;
    }
    const url = str(p, 'api')!;
    if (!/^https?:\/\//.test(url)) throw new UserError('--api', "the coordinator's HTTP URL, e.g. http://127.0.0.1:9361", url);
    const { ApiClient } = await import('../../api/client.ts');
    const client = new ApiClient(url, str(p, 'token') ?? process.env.DRILL_API_TOKEN);
    const [{ workers }, { jobs }, credit, { chain, blocks }] = await Promise.all([client.workers(), client.jobs(int(p, 'jobs', 1, 1000)!), client.credit(), client.blocks(int(p, 'blocks', 1, 500)!)]);
    if (bool(p, 'json')) {
      process.stdout.write(JSON.stringify({ workers, jobs, credit, chain, blocks }, null, 2) + '\n');
      return 0;
    }
    const out: string[] = [];
    const online = workers.filter((w) => w.connected).length;
    out.push(`workers: ${online} online of ${workers.length}`);
    if (workers.length) {
      out.push(table([
        ['worker', 'state', 'device', 'threads', 'units', 'credit (FLOP)', 'faults', 'weight', 'blocks'],
        ...workers.map((w) => [short(w.peer), w.connected ? 'online' : 'offline', w.device ?? '-', String(w.threads ?? '-'), String(w.units), fmtNum(w.credit), String(w.faults), pct(w.weightShare), pct(w.blockShare)]),
      ]));
    }
    out.push('', `jobs: ${jobs.filter((j) => j.status === 'running').length} running, ${jobs.length} listed`);
    if (jobs.length) {
      out.push(table([
        ['job', 'name', 'status', 'units', 'rows', 'rows/s', 'ETA'],
        ...jobs.map((j) => [j.id, j.name, j.cancelled ? 'cancelled' : j.status, `${j.unitsDone}/${j.units}`, `${j.rowsDone}/${j.rows}`, fmtNum(j.rowsPerSecond), j.status === 'running' ? (j.etaMs === null ? '?' : formatMs(j.etaMs)) : '-']),
      ]));
    }
    out.push('');
    if (!chain) out.push(`chain: none (credit from the coordinator's records: ${credit.workers.length} workers)`);
    else {
      out.push(`chain ${chain.chainId}: height ${chain.height}, slot ${chain.slot}, epoch ${chain.epoch}, ${chain.forks} fork block(s) settled, ${chain.reorgs} reorg(s)`);
      if (blocks.length) out.push(table([['height', 'slot', 'block', 'producer', 'credits', 'faults'], ...blocks.map((b) => [String(b.height), String(b.slot), b.hash.slice(0, 12), short(b.producer), String(b.credits), String(b.faults)])]));
    }
    process.stdout.write(out.join('\n') + '\n');
    return 0;
  },
};
