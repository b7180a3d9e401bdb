/**
 * `drill coordinator`: a long-running coordinator. Prints its multiaddrs (give one to workers:
 * `drill worker --join ADDR`) and accepts jobs from `drill submit --to ADDR ...` — from the
 * partners it knows (`--allow-partner`, `--partners FILE`), or from anyone with `--open-intake`,
 * each under the per-partner limits (`--max-partner-jobs`, `--max-job-bytes`, …).
 *
 * With `--genesis FILE` (written by `drill genesis`) it also follows the hashrate chain: a
 * non-producing ChainService (block store in its data dir, so a restart resumes) and every
 * credit record it signs published on the credits topic for the workers to put in blocks. It
 * prints a line per new head block. A genesis that does not list this coordinator's key is
 * refused: its credit records would be ignored by every node.
 *
 * With `--http HOST:PORT` (default 127.0.0.1:9361; `off` to disable) it serves the HTTP API,
 * the dashboard and /metrics (src/api/, loaded only then); `--api-tokens FILE` requires bearer
 * tokens, without which the API stays on loopback unless `--http-insecure`.
 */
import { join, resolve } from 'node:path';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { multiaddr } from '../../vendor/libp2p.ts';
import type { Command } from '../command.ts';
import { parseArgs, str, int, bool, list, size, duration, helpText } from '../args.ts';
import type { FlagSpec } from '../args.ts';
import { createLogger } from '../../util/log.ts';
import { createDrillNode } from '../../net/node.ts';
import { loadOrCreateIdentity, defaultDataDir } from '../../worker/identity.ts';
import { Coordinator, defaultCoordinatorOptions } from '../../coordinator/service.ts';
import { IntakeCore, IntakeServer, defaultIntakeLimits, partnerPolicy } from '../../coordinator/intake/index.ts';
import type { IntakeLimits } from '../../coordinator/intake/index.ts';
import { UserError, isDrillError } from '../../util/errors.ts';
import { parseHttpAddress } from '../../api/auth.ts';
import { bytesToHex } from '../../util/bytes.ts';
import type { Logger } from '../../util/log.ts';
import type { DrillNode } from '../../net/node.ts';
import type { CreditRecord } from '../../pod/credit.ts';
import type { FaultRecord } from '../../pod/fault.ts';
import { ChainService } from '../../chain/service.ts';
import { readGenesisFile, genesisHash } from '../../chain/genesis.ts';
import type { GenesisConfig } from '../../chain/genesis.ts';
import { publishCreditRecord, publishFault } from '../../chain/topics.ts';
import { ChainErrorCode } from '../../chain/errors.ts';
import { shortId } from '../../chain/block.ts';
import { slotAt } from '../../chain/epoch.ts';
import { untilSignal } from '../signals.ts';
import { LOG_FORMAT_FLAG, cliOutput, logFormatOf } from '../output.ts';

