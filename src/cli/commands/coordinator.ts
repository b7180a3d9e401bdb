/**
 * `drill coordinator`: a long-running coordinator. Prints its multiaddrs (give one to workers:
 * `drill worker --join ADDR`) and accepts jobs from `drill submit --to ADDR ...`.
 */
import { join } from 'node:path';
import type { Command } from '../command.ts';
import { parseArgs, str, int, bool, helpText } from '../args.ts';
import type { FlagSpec } from '../args.ts';
import { createLogger } from '../../util/log.ts';
import { createDrillNode } from '../../net/node.ts';
import { loadOrCreateIdentity, defaultDataDir } from '../../worker/identity.ts';
import { Coordinator, defaultCoordinatorOptions } from '../../coordinator/service.ts';
import { JobIntake } from '../../coordinator/intake.ts';

const FLAGS: Record<string, FlagSpec> = {
  listen: { type: 'string', multiple: true, help: 'multiaddr to listen on (repeatable)', default: '/ip4/0.0.0.0/tcp/9360' },
  'data-dir': { type: 'string', help: 'identity key, job store and uploaded jobs (default $DRILL_HOME/coordinator or ~/.matrix-drill/coordinator)' },
  'lease-ms': { type: 'string', help: 'time a worker has to commit a leased unit', default: String(defaultCoordinatorOptions.leaseMs) },
  'stall-ms': { type: 'string', help: 'fail a disputed unit no connected worker may re-run after this long', default: String(defaultCoordinatorOptions.stallMs) },
  help: { type: 'boolean', help: 'show this help' },
};

/** Wait for SIGINT/SIGTERM. */
export function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    const on = (sig: string): void => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(sig);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

export const command: Command = {
  name: 'coordinator',
  summary: 'start a coordinator',
  async run(argv) {
    const p = parseArgs(argv, FLAGS);
    if (bool(p, 'help')) {
      process.stdout.write(helpText('usage: drill coordinator [--listen MULTIADDR] [--data-dir DIR]', FLAGS));
      return 0;
    }
    const listen = p.flags.listen as string[] | string;
    const dataDir = str(p, 'data-dir') ?? join(defaultDataDir(), 'coordinator');
    const log = createLogger({ level: (process.env.DRILL_LOG as 'info' | undefined) ?? 'info' });
    const id = await loadOrCreateIdentity(dataDir, { logger: log });
    const node = await createDrillNode({ privateKey: id.privateKey, listen: Array.isArray(listen) ? listen : [listen], logger: log });
    const coord = new Coordinator(node, { dataDir, leaseMs: int(p, 'lease-ms', 1000), stallMs: int(p, 'stall-ms', 0), logger: log });
    await coord.start();
    const intake = new JobIntake(node, coord, dataDir, log);
    await intake.start();
    const out = process.stdout;
    out.write(`coordinator ${node.peerId} (data dir ${dataDir}${id.created ? ', new identity' : ''})\n`);
    for (const a of node.multiaddrs()) out.write(`listening: ${a}\n`);
    out.write(`workers join with:  npx drill worker --join ${node.multiaddrs()[0]}\n`);
    out.write(`partners submit with: npx drill submit --to ${node.multiaddrs()[0]} --model M.onnx --input NAME=X.npy --out DIR\n`);
    const sig = await untilSignal();
    out.write(`\n${sig}: stopping (workers: ${coord.workers().filter((w) => w.connected).length} connected)\n`);
    await intake.stop();
    await coord.stop();
    await node.stop();
    return 0;
  },
};
