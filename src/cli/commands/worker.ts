/**
 * `drill worker --join MULTIADDR`: a drilling worker. Keeps its identity key and model cache in
 * a data directory, benchmarks the device on first start (the "Device Share" score: a
 * scheduling hint, never credit), registers with the coordinator, runs units and shows what it
 * is doing. Rejoins with backoff when the coordinator goes away.
 *
 * `drill worker --show-id` prints the worker's peer id (creating its identity) and exits: what
 * an operator passes to `drill genesis --producer`. With `--genesis FILE` the worker also runs a
 * producing ChainService (block store in its data dir, so a restart resumes): it takes part in
 * the hashrate VRF lottery and prints every block it produces.
 */
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import type { Command } from '../command.ts';
import { parseCheatMode } from '../../worker/cheat.ts';
import { parseArgs, str, int, bool, list, size, helpText } from '../args.ts';
import { publicKeyFromRaw, peerIdFromPublicKey } from '../../vendor/libp2p.ts';
import { hexToBytes } from '../../util/bytes.ts';
import type { GenesisConfig } from '../../chain/genesis.ts';
import type { FlagSpec } from '../args.ts';
import { DrillError, UserError, isDrillError } from '../../util/errors.ts';
import { createDrillNode } from '../../net/node.ts';
import { loadOrCreateIdentity, defaultDataDir } from '../../worker/identity.ts';
import { InferencePool } from '../../worker/pool.ts';
import type { Device } from '../../worker/pool.ts';
import { ModelCache } from '../../worker/models.ts';
import { runDeviceBenchmark } from '../../worker/benchmark.ts';
import { WorkerNode, coordinatorPeerId } from '../../worker/node.ts';
import { chainStorePath, readGenesisFlag } from './coordinator.ts';
import { untilSignal } from '../signals.ts';
import { LOG_FORMAT_FLAG, cliOutput, logFormatOf } from '../output.ts';
import { formatMs } from '../progress.ts';
import { StatusLine, formatWorkerStatus } from '../status-line.ts';
import type { WorkerStatus } from '../status-line.ts';
import { ChainService } from '../../chain/service.ts';
import { shortId } from '../../chain/block.ts';
import { slotAt } from '../../chain/epoch.ts';

const FLAGS: Record<string, FlagSpec> = {
  join: { type: 'string', multiple: true, help: "coordinator multiaddr (…/p2p/12D3Koo…), repeatable" },
  'join-file': { type: 'string', help: "read the coordinator multiaddr from this file (first line; written by 'drill coordinator --address-file'), again before every (re)join; waits for it to appear" },
  threads: { type: 'string', help: 'ONNX Runtime threads (one session per thread; default: all cores)' },
  device: { type: 'string', help: 'cpu | cuda (ONNX Runtime CUDA execution provider)', default: 'cpu' },
  'fallback-cpu': { type: 'boolean', help: 'run on the CPU when --device cuda is unavailable instead of exiting' },
  'data-dir': { type: 'string', help: 'identity key, model cache, benchmark (default $DRILL_HOME/worker or ~/.matrix-drill/worker)' },
  listen: { type: 'string', help: 'multiaddr to listen on', default: '/ip4/0.0.0.0/tcp/0' },
  rebench: { type: 'boolean', help: 'run the device benchmark again instead of using the cached score' },
  verbose: { type: 'boolean', help: 'print a line for every unit run' },
  'cache-max': { type: 'string', help: 'model cache size; least recently used models past it are deleted (never one in use)', default: '4G' },
  'shared-fs': { type: 'boolean', help: "read input rows from the coordinator's files when on its filesystem (only for a coordinator you trust with this machine's files)" },
  // Tests of PoD against separate-process cheaters only: never shown in --help.
  cheat: { type: 'string', help: 'TESTS ONLY: answer like a cheater (corrupt | noise | lazy | error | stale)', hidden: true },
  genesis: { type: 'string', help: "genesis file of the hashrate chain (from 'drill genesis'): produce blocks when this worker wins the VRF lottery" },
  'show-id': { type: 'boolean', help: "print this worker's peer id (creating its identity in --data-dir) and exit" },
  'log-format': LOG_FORMAT_FLAG,
  help: { type: 'boolean', help: 'show this help' },
};

