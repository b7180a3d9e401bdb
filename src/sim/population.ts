/**
 * The simulated trainer population, built from a scenario and an RNG (pure).
 *
 * Stored as parallel typed arrays (struct of arrays): 100,000 trainers take a few MB and the
 * hot loops touch only the arrays they need. A *machine* is a physical device with a hashrate;
 * a *trainer* is an identity in PoD and in the lottery. Every machine is one trainer except a
 * Sybil machine, which appears as `identities` trainers sharing its hashrate equally (and its
 * hardware class). `owner[i]` names trainer i's machine so results can be regrouped.
 *
 * Behaviours are given to machines chosen by a seeded shuffle, so behaviour is independent of
 * hashrate (a cheater is as likely to be large as small).
 */
import type { Rng } from './rng.ts';
import type { BehaviourKind, HashrateDist, Scenario } from './scenario.ts';

/** Behaviour codes in the `kind` array. */
export const KIND = { honest: 0, lazy: 1, cheater: 2, colluder: 3, flaky: 4, sybil: 5 } as const satisfies Record<BehaviourKind, number>;
export const KIND_NAMES: readonly BehaviourKind[] = ['honest', 'lazy', 'cheater', 'colluder', 'flaky', 'sybil'];

/** Behaviours that return falsified results (their credit is "cheater credit"). */
export function isDishonest(kind: number): boolean {
  return kind === KIND.lazy || kind === KIND.cheater || kind === KIND.colluder;
}

export interface Population {
  /** Number of trainers (identities). */
  n: number;
  /** Number of machines. */
  machines: number;
  hashrate: Float64Array;
  kind: Uint8Array;
  /** cheatRate (lazy: 1, cheater, colluder) or missRate (flaky); 0 otherwise. */
  rate: Float64Array;
  /** Colluder group, −1 for non-colluders. */
  group: Int32Array;
  /** Hardware class index. */
  hw: Uint8Array;
  /** Machine index of each trainer. */
  owner: Int32Array;
}

/** One draw from the hashrate distribution; `i` indexes `fixed` lists (recycled). */
export function drawHashrate(d: HashrateDist, rng: Rng, i: number): number {
  switch (d.dist) {
    case 'constant':
      return d.value;
    case 'uniform':
      return d.min + (d.max - d.min) * rng.next();
    case 'lognormal':
      return Math.exp(d.mu + d.sigma * rng.normal());
    case 'pareto':
      return d.min * Math.pow(rng.nextOpen(), -1 / d.alpha);
    case 'fixed':
      return d.values[i % d.values.length]!;
  }
}

/** Build the population. Deterministic in (scenario, rng state). */
export function buildPopulation(s: Scenario, rng: Rng): Population {
  const M = s.trainers;
  const mHash = new Float64Array(M);
  for (let i = 0; i < M; i++) mHash[i] = drawHashrate(s.hashrate, rng, i);
  const mKind = new Uint8Array(M);
  const mRate = new Float64Array(M);
  const mGroup = new Int32Array(M).fill(-1);
  const mIdent = new Int32Array(M).fill(1);
  const order = rng.shuffle(Int32Array.from({ length: M }, (_, i) => i));
  let next = 0;

  // Sybil machines first: a Sybil set with hashrateShare gets exactly that share of all hashrate.
  const sybilShares: Array<{ m: number; share: number }> = [];
  for (const b of s.behaviours) {
    if (b.kind !== 'sybil') continue;
    for (let j = 0; j < b.count; j++) {
      const m = order[next++]!;
      mKind[m] = KIND.sybil;
      mIdent[m] = b.identities;
      if (b.hashrateShare !== undefined) sybilShares.push({ m, share: b.hashrateShare });
    }
  }
  if (sybilShares.length) {
    let rest = 0;
    const fixed = new Set(sybilShares.map((x) => x.m));
    for (let i = 0; i < M; i++) if (!fixed.has(i)) rest += mHash[i]!;
    const S = sybilShares.reduce((a, x) => a + x.share, 0);
    for (const { m, share } of sybilShares) mHash[m] = (share * rest) / (1 - S);
  }
  for (const b of s.behaviours) {
    if (b.kind === 'sybil') continue;
    const count = Math.round(b.fraction * M);
    for (let j = 0; j < count && next < M; j++) {
      const m = order[next++]!;
      mKind[m] = KIND[b.kind];
      if (b.kind === 'cheater' || b.kind === 'colluder') mRate[m] = b.cheatRate;
      if (b.kind === 'lazy') mRate[m] = 1;
      if (b.kind === 'flaky') mRate[m] = b.missRate;
      if (b.kind === 'colluder') mGroup[m] = j % b.groups;
    }
  }

  // Hardware classes by share, one per machine (Sybil identities share their machine's).
  const shares = s.hardware.map((h) => h.share);
  const totalShare = shares.reduce((a, b) => a + b, 0);
  const mHw = new Uint8Array(M);
  for (let i = 0; i < M; i++) {
    let u = rng.next() * totalShare;
    let k = 0;
    while (k < shares.length - 1 && u >= shares[k]!) u -= shares[k++]!;
    mHw[i] = k;
  }

  let n = 0;
  for (let i = 0; i < M; i++) n += mIdent[i]!;
  const p: Population = {
    n,
    machines: M,
    hashrate: new Float64Array(n),
    kind: new Uint8Array(n),
    rate: new Float64Array(n),
    group: new Int32Array(n),
    hw: new Uint8Array(n),
    owner: new Int32Array(n),
  };
  let t = 0;
  for (let m = 0; m < M; m++) {
    const k = mIdent[m]!;
    for (let j = 0; j < k; j++, t++) {
      p.hashrate[t] = mHash[m]! / k;
      p.kind[t] = mKind[m]!;
      p.rate[t] = mRate[m]!;
      p.group[t] = mGroup[m]!;
      p.hw[t] = mHw[m]!;
      p.owner[t] = m;
    }
  }
  return p;
}
