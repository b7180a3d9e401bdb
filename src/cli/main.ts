/**
 * `drill` entry point: dispatches to sub-commands, each in src/cli/commands/<name>.ts, loaded
 * lazily so `drill vrf ...` never pays for ONNX Runtime or libp2p start-up.
 * A UserError (a person's mistake) prints one clear line and exits 2; anything else is a bug
 * or an environment failure and prints its code and message (stack with DRILL_LOG=debug).
 */
import type { Command } from './command.ts';
import { isDrillError } from '../util/errors.ts';

const COMMANDS: Record<string, { summary: string; load: () => Promise<{ command: Command }> }> = {
  demo: { summary: 'run the sample job on an embedded local grid (what `npm start` does)', load: () => import('./commands/demo.ts') },
  run: { summary: 'run a batch inference job (ONNX model + .npy inputs) on an embedded local grid', load: () => import('./commands/run.ts') },
  coordinator: { summary: 'start a coordinator that accepts jobs and schedules work units', load: () => import('./commands/coordinator.ts') },
  worker: { summary: 'start a drilling worker that joins a coordinator and runs work units', load: () => import('./commands/worker.ts') },
  submit: { summary: 'submit a job to a running coordinator and wait for its outputs', load: () => import('./commands/submit.ts') },
  status: { summary: 'show the network (workers, jobs, chain) from a coordinator HTTP API', load: () => import('./commands/status.ts') },
  vrf: { summary: 'RFC 9381 ECVRF: keygen, prove, verify', load: () => import('./commands/vrf.ts') },
  genesis: { summary: 'write a genesis file for a hashrate chain (coordinator-signed bootstrap credit for producers)', load: () => import('./commands/genesis.ts') },
  devnet: { summary: 'run N block-producing nodes on 127.0.0.1 and report the chain they agree on', load: () => import('./commands/devnet.ts') },
  sim: { summary: 'PoD / VRF-lottery research simulator', load: () => import('./commands/sim.ts') },
  chain: { summary: "list a node's block store: blocks, the peers they credit, the faults they carry", load: () => import('./commands/chain.ts') },
  settle: { summary: 'anchor matrix-drill blocks and credit roots on a Substrate chain', load: () => import('./commands/settle.ts') },
  'verify-credit': { summary: "prove a trainer's credit against an anchor on a Substrate chain", load: () => import('./commands/verify-credit.ts') },
};

function usage(): string {
  const rows = Object.entries(COMMANDS).map(([k, c]) => `  ${k.padEnd(15)} ${c.summary}`);
  return `usage: drill <command> [flags]   (drill <command> --help for its flags)\n\ncommands:\n${rows.join('\n')}\n`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name ? 0 : 2;
  }
  const entry = COMMANDS[name];
  if (!entry) {
    process.stderr.write(`drill: unknown command ${JSON.stringify(name)}\n\n${usage()}`);
    return 2;
  }
  try {
    const { command } = await entry.load();
    return await command.run(rest);
  } catch (e) {
    if (isDrillError(e, 'USER_INPUT')) {
      process.stderr.write(`drill ${name}: ${e.message}\n`);
      return 2;
    }
    if (isDrillError(e)) {
      process.stderr.write(`drill ${name}: ${e.message} [${e.code}]\n`);
      if (process.env.DRILL_LOG === 'debug') process.stderr.write(`${e.stack}\n`);
      return 1;
    }
    process.stderr.write(`drill ${name}: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return 1;
  }
}