/** The peer ids of a genesis's coordinators (its `coordinators` are raw Ed25519 public keys, hex). */
export function genesisCoordinatorPeers(genesis: GenesisConfig): string[] {
  return genesis.coordinators.map((k) => peerIdFromPublicKey(publicKeyFromRaw(hexToBytes(k, 'genesis coordinators'))).toString());
}

/**
 * A coordinator address given by a person or read from a join file.
 * @throws UserError naming `field` unless it is a multiaddr ending in /p2p/<peer id>.
 */
function checkJoinAddr(a: string, field: string): string {
  if (!a.startsWith('/') || !/\/p2p\/[^/]+\/?$/.test(a)) throw new UserError(field, 'a multiaddr ending in /p2p/<peer id>', a);
  return a;
}

/**
 * The first line of a join file (`drill coordinator --address-file`).
 * @throws DrillError JOIN_FILE_MISSING while the file does not exist yet; UserError naming
 * --join-file when its first line is not a coordinator multiaddr.
 */
function readJoinFile(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new DrillError(JOIN_FILE_MISSING, 'the file does not exist yet (the coordinator writes it once ready: drill coordinator --address-file)');
    throw e;
  }
  const first = text.split('\n').map((l) => l.trim()).find((l) => l !== '');
  return checkJoinAddr(first ?? '', `--join-file ${file}`);
}

const JOIN_FILE_MISSING = 'JOIN_FILE_MISSING';
/** How often a worker looks for a join file that is not there yet: a stat is cheap, and the
 * coordinator writes it seconds after it starts — no reason to back off. */
const JOIN_FILE_POLL_MS = 500;

/** Retry delays when the coordinator is unreachable: 1 s doubling to 30 s (a restart takes seconds). */
const REJOIN_MS = [1000, 2000, 4000, 8000, 16000, 30000];

