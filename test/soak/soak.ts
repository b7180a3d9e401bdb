/**
 * `npm run soak -- --minutes N [--workers W]`: a soak test of a grid of real processes
 * (`bin/drill.js`), not part of `npm test`.
 *
 * For N minutes it runs a coordinator and W workers as child processes and keeps two
 * `drill submit` jobs in flight (an Identity model, so every output row must equal its input
 * row), while it
 *   - SIGKILLs a worker (not worker 0) every ~20 s and restarts it 2 s later;
 *   - SIGKILLs the coordinator at 1/6 and 1/3 of the run and restarts it on the same port and
 *     data dir (it resumes its jobs; `drill submit` keeps polling through the restart);
 *   - every ~8 s runs a hostile peer (a fresh libp2p identity each time) against the
 *     coordinator: an intake upload as an unknown partner, a hello claiming 1,024 threads that
 *     claims units and never commits, junk on every gossip topic, a frame that lies about its
 *     length.
 * When the time is up it stops submitting, lets the jobs in flight finish, and prints: jobs
 * completed, rows lost (rows of accepted jobs that did not come back equal to their input: must
 * be 0), duplicates (units credited twice in the coordinator's store, or output rows holding
 * another row's data: must be 0), the hostile rounds and their outcomes, and each process's
 * RSS at its start (after a 30 s warm-up), its peak and its end. A process's RSS climbs to a
 * plateau in its first minutes (the memory V8 took at a peak of the load is kept; the
 * coordinator's JS heap in use stays at 40–90 MB throughout, seen through its /metrics, and
 * MALLOC_ARENA_MAX=2 does not change the step), so
 * a leak is judged on the second half of each process's life after the warm-up: RSS at the end
 * within +10 % of RSS at that half-way point (a steady leak over the whole life shows there as
 * +20 % or more), for processes that lived four minutes past the warm-up (a run of 10 minutes
 * judges worker 0 and the last coordinator). Exit 0 when all hold.
 */
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { drill } from '../helpers/grid.ts';
import type { Proc } from '../helpers/grid.ts';
import { GraphBuilder } from '../../src/onnx/builder.ts';
import { encodeNpy, readNpy } from '../../src/util/npy.ts';
import { createDrillNode } from '../../src/net/node.ts';
import { isDrillError } from '../../src/util/errors.ts';
import { PROTOCOL, helloCodec, claimCodec, decodeClaimReply, UNITS_TOPIC } from '../../src/protocol/grid.ts';
import { INTAKE_PROTOCOL } from '../../src/coordinator/intake/index.ts';
import { beginCodec } from '../../src/coordinator/intake/wire.ts';
import { requestHeader } from '../../src/net/framing.ts';
import { BLOCKS_TOPIC_NAME, CREDITS_TOPIC_NAME } from '../../src/chain/topics.ts';

// ------------------------------------------------------------------------------ settings

const args = process.argv.slice(2);
const flag = (name: string, dflt: number): number => {
  const i = args.indexOf(`--${name}`);
  const v = i >= 0 ? Number(args[i + 1]) : dflt;
  if (!Number.isFinite(v) || v <= 0) {
    process.stderr.write(`soak: --${name}: expected a positive number, received ${args[i + 1]}\n`);
    process.exit(2);
  }
  return v;
};
const MINUTES = flag('minutes', 10);
const WORKERS = flag('workers', 3);
/** Rows per job (8 float32 each) and rows per unit: 40 units of 50 rows, 2 replicas. */
const ROWS = 2000;
const WIDTH = 8;
const UNIT_ROWS = 50;
const JOBS_IN_FLIGHT = 2;
const WORKER_KILL_EVERY_MS = 20_000;
const HOSTILE_EVERY_MS = 8_000;
/** RSS is compared from this long after a process starts (libraries, ORT and caches warm up). */
const WARMUP_MS = 30_000;
const RSS_EVERY_MS = 5_000;
/** Jobs still running when time is up get this long to finish. */
const DRAIN_MS = 180_000;