const FLAGS: Record<string, FlagSpec> = {
  listen: { type: 'string', multiple: true, help: 'multiaddr to listen on (repeatable)', default: '/ip4/0.0.0.0/tcp/9360' },
  'data-dir': { type: 'string', help: 'identity key, job store and uploaded jobs (default $DRILL_HOME/coordinator or ~/.matrix-drill/coordinator)' },
  'lease-ms': { type: 'string', help: 'time a worker has to commit a leased unit', default: String(defaultCoordinatorOptions.leaseMs) },
  genesis: { type: 'string', help: "genesis file of the hashrate chain (from 'drill genesis'): follow the chain and publish credit records for the workers' blocks" },
  'stall-ms': { type: 'string', help: 'fail a disputed unit no connected worker may re-run after this long', default: String(defaultCoordinatorOptions.stallMs) },
  'max-worker-threads': { type: 'string', help: "threads a worker's hello may claim (each earns 2 leases; more are clamped)", default: String(defaultCoordinatorOptions.maxWorkerThreads) },
  'allow-partner': { type: 'string', multiple: true, help: "accept jobs from this partner peer id (printed by 'drill submit --show-id'); repeatable" },
  partners: { type: 'string', multiple: true, help: 'file of partner peer ids, one per line (# comments); repeatable' },
  'open-intake': { type: 'boolean', help: 'accept jobs from anyone (each peer id under the per-partner limits)' },
  'max-partner-jobs': { type: 'string', help: 'jobs one partner may run or upload at once', default: String(defaultIntakeLimits.maxJobsPerPartner) },
  'max-intake-jobs': { type: 'string', help: 'partner jobs running or uploading at once, all partners together', default: String(defaultIntakeLimits.maxJobsTotal) },
  'max-job-bytes': { type: 'string', help: 'bytes one job may upload (model + inputs; streamed to disk)', default: '1G' },
  'min-unit-bytes': { type: 'string', help: 'input bytes a unit must carry at least (jobs of at most 64 units are exempt)', default: '4K' },
  'max-job-units': { type: 'string', help: 'units one job may have at most', default: String(defaultIntakeLimits.maxUnitsPerJob) },
  http: { type: 'string', help: 'HTTP API, dashboard and /metrics on HOST:PORT, or off (without --api-tokens only a loopback address, unless --http-insecure)', default: '127.0.0.1:9361' },
  'api-tokens': { type: 'string', help: 'file of "TOKEN PARTNER [operator]" lines: HTTP callers need a bearer token; each token admits its partner to the intake' },
  'http-insecure': { type: 'boolean', help: 'serve the HTTP API without tokens on a non-loopback address (anyone who reaches it may submit and cancel jobs)' },
  'output-ttl': { type: 'string', help: "a finished job's files are deleted this long after it ended unless fetched and released sooner (status and report stay)", default: '24h' },
  announce: { type: 'string', multiple: true, help: 'address workers should dial when the listening ones are not reachable as such, e.g. /dns4/coordinator/tcp/9360 (/p2p/<peer id> is appended): shown in the join hint and written to --address-file' },
  'address-file': { type: 'string', help: "once ready, write the address workers join (each --announce, else the listening addresses, with /p2p/<peer id>; one per line) to this file, for 'drill worker --join-file'" },
  'log-format': LOG_FORMAT_FLAG,
  help: { type: 'boolean', help: 'show this help' },
};

/** The intake limits from the flags. @throws UserError naming the flag. */
export function intakeLimitsFrom(p: ReturnType<typeof parseArgs>): IntakeLimits {
  return {
    ...defaultIntakeLimits,
    maxJobsPerPartner: int(p, 'max-partner-jobs', 1, 1_000_000) ?? defaultIntakeLimits.maxJobsPerPartner,
    maxJobsTotal: int(p, 'max-intake-jobs', 1, 1_000_000) ?? defaultIntakeLimits.maxJobsTotal,
    maxJobBytes: size(p, 'max-job-bytes', 1) ?? defaultIntakeLimits.maxJobBytes,
    minUnitBytes: size(p, 'min-unit-bytes', 0) ?? defaultIntakeLimits.minUnitBytes,
    maxUnitsPerJob: int(p, 'max-job-units', 1, 10_000_000) ?? defaultIntakeLimits.maxUnitsPerJob,
    outputTtlMs: duration(p, 'output-ttl', 1000) ?? defaultIntakeLimits.outputTtlMs,
  };
}

/** The block store of a chain inside a node's data dir: one file per genesis (so a node given a
 * new genesis starts a new chain instead of failing on the old store); a restart resumes. */
export function chainStorePath(dataDir: string, genesis: GenesisConfig): string {
  const dir = join(dataDir, 'chain');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return join(dir, `${genesisHash(genesis).slice(0, 16)}.sqlite`);
}

/**
 * Read and check the genesis file named by --genesis.
 * @throws UserError naming --genesis when it is unreadable, not JSON, or a field is wrong.
 */