export const command: Command = {
  name: 'worker',
  summary: 'start a drilling worker',
  async run(argv) {
    const p = parseArgs(argv, FLAGS);
    if (bool(p, 'help')) {
      process.stdout.write(helpText('usage: drill worker (--join MULTIADDR | --join-file FILE) [--threads T] [--device cpu|cuda] [--data-dir DIR] [--genesis FILE]\n       drill worker --show-id [--data-dir DIR]', FLAGS));
      return 0;
    }
    if (bool(p, 'show-id')) {
      const dir = str(p, 'data-dir') ?? join(defaultDataDir(), 'worker');
      const id = await loadOrCreateIdentity(dir);
      process.stdout.write(`${id.peerId}\n`);
      if (id.created) process.stderr.write(`new identity in ${id.path}\n`);
      return 0;
    }
    const joins = list(p, 'join');
    const joinFile = str(p, 'join-file');
    if (joins.length === 0 && joinFile === undefined) throw new UserError('--join', "a coordinator multiaddr like /ip4/10.0.0.5/tcp/9360/p2p/12D3KooW… (printed by 'drill coordinator'), or --join-file", undefined);
    for (const j of joins) checkJoinAddr(j, '--join');
    const device = str(p, 'device')!;
    if (device !== 'cpu' && device !== 'cuda') throw new UserError('--device', 'cpu or cuda', device);
    const dataDir = str(p, 'data-dir') ?? join(defaultDataDir(), 'worker');
    const cacheMax = size(p, 'cache-max', 1)!;
    const genesisFile = str(p, 'genesis');
    const genesis = genesisFile === undefined ? null : readGenesisFlag(genesisFile); // fail before the slow start-up
    const out = cliOutput('worker', logFormatOf(p), { defaultLevel: 'warn' });
    const { log } = out;
    // Human lines carry the time of day (a worker runs for days); JSON records carry a full time.
    // Once the status line runs (below), human messages print above it.
    let line: StatusLine | null = null;
    const stamp = (s: string): string => (out.format === 'human' ? `${new Date().toISOString().slice(11, 19)} ${s}` : s);
    const say = (s: string, fields?: Record<string, unknown>): void => (line ? line.log(stamp(s)) : out.say(stamp(s), fields));
    const warn = (s: string, fields?: Record<string, unknown>): void => (line ? line.log(stamp(s)) : out.warn(stamp(s), fields));

    // Listen for the stop signal before start-up, not after the ready lines: a supervisor may
    // send SIGTERM as soon as it reads them (or during start-up: then stop once started).
    const stopSignal = untilSignal();
    const id = await loadOrCreateIdentity(dataDir, { logger: log });
    say(`worker ${id.peerId}${id.created ? ' (new identity)' : ''}, data dir ${dataDir}`, { peer: id.peerId, dataDir, newIdentity: id.created });
    const pool = new InferencePool({ threads: int(p, 'threads', 1, 1024), device: device as Device, fallbackToCpu: bool(p, 'fallback-cpu'), logger: log });
    await pool.start();
    const prof = pool.profile!;
    say(`device ${prof.device} (${prof.ep}), ${pool.threads} thread(s), ONNX Runtime ${prof.ortVersion}, ${prof.cpuModel}`, { device: prof.device, ep: prof.ep, threads: pool.threads, ortVersion: prof.ortVersion, cpu: prof.cpuModel });
    const bench = await runDeviceBenchmark(pool, { dataDir, rerun: bool(p, 'rebench') });
    say(`Device Share benchmark: ${bench.score.toFixed(1)} GFLOP/s${bench.cached ? ` (cached from ${bench.at}; --rebench to measure again)` : ''} — a scheduling hint, never credit`, { gflops: bench.score, cached: bench.cached, at: bench.at });

    const node = await createDrillNode({ privateKey: id.privateKey, listen: [str(p, 'listen')!], logger: log });
    // The worker serves the coordinators it was given, and nobody else who announces units.
    const coordinators = [...joins.map(coordinatorPeerId), ...(genesis ? genesisCoordinatorPeers(genesis) : [])];
    const models = new ModelCache(join(dataDir, 'models'), { maxBytes: cacheMax });
    const worker = new WorkerNode(node, pool, models, { threads: pool.threads, device: prof.device, score: bench.score, cheat: str(p, 'cheat') === undefined ? null : parseCheatMode(str(p, 'cheat')!), sharedFs: bool(p, 'shared-fs'), coordinators, logger: log });
    await worker.start();
    if (str(p, 'cheat') !== undefined) warn(`WARNING: --cheat ${str(p, 'cheat')}: this worker cheats on purpose (tests); it will earn no credit`, { cheat: str(p, 'cheat') });

    let chain: ChainService | null = null;
    if (genesis) {
      const storePath = chainStorePath(dataDir, genesis);
      chain = new ChainService({ node, genesis, logger: log }, { storePath, produce: true });
      await chain.start();
      const st = chain.status();
      const alloc = genesis.credits.some((r) => r.credited.includes(id.peerId));
      const now = Date.now();
      say(`chain ${genesis.chainId}: producing (head #${st.height}, ${now < genesis.genesisTime ? `slot 0 in ${formatMs(genesis.genesisTime - now)}` : `slot ${slotAt(genesis, now)}`}, store ${storePath})`, { chainId: genesis.chainId, height: st.height, store: storePath });
      if (!alloc) say('this worker has no genesis allocation: it wins slots once its PoD credit reaches an epoch snapshot');
      const verboseChain = bool(p, 'verbose');
      chain.on('block', (b) => {
        if (b.own) say(`produced block #${b.height} slot ${b.slot} ${shortId(b.hash)}: ${b.credits} credit records`, { height: b.height, slot: b.slot, hash: b.hash, credits: b.credits });
      });
      chain.on('head', (h) => {
        if (verboseChain) say(`chain head #${h.height} slot ${h.slot} ${shortId(h.hash)}`, { height: h.height, slot: h.slot, hash: h.hash });
      });
      chain.on('reorg', (r) => {
        if (verboseChain) say(`chain reorg: ${r.depth} block(s) replaced, head ${shortId(r.to)}`, { depth: r.depth, head: r.to });
      });
    }

    const verbose = bool(p, 'verbose');
    let rows = 0;
    let units = 0;
    let runMs = 0;
    const started = Date.now();
    worker.events.on('unit', (u) => {
      units++;
      rows += u.rows;
      runMs += u.runMs;
      if (verbose) say(`unit ${u.lease} done: ${u.rows} rows in ${formatMs(u.runMs)}`, { lease: u.lease, rows: u.rows, runMs: u.runMs });
    });
    worker.events.on('error', (e) => warn(`unit ${e.lease} failed: ${e.message}`, { lease: e.lease, err: e.message }));

    let stopping = false;
    const connected = new Set<string>();
    // The trainer's earnings: one line redrawn in place on a TTY, a plain line every 10 s otherwise
    // (DRILL_STATUS_MS); with --log-format json, a record with the same fields when they change.
    const earnings = (): WorkerStatus => {
      if (!chain) return { units, rows, credit: null, faults: null, weightShare: null, height: null, joined: connected.size };
      const mine = chain.state.ledger.window().get(id.peerId);
      const st = chain.status();
      return { units, rows, credit: mine && mine.credit > 0n ? Number(mine.credit) : 0, faults: mine?.faults ?? 0, weightShare: st.weightShare, height: st.height, joined: connected.size };
    };
    const busy = (): string => (runMs ? ` | busy ${formatMs(runMs)} of ${formatMs(Date.now() - started)}` : '');
    let stopStatus: () => void;
    if (out.format === 'human') {
      line = new StatusLine(() => `${line?.tty ? '' : `${new Date().toISOString().slice(11, 19)} `}${formatWorkerStatus(earnings())}${busy()}`);
      stopStatus = () => {
        line?.stop();
        line = null;
      };
    } else {
      let last = '';
      const timer = setInterval(() => {
        const e = earnings();
        const msg = formatWorkerStatus(e);
        if (msg !== last) out.say(`status: ${msg}`, { ...e, busyMs: runMs, upMs: Date.now() - started });
        last = msg;
      }, process.env.DRILL_STATUS_MS !== undefined ? Number(process.env.DRILL_STATUS_MS) : 10_000);
      timer.unref();
      stopStatus = () => clearInterval(timer);
    }
    const joinLoop = async (target: { addr: string } | { file: string }): Promise<void> => {
      let waitingForFile = false;
      for (let attempt = 0; !stopping; attempt++) {
        let addr = 'addr' in target ? target.addr : `(${target.file})`;
        try {
          if ('file' in target) addr = readJoinFile(target.file);
          const coord = await worker.join(addr);
          connected.add(coord);
          say(`joined coordinator ${coord}`, { coordinator: coord, addr });
          await new Promise<void>((resolve) => {
            const off = node.onPeer('disconnect', (peer) => {
              if (peer === coord) {
                off();
                resolve();
              }
            });
          });
          connected.delete(coord);
          if (!stopping) warn(`coordinator ${coord} disconnected; rejoining`, { coordinator: coord });
          attempt = -1;
        } catch (e) {
          if (isDrillError(e, JOIN_FILE_MISSING)) {
            if (!waitingForFile) say(`waiting for ${'file' in target ? target.file : addr}: ${e.message}`, { joinFile: 'file' in target ? target.file : undefined });
            waitingForFile = true;
            attempt = -1;
            await new Promise((r) => setTimeout(r, JOIN_FILE_POLL_MS));
            continue;
          }
          waitingForFile = false;
          const wait = REJOIN_MS[Math.min(attempt, REJOIN_MS.length - 1)]!;
          warn(`cannot reach ${addr}: ${(e as Error).message}; retrying in ${wait / 1000} s`, { addr, err: (e as Error).message, retryMs: wait });
          await new Promise((r) => setTimeout(r, wait));
        }
      }
    };
    for (const j of joins) void joinLoop({ addr: j });
    if (joinFile !== undefined) void joinLoop({ file: joinFile });
    const sig = await stopSignal;
    stopping = true;
    stopStatus();
    say(`${sig}: stopping after ${units} units`, { signal: sig, units });
    if (chain) {
      const st = chain.status();
      say(`chain head #${st.height} ${shortId(st.head)}: ${st.blocksProduced} of its blocks by this worker`, { height: st.height, head: st.head, blocksProduced: st.blocksProduced });
      await chain.stop();
    }
    await worker.stop();
    await pool.stop();
    await node.stop();
    return 0;
  },
};