const t0 = Date.now();
const deadline = t0 + MINUTES * 60_000;
const log = (s: string): void => void process.stdout.write(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${s}\n`);

// ------------------------------------------------------------------------------ processes

interface Tracked {
  role: string;
  proc: Proc;
  started: number;
  /** RSS samples from the warm-up on: [ms since start, bytes]; the first is its start, the last its end. */
  samples: [number, number][];
  ended?: number;
}
const tracked: Tracked[] = [];
function track(role: string, proc: Proc): Tracked {
  const t: Tracked = { role, proc, started: Date.now(), samples: [] };
  tracked.push(t);
  void proc.exited.then(() => (t.ended = Date.now()));
  return t;
}
function rssOf(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}
const rssTimer = setInterval(() => {
  const now = Date.now();
  for (const t of tracked) {
    if (t.ended !== undefined) continue;
    const r = rssOf(t.proc.child.pid);
    if (r === undefined) continue;
    if (now - t.started >= WARMUP_MS) t.samples.push([now - t.started, r]);
  }
}, RSS_EVERY_MS);

async function kill(t: Tracked): Promise<void> {
  if (t.proc.child.exitCode === null) t.proc.child.kill('SIGKILL');
  await t.proc.exited;
}

// ------------------------------------------------------------------------------ the run

const tmp = await mkdtemp(join(tmpdir(), 'drill-soak-'));
const coordDir = join(tmp, 'coord');
const partnerDir = join(tmp, 'partner');

// The job: an Identity model over rows of 8 float32; row r of job j holds (r, j, 0..5).
const g = new GraphBuilder({ name: 'soak-identity', seed: 1 });
const x = g.input('x', 'float32', ['batch', WIDTH]);
g.output(g.op('Identity', [x]), 'float32', ['batch', WIDTH], 'y');
const model = join(tmp, 'id.onnx');
await writeFile(model, await g.toBytes());
function jobInput(seq: number): Float32Array {
  const d = new Float32Array(ROWS * WIDTH);
  for (let r = 0; r < ROWS; r++) {
    d[r * WIDTH] = r;
    d[r * WIDTH + 1] = seq;
    for (let c = 2; c < WIDTH; c++) d[r * WIDTH + c] = c;
  }
  return d;
}

const showId = drill(['submit', '--show-id', '--data-dir', partnerDir]);
await showId.exited;
const partner = showId.output().match(/^(12D3KooW\w+)$/m)![1]!;

let coord!: Tracked;
let coordAddr = '';
let port = '0';
async function startCoordinator(): Promise<void> {
  coord = track('coordinator', drill(['coordinator', '--listen', `/ip4/127.0.0.1/tcp/${port}`, '--data-dir', coordDir, '--allow-partner', partner], { DRILL_LOG: 'warn' }));
  const [, addr] = await coord.proc.waitFor(/listening: (\S+)/);
  coordAddr = addr!;
  port = /\/tcp\/(\d+)\//.exec(coordAddr)![1]!;
}
await startCoordinator();
log(`coordinator ${coordAddr}`);

const workers: Tracked[] = [];
async function startWorker(i: number): Promise<void> {
  const w = track(`worker ${i}`, drill(['worker', '--join', coordAddr, '--threads', '1', '--data-dir', join(tmp, `w${i}`), '--listen', '/ip4/127.0.0.1/tcp/0']));
  workers[i] = w;
  await w.proc.waitFor(/joined coordinator/);
}
await Promise.all(Array.from({ length: WORKERS }, (_, i) => startWorker(i)));
log(`${WORKERS} workers joined`);

// ---- jobs
let seq = 0;
let completed = 0;
let failedSubmits = 0;
let rowsLost = 0;
let dupRows = 0;
const lossNotes: string[] = [];
async function runJob(): Promise<void> {
  const n = seq++;
  const dir = join(tmp, `job${n}`);
  await mkdir(dir, { recursive: true });
  const input = jobInput(n);
  await writeFile(join(dir, 'x.npy'), encodeNpy({ dtype: 'float32', dims: [ROWS, WIDTH], data: input }));
  const p = drill(['submit', '--to', coordAddr, '--model', model, '--input', `x=${join(dir, 'x.npy')}`, '--out', join(dir, 'out'), '--unit-rows', String(UNIT_ROWS), '--replicas', '2', '--compare', 'exact', '--json', '--quiet', '--data-dir', partnerDir]);
  const code = await p.exited;
  const accepted = /job (job-\S+): \d+ rows/.exec(p.output());
  if (!accepted) {
    failedSubmits++; // refused or cut off before the coordinator took it: nothing was lost
    return;
  }
  if (code !== 0 || !existsSync(join(dir, 'out', 'y.npy'))) {
    rowsLost += ROWS;
    lossNotes.push(`job ${n} (${accepted[1]}): exit ${code}: ${p.output().split('\n').filter((l) => l.startsWith('drill')).join(' | ').slice(0, 300)}`);
    return;
  }
  const y = (await readNpy(join(dir, 'out', 'y.npy'))).data as Float32Array;
  for (let r = 0; r < ROWS; r++) {
    let same = true;
    for (let c = 0; c < WIDTH; c++) if (y[r * WIDTH + c] !== input[r * WIDTH + c]) same = false;
    if (same) continue;
    const other = y[r * WIDTH + 1] === n && y[r * WIDTH] !== r && Number.isInteger(y[r * WIDTH]) && y[r * WIDTH]! < ROWS;
    if (other) dupRows++;
    else rowsLost++;
  }
  completed++;
  await rm(dir, { recursive: true, force: true });
}
let submitting = true;
const jobLoops = Array.from({ length: JOBS_IN_FLIGHT }, async () => {
  while (submitting && Date.now() < deadline) await runJob();
});

// ---- worker restarts
let workerKills = 0;
const workerChaos = (async () => {
  let k = 0;
  while (Date.now() < deadline - 30_000) {
    await sleepUntil(Math.min(deadline, Date.now() + WORKER_KILL_EVERY_MS));
    if (WORKERS < 2 || Date.now() >= deadline - 30_000) break;
    const i = 1 + (k++ % (WORKERS - 1));
    await kill(workers[i]!);
    workerKills++;
    await sleepUntil(Date.now() + 2000);
    await startWorker(i).catch((e: unknown) => log(`worker ${i} restart failed: ${String(e)}`));
  }
})();

// ---- coordinator restarts at 1/6 and 1/3: the last coordinator then lives two thirds of the
// run, long enough for its memory trend to be judged (see the header)
let coordKills = 0;
const coordChaos = (async () => {
  for (const at of [1 / 6, 1 / 3]) {
    await sleepUntil(t0 + at * MINUTES * 60_000);
    await kill(coord);
    coordKills++;
    log('coordinator killed (SIGKILL); restarting on the same port and data dir');
    await startCoordinator();
  }
})();

// ---- hostile peers
const hostile = { rounds: 0, refusedIntake: 0, clampedLeases: 0, junkBanned: 0, lyingFrames: 0, errors: 0 };
const hostileChaos = (async () => {
  while (Date.now() < deadline - 10_000) {
    await sleepUntil(Math.min(deadline, Date.now() + HOSTILE_EVERY_MS));
    try {
      await hostileRound();
    } catch (e) {
      hostile.errors++; // e.g. the coordinator was restarting
      if (process.env.SOAK_DEBUG) log(`hostile round: ${String(e)}`);
    }
  }
})();

async function hostileRound(): Promise<void> {
  hostile.rounds++;
  const h = await createDrillNode();
  try {
    // An unknown partner uploads.
    const begin = beginCodec.encode({ files: [{ role: 'model', name: 'm', bytes: 1e8 }, { role: 'input', name: 'x', bytes: 1e8 }] });
    const e = await h.request(coordAddr, INTAKE_PROTOCOL.begin, begin).catch((x: unknown) => x);
    if (isDrillError(e) && e.meta.remoteCode === 'PARTNER_REFUSED') hostile.refusedIntake++;
    // A hello claiming 1,024 threads, then claims it never commits.
    await h.request(coordAddr, PROTOCOL.hello, helloCodec.encode({ threads: 1024, device: 'cpu', score: 1e9, profile: 'hostile' }));
    for (let i = 0; i < 300; i++) {
      const r = decodeClaimReply(await h.request(coordAddr, PROTOCOL.claim, claimCodec.encode({}), { maxResponseBytes: 64 * 1024 * 1024 }));
      if (!r.ok) break;
      hostile.clampedLeases++;
    }
    // A frame that announces 1 MiB and sends 10 bytes.
    const s = await h.libp2p.dialProtocol(h.libp2p.getConnections()[0]!.remotePeer, PROTOCOL.hello);
    s.send(requestHeader(1024 * 1024));
    s.send(new Uint8Array(10));
    hostile.lyingFrames++;
    // Junk on every topic: graylisted, disconnected, banned.
    for (const t of [UNITS_TOPIC.name, CREDITS_TOPIC_NAME, BLOCKS_TOPIC_NAME]) h.libp2p.services.pubsub.subscribe(t);
    const victim = h.libp2p.getConnections()[0]!.remotePeer;
    const gone = new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), 8000);
      h.libp2p.addEventListener('peer:disconnect', (ev) => {
        if (ev.detail.equals(victim)) {
          clearTimeout(t);
          resolve(true);
        }
      });
    });
    // Wait until the coordinator's subscriptions are known (no event exists for it; poll briefly).
    for (let i = 0; i < 100 && !h.libp2p.services.pubsub.getSubscribers(BLOCKS_TOPIC_NAME).some((p) => p.equals(victim)); i++) await sleepUntil(Date.now() + 30);
    for (const t of [UNITS_TOPIC.name, CREDITS_TOPIC_NAME, BLOCKS_TOPIC_NAME]) for (let i = 0; i < 3; i++) await h.libp2p.services.pubsub.publish(t, new TextEncoder().encode(`junk ${i} ${Math.random()}`)).catch(() => undefined);
    if (await gone) hostile.junkBanned++;
    s.abort(new Error('bye'));
  } finally {
    await h.stop();
  }
}

function sleepUntil(t: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, t - Date.now())));
}

const progress = setInterval(() => log(`jobs completed ${completed}, rows lost ${rowsLost}, duplicate rows ${dupRows}, worker kills ${workerKills}, coordinator kills ${coordKills}, hostile rounds ${hostile.rounds}`), 60_000);

await Promise.all([workerChaos, coordChaos, hostileChaos]);
submitting = false;
log('time is up: no new jobs; waiting for the jobs in flight');
await Promise.race([Promise.all(jobLoops), sleepUntil(Date.now() + DRAIN_MS)]);
clearInterval(progress);

// Duplicates in the store: a unit credited twice.
let dupCredits = 0;
try {
  const db = new DatabaseSync(join(coordDir, 'coordinator.sqlite'), { readOnly: true });
  dupCredits = (db.prepare('SELECT COUNT(*) AS n FROM (SELECT job, unit FROM credits GROUP BY job, unit HAVING COUNT(*) > 1)').get() as { n: number }).n;
  db.close();
} catch (e) {
  log(`cannot read the coordinator store: ${String(e)}`);
}

clearInterval(rssTimer);
const ends = new Map<Tracked, number | undefined>();
for (const t of tracked) {
  const last = t.samples.at(-1)?.[1];
  ends.set(t, t.ended === undefined ? rssOf(t.proc.child.pid) ?? last : last);
}
for (const t of tracked) await kill(t);

// ------------------------------------------------------------------------------ report

const mb = (b: number | undefined): string => (b === undefined ? '—' : `${(b / 1024 / 1024).toFixed(0)} MB`);
const rows: string[] = [];
let rssOk = true;
for (const t of tracked) {
  if (t.role.startsWith('worker') || t.role === 'coordinator') {
    const end = ends.get(t);
    const life = ((t.ended ?? Date.now()) - t.started) / 1000;
    const start = t.samples[0]?.[1];
    const change = start && end ? (end - start) / start : undefined;
    const peak = t.samples.reduce((m, [, r]) => Math.max(m, r), 0) || undefined;
    // The trend: from half-way through the process's life after the warm-up to its end.
    const halfAt = (WARMUP_MS + life * 1000) / 2;
    const half = t.samples.find(([at]) => at >= halfAt)?.[1];
    const trend = half && end ? (end - half) / half : undefined;
    // Only processes that lived past the warm-up and four minutes more are past the step to their plateau.
    const judged = trend !== undefined && life >= WARMUP_MS / 1000 + 240;
    if (judged && trend! > 0.1) rssOk = false;
    const pct = (x: number | undefined): string => (x === undefined ? '—' : `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %`);
    rows.push(`  ${t.role.padEnd(12)} pid ${String(t.proc.child.pid).padEnd(8)} lived ${life.toFixed(0).padStart(4)} s  RSS start ${mb(start).padStart(7)}  peak ${mb(peak).padStart(7)}  end ${mb(end).padStart(7)}  ${pct(change).padStart(8)}; second half ${mb(half).padStart(7)} → end ${pct(trend)}${judged ? '' : ' (short-lived: not judged)'}`);
  }
}
const ok = rowsLost === 0 && dupRows === 0 && dupCredits === 0 && rssOk && completed > 0;
process.stdout.write(`
soak: ${MINUTES} min, ${WORKERS} workers, ${JOBS_IN_FLIGHT} jobs in flight (${ROWS} rows, ${ROWS / UNIT_ROWS} units × 2 replicas each)
  jobs completed:     ${completed}   (submits refused or cut off before acceptance, retried: ${failedSubmits})
  rows lost:          ${rowsLost}
  duplicates:         ${dupRows + dupCredits}   (output rows holding another row: ${dupRows}; units credited twice: ${dupCredits})
  restarts:           ${workerKills} worker SIGKILLs, ${coordKills} coordinator SIGKILLs
  hostile rounds:     ${hostile.rounds}: intake refused ${hostile.refusedIntake}, leases taken by a 1,024-thread hello ${hostile.clampedLeases} (≤ 128 a round), banned for junk gossip ${hostile.junkBanned}, lying frames ${hostile.lyingFrames}, rounds cut short ${hostile.errors}
  RSS per process (start = ${WARMUP_MS / 1000} s after start; judged on the second half of its life: flat means within +10 %):
${rows.join('\n')}
${lossNotes.length ? `  lost jobs:\n${lossNotes.map((l) => `    ${l}`).join('\n')}\n` : ''}soak: ${ok ? 'OK' : 'FAILED'}
`);
await rm(tmp, { recursive: true, force: true });
process.exit(ok ? 0 : 1);