export function readGenesisFlag(path: string): GenesisConfig {
  try {
    return readGenesisFile(path, '--genesis');
  } catch (e) {
    if (isDrillError(e, ChainErrorCode.BAD_GENESIS)) throw new UserError('--genesis', "a genesis file written by 'drill genesis'", path, e.message);
    throw e;
  }
}

/** Records kept for re-publishing while no producer is listening; the oldest go beyond it. */
const MAX_UNSENT_RECORDS = 4096;

type ChainRecord = { kind: 'credit'; record: CreditRecord } | { kind: 'fault'; record: FaultRecord };

/**
 * Publishes the coordinator's credit and fault records for block producers. A record published
 * while no producer is subscribed (no worker connected yet, all restarting) reaches nobody, so
 * it is kept and published again every slot until some peer receives it.
 */
export class RecordPublisher {
  readonly #node: DrillNode;
  readonly #log: Logger;
  readonly #unsent: ChainRecord[] = [];
  readonly #timer: NodeJS.Timeout;
  #flushing = false;
  constructor(node: DrillNode, retryMs: number, log: Logger) {
    this.#node = node;
    this.#log = log;
    this.#timer = setInterval(() => void this.#flush(), retryMs);
    this.#timer.unref();
  }
  get unsent(): number {
    return this.#unsent.length;
  }
  credit(record: CreditRecord): void {
    this.#publish({ kind: 'credit', record });
  }
  fault(record: FaultRecord): void {
    this.#publish({ kind: 'fault', record });
  }
  #publish(r: ChainRecord): void {
    void this.#send(r).then((ok) => {
      if (ok) return;
      if (this.#unsent.length >= MAX_UNSENT_RECORDS) this.#unsent.shift();
      this.#unsent.push(r);
    });
  }
  stop(): void {
    clearInterval(this.#timer);
  }
  async #send(r: ChainRecord): Promise<boolean> {
    try {
      const res = r.kind === 'credit' ? await publishCreditRecord(this.#node, r.record) : await publishFault(this.#node, r.record);
      return res.recipients > 0;
    } catch (e) {
      this.#log.warn(`${r.kind} record publish failed; will retry`, { job: r.record.job, err: (e as Error).message });
      return false;
    }
  }
  async #flush(): Promise<void> {
    if (this.#flushing || this.#unsent.length === 0) return;
    this.#flushing = true;
    try {
      while (this.#unsent.length > 0) {
        if (!(await this.#send(this.#unsent[0]!))) break;
        this.#unsent.shift();
      }
    } finally {
      this.#flushing = false;
    }
  }
}

/**
 * An --announce value: a multiaddr without /p2p/ (this coordinator's id is appended).
 * @throws UserError naming --announce otherwise.
 */
function checkAnnounce(a: string): string {
  try {
    multiaddr(a);
  } catch {
    throw new UserError('--announce', 'a multiaddr like /dns4/coordinator/tcp/9360', a);
  }
  if (!a.startsWith('/') || a.includes('/p2p/')) throw new UserError('--announce', 'a multiaddr without /p2p/ (the peer id is appended)', a);
  return a.replace(/\/+$/, '');
}

/**
 * Write the join addresses, one per line, replacing the file in one step (a worker polling it
 * never reads half a line).
 * @throws UserError naming --address-file when it cannot be written.
 */
export function writeAddressFile(path: string, addrs: string[]): void {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, addrs.join('\n') + '\n', { mode: 0o644 });
    renameSync(tmp, path);
  } catch (e) {
    throw new UserError('--address-file', 'a file path in a writable folder', path, (e as Error).message);
  }
}

