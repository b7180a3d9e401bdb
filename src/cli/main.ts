/**
 * `drill` entry point: dispatches to sub-commands, each in src/cli/commands/<name>.ts, loaded
 * lazily so `drill vrf ...` never pays for ONNX Runtime or libp2p start-up.
 * A UserError (a person's mistake) prints one clear line and exits 2; anything else is a bug
 * or an environment failure and prints its code and message (stack with DRILL_LOG=debug).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from './command.ts';
import { isDrillError } from '../util/errors.ts';
import { createLogger, envLogFormat, envLogLevel, parseLogFormat } from '../util/log.ts';
import type { LogFormat } from '../util/log.ts';
import { trace } from '../util/trace.ts';
import { peakRssBytes } from '../util/rss.ts';

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

/** `drill --version`: the package version and the Node that runs it. */
function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return `drill ${pkg.version} (node ${process.version})\n`;
}

function usage(): string {
  const rows = Object.entries(COMMANDS).map(([k, c]) => `  ${k.padEnd(15)} ${c.summary}`);
  return `usage: drill <command> [flags]   (drill <command> --help for its flags; drill --version)\n\ncommands:\n${rows.join('\n')}\n`;
}

/**
 * DRILL_RESOURCE_FILE=PATH: at exit, write the process's peak RSS and CPU time there as JSON
 * (the benchmark measures `drill run` as a whole process; undocumented elsewhere).
 */
function reportResourcesAtExit(): void {
  const file = process.env.DRILL_RESOURCE_FILE;
  if (!file) return;
  process.once('exit', () => {
    trace('exit');
    const r = process.resourceUsage();
    writeFileSync(file, JSON.stringify({ maxRssBytes: peakRssBytes(), cpuMs: (r.userCPUTime + r.systemCPUTime) / 1000 }) + '\n');
  });
}

export async function main(argv: string[]): Promise<number> {
  reportResourcesAtExit();
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name ? 0 : 2;
  }
  if (name === '--version' || name === '-V') {
    process.stdout.write(version());
    return 0;
  }
  const entry = COMMANDS[name];
  if (!entry) {
    process.stderr.write(`drill: unknown command ${JSON.stringify(name)}\n\n${usage()}`);
    return 2;
  }
  let format: LogFormat = 'human';
  try {
    format = requestedFormat(rest);
    envLogLevel(); // an unknown DRILL_LOG is a mistake to report, not a level to guess
    trace(`main: loading ${name}`);
    const { command } = await entry.load();
    trace(`main: ${name} loaded`);
    return await command.run(rest);
  } catch (e) {
    return report(name, e, format);
  }
}

/** The --log-format a command was given (else DRILL_LOG_FORMAT): how to report its errors. */
function requestedFormat(argv: string[]): LogFormat {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') break;
    if (a.startsWith('--log-format=')) return parseLogFormat(a.slice('--log-format='.length), '--log-format') ?? envLogFormat();
    if (a === '--log-format') return parseLogFormat(argv[i + 1], '--log-format') ?? envLogFormat();
  }
  return envLogFormat();
}

/** Print an error the command threw; returns the exit code (2 for a person's mistake, else 1). */
function report(name: string, e: unknown, format: LogFormat): number {
  const user = isDrillError(e, 'USER_INPUT');
  const code = user ? 2 : 1;
  if (format === 'json') {
    const log = createLogger({ level: 'error', format: 'json', module: `drill:cli:${name}` });
    if (isDrillError(e)) log.error(e.message, { code: e.code, exitCode: code, ...e.meta, ...(user ? {} : { stack: (e as Error).stack }) });
    else log.error(`internal error: ${e instanceof Error ? e.message : String(e)}`, { exitCode: code, stack: (e as Error | undefined)?.stack });
    return code;
  }
  if (user) {
    process.stderr.write(`drill ${name}: ${(e as Error).message}\n`);
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
