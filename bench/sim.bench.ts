/**
 * Simulator benchmark (`npm run bench:sim`): the issue's 100,000-trainer × 100,000-slot
 * scenario with PoD rounds, with elapsed time and memory at slot checkpoints, then the
 * baselines measured in the same run, reported as ratios:
 *  - fast lottery vs a naive per-trainer Bernoulli loop over every trainer (the obvious method);
 *  - fast lottery vs real ECVRF (one proof per trainer per slot), extrapolated from a few proofs;
 *  - fast lottery per slot at 1,000 vs 100,000 trainers (trainers that cannot win cost nothing).
 *
 * Flags: --trainers N --slots S (defaults 100000 100000), --quick (10,000 × 10,000).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { resolveScenario } from '../src/sim/scenario.ts';
import { runSimulation } from '../src/sim/engine.ts';
import { summarize } from '../src/sim/report.ts';
import { drawWinnersFast, loadEcvrf, lotteryLambda, simVrfKey } from '../src/sim/lottery.ts';
import { FenwickSampler } from '../src/sim/sampling.ts';
import { Rng } from '../src/sim/rng.ts';
import { winProbability, lotteryAlpha } from '../src/vrf/lottery.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void; // a full GC before each memory reading

const argv = process.argv.slice(2);
const arg = (name: string, dflt: number): number => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const quick = argv.includes('--quick');
const TRAINERS = arg('trainers', quick ? 10_000 : 100_000);
const SLOTS = arg('slots', quick ? 10_000 : 100_000);
const mb = (b: number): string => (b / 2 ** 20).toFixed(1);
const line = (s: string): void => void process.stdout.write(s + '\n');

line(`# drill sim benchmark — node ${process.version}, ${new Date().toISOString()}`);
line(`## main: ${TRAINERS} trainers × ${SLOTS} slots, PoD replicate R = 3, 4 units/slot, 5% cheaters, 2% lazy, 5% flaky, fast lottery`);
const scenario = resolveScenario({
  name: 'bench', seed: 1, trainers: TRAINERS, slots: SLOTS,
  behaviours: [{ kind: 'cheater', fraction: 0.05, cheatRate: 0.2 }, { kind: 'lazy', fraction: 0.02 }, { kind: 'flaky', fraction: 0.05, missRate: 0.2 }],
});
gc();
const heap0 = process.memoryUsage().heapUsed;
const t0 = performance.now();
const checkpoints: Array<{ slots: number; s: number; heapMB: number }> = [];
line('slots      elapsed_s  heapUsed_MB  arrayBuffers_MB  rss_MB');
const run = runSimulation(scenario, {
  progressEvery: SLOTS / 4,
  onProgress: (k) => {
    const s = (performance.now() - t0) / 1000;
    gc();
    const m = process.memoryUsage();
    checkpoints.push({ slots: k, s, heapMB: m.heapUsed / 2 ** 20 });
    line(`${String(k).padEnd(10)} ${s.toFixed(2).padEnd(10)} ${mb(m.heapUsed).padEnd(12)} ${mb(m.arrayBuffers).padEnd(16)} ${mb(m.rss)}`);
  },
});
const total = (performance.now() - t0) / 1000;
const sum = summarize(run);
line(`total ${total.toFixed(2)} s (${(SLOTS / total).toFixed(0)} slots/s, ${(sum.pod!.executions / total).toFixed(0)} PoD executions/s); heap before run ${mb(heap0)} MB`);
const first = checkpoints[0]!;
const last = checkpoints[checkpoints.length - 1]!;
line(`memory: heapUsed ${first.heapMB.toFixed(1)} MB at ${first.slots} slots → ${last.heapMB.toFixed(1)} MB at ${last.slots} slots (ratio ${(last.heapMB / first.heapMB).toFixed(2)}) — flat in slots`);
line(`result: noLeaderRate ${sum.noLeaderRate.toFixed(4)} (1 − c = 0.75), pearson ${sum.fairness.pearson.toFixed(3)}, chi2p ${sum.fairness.chi2p.toFixed(3)}, detection ${sum.pod!.detectionRate}, overhead ${sum.pod!.verificationOverhead.toFixed(3)}`);
line(`under 60 s: ${total < 60 ? 'yes' : 'NO'}`);

// ---- baselines: the lottery on the run's final weights --------------------------------------
line('');
line('## lottery per slot (same run, same weights), ops = slots');
const n = run.population.n;
const fen = new FenwickSampler(n);
const w = run.trainers.finalWeight;
let W = 0;
for (let i = 0; i < n; i++) {
  fen.set(i, w[i]!);
  W += w[i]!;
}
const c = scenario.lottery.c;
const lambda = lotteryLambda(c);
const rng = new Rng(9);
const out: number[] = [];

function timeIt(label: string, iters: number, f: () => void): number {
  const t = performance.now();
  for (let k = 0; k < iters; k++) f();
  const perSec = iters / ((performance.now() - t) / 1000);
  line(`${label.padEnd(58)} ${perSec.toExponential(3)} slots/s`);
  return perSec;
}
let sink = 0;
const fast = timeIt(`fast (Poisson split + Fenwick), n = ${n}`, 1_000_000, () => (sink += drawWinnersFast(fen, lambda, rng, out).length));
const naiveSlots = Math.max(20, Math.round(2e7 / n));
const naive = timeIt(`naive Bernoulli per trainer (winProbability), n = ${n}`, naiveSlots, () => {
  for (let i = 0; i < n; i++) if (w[i]! > 0 && rng.next() < winProbability(c, w[i]!, W)) sink++;
});
const small = new FenwickSampler(1000);
for (let i = 0; i < 1000; i++) small.set(i, w[i]! + 1);
const fastSmall = timeIt('fast (Poisson split + Fenwick), n = 1000', 1_000_000, () => (sink += drawWinnersFast(small, lambda, rng, out).length));
const alpha = lotteryAlpha(new Uint8Array(32), 1);
const PROOFS = 30;
const vrf = await loadEcvrf();
const tp = performance.now();
for (let i = 0; i < PROOFS; i++) sink += vrf.proofToHash('tai', vrf.prove('tai', simVrfKey(1, i), alpha))[0]!;
const proofsPerSec = PROOFS / ((performance.now() - tp) / 1000);
const ecvrf = proofsPerSec / n;
line(`${`real ECVRF (${proofsPerSec.toFixed(0)} proofs/s ÷ ${n} trainers), extrapolated`.padEnd(58)} ${ecvrf.toExponential(3)} slots/s`);
line('');
line(`ratio fast / naive per-trainer loop:   ${(fast / naive).toExponential(2)}×`);
line(`ratio fast / real ECVRF:               ${(fast / ecvrf).toExponential(2)}×`);
line(`ratio fast at n=1000 / at n=${n}:     ${(fastSmall / fast).toFixed(2)}× (O(log n): trainers that cannot win cost nothing)`);
if (sink === -1) line('');