export const command: Command = {
  name: 'coordinator',
  summary: 'start a coordinator',
  async run(argv) {
    const p = parseArgs(argv, FLAGS);
    if (bool(p, 'help')) {
      process.stdout.write(helpText('usage: drill coordinator [--listen MULTIADDR] [--data-dir DIR] [--genesis FILE] [--allow-partner PEER_ID ... | --partners FILE | --open-intake] [--announce MULTIADDR] [--address-file FILE]', FLAGS));
      return 0;
    }
    const policy = partnerPolicy({ open: bool(p, 'open-intake'), allow: list(p, 'allow-partner'), files: list(p, 'partners') });
    const limits = intakeLimitsFrom(p);
    const listen = p.flags.listen as string[] | string;
    const dataDir = str(p, 'data-dir') ?? join(defaultDataDir(), 'coordinator');
    const format = logFormatOf(p);
    const { log, say } = cliOutput('coordinator', format, { defaultLevel: 'info' });
    const genesisFile = str(p, 'genesis');
    const genesis = genesisFile === undefined ? null : readGenesisFlag(genesisFile);
    const leaseMs = int(p, 'lease-ms', 1000);
    const stallMs = int(p, 'stall-ms', 0);
    const maxWorkerThreads = int(p, 'max-worker-threads', 1, 1024);
    const announce = list(p, 'announce').map(checkAnnounce);
    const addressFile = str(p, 'address-file');
    // Listen for the stop signal before start-up, not after the ready lines: a supervisor may
    // send SIGTERM as soon as it reads them (or during start-up: then stop once started).
    const stopSignal = untilSignal();
    // The HTTP side is loaded only when it is on (it costs ~100 ms of start-up and some memory).
    const http = parseHttpAddress(str(p, 'http')!);
    const tokensFile = str(p, 'api-tokens');
    const api = http ? await import('../../api/index.ts') : null;
    const tokens = api && tokensFile !== undefined ? api.readTokensFile(tokensFile) : null;
    if (http && api) api.checkExposure(http.host, tokens, bool(p, 'http-insecure'));
    const registry = http ? new (await import('prom-client')).Registry() : null;
    const libp2pMetrics = registry ? (await import('@libp2p/prometheus-metrics')).prometheusMetrics({ registry, collectDefaultMetrics: true, preserveExistingMetrics: true }) : undefined;
    const id = await loadOrCreateIdentity(dataDir, { logger: log });
    if (genesis) {
      const key = bytesToHex(id.privateKey.publicKey.raw);
      if (!genesis.coordinators.includes(key)) {
        throw new UserError('--genesis', `a genesis that lists this coordinator (key ${key}, data dir ${dataDir}) in "coordinators"`, genesisFile, `it lists ${genesis.coordinators.map((k) => k.slice(0, 12) + '…').join(', ')}; write one with drill genesis --data-dir ${dataDir}`);
      }
    }
    const node = await createDrillNode({ privateKey: id.privateKey, listen: Array.isArray(listen) ? listen : [listen], logger: log, ...(libp2pMetrics ? { metrics: libp2pMetrics } : {}) });
    let chain: ChainService | null = null;
    let publisher: RecordPublisher | null = null;
    if (genesis) {
      const storePath = chainStorePath(dataDir, genesis);
      // The block lines below replace the chain's own info log (DRILL_LOG=info shows both).
      const chainLog = process.env.DRILL_LOG ? log : createLogger({ level: 'warn', format });
      chain = new ChainService({ node, genesis, logger: chainLog }, { storePath, produce: false });
      await chain.start();
      publisher = new RecordPublisher(node, genesis.slotMs, log);
      const st = chain.status();
      const now = Date.now();
      say(`chain ${genesis.chainId} (genesis ${shortId(genesisHash(genesis))}): following, head #${st.height}, ${now < genesis.genesisTime ? `slot 0 in ${((genesis.genesisTime - now) / 1000).toFixed(1)} s` : `slot ${slotAt(genesis, now)}`}, store ${storePath}`, {
        chainId: genesis.chainId,
        genesis: genesisHash(genesis),
        height: st.height,
        store: storePath,
      });
      const c = chain;
      c.on('head', (h) => {
        const n = c.state.getNode(h.hash);
        say(`block #${h.height} slot ${h.slot} by ${shortId(n?.producer ?? '?')}: ${n?.creditIds.length ?? 0} credit records (head ${shortId(h.hash)})`, { height: h.height, slot: h.slot, producer: n?.producer, credits: n?.creditIds.length ?? 0, hash: h.hash });
      });
      c.on('reorg', (r) => say(`reorg: ${r.depth} block(s) replaced, head ${shortId(r.to)}`, { depth: r.depth, head: r.to }));
    }
    const pub = publisher;
    const coord = new Coordinator(node, { dataDir, leaseMs, stallMs, maxWorkerThreads, logger: log, ...(pub ? { onCredit: (r: CreditRecord) => pub.credit(r), onFault: (r: FaultRecord) => pub.fault(r) } : {}) });
    await coord.start();
    const intakeCore = new IntakeCore(coord, { dataDir, policy, limits, logger: log });
    await intakeCore.start();
    const intake = new IntakeServer(node, intakeCore, log);
    await intake.start();
    const addrs = node.multiaddrs().map(String);
    const joinAddrs = announce.length ? announce.map((a) => `${a}/p2p/${node.peerId}`) : addrs;
    let failure: unknown = null;
    let httpServer: Awaited<ReturnType<NonNullable<typeof api>['ApiServer']['start']>> | null = null;
    try {
      if (addressFile !== undefined) writeAddressFile(addressFile, joinAddrs);
      if (http && api) httpServer = await api.ApiServer.start({ coordinator: coord, intake: intakeCore, node, chain, logger: log, ...(registry ? { registry } : {}) }, { host: http.host, port: http.port, tokens, insecure: bool(p, 'http-insecure') });
    } catch (e) {
      failure = e; // stop what was started, then report it
    }
    if (!failure) {
      say(`coordinator ${node.peerId} (data dir ${dataDir}${id.created ? ', new identity' : ''})`, { peer: node.peerId, dataDir, newIdentity: id.created });
      say(
        policy.open
          ? `intake: open to anyone (${limits.maxJobsPerPartner} jobs per partner)`
          : `intake: ${policy.partners.size} partner(s)${policy.partners.size === 0 ? ' — nobody can submit jobs; add partners with --allow-partner PEER_ID or --partners FILE (or --open-intake)' : ''}`,
        { intakeOpen: policy.open, partners: policy.partners.size },
      );
      for (const a of addrs) say(`listening: ${a}`, { addr: a });
      if (announce.length) for (const a of joinAddrs) say(`announced: ${a}`, { announce: a });
      if (addressFile !== undefined) say(`address file: ${addressFile}`, { addressFile });
      say(`workers join with:  npx drill worker --join ${joinAddrs[0]}${genesisFile ? ` --genesis ${resolve(genesisFile)}` : ''}`, { join: joinAddrs[0] });
      say(`partners submit with: npx drill submit --to ${joinAddrs[0]} --model M.onnx --input NAME=X.npy --out DIR`, { submitTo: joinAddrs[0] });
      if (httpServer) say(`http: ${httpServer.url} (dashboard /, API /v1, /openapi.json, /metrics; ${tokens ? `${tokens.size} token(s)` : 'no tokens: local operator only'})`, { http: httpServer.url, tokens: tokens?.size ?? 0 });
      const sig = await stopSignal;
      const connected = coord.workers().filter((w) => w.connected).length;
      say(`${format === 'human' ? '\n' : ''}${sig}: stopping (workers: ${connected} connected)`, { signal: sig, workersConnected: connected });
    }
    await httpServer?.stop();
    await intake.stop();
    await intakeCore.stop();
    await coord.stop();
    publisher?.stop();
    if (chain) {
      const st = chain.status();
      say(`chain head #${st.height} ${shortId(st.head)}${publisher?.unsent ? `; ${publisher.unsent} records never reached a producer` : ''}`, { height: st.height, head: st.head, unsentRecords: publisher?.unsent ?? 0 });
      await chain.stop();
    }
    await node.stop();
    if (failure) throw failure;
    return 0;
  },
};
