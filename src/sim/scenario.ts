/**
 * Simulation scenarios: what a researcher writes in a JSON/YAML file, its defaults, its
 * validation (UserError naming the field), and the CLI overrides (`--trainers`, `--c`, ...).
 *
 * A scenario describes the trainer population (hashrate distribution, behaviours, hardware
 * classes), the PoD policy (replication or spot-check sampling with reputation) and the
 * lottery (c, epoch length, lookback, fast or ECVRF mode). Everything not given takes the
 * default below, and `resolveScenario` returns the complete, checked object that is echoed in
 * the JSON output, so a run can always be repeated from its output alone.
 */
import { UserError } from '../util/errors.ts';
import { DEFAULT_POLICY, parsePolicy } from '../pod/policy.ts';
import { DEFAULT_C } from '../vrf/lottery.ts';

/** Hashrate distribution of the machines (arbitrary units, e.g. GFLOP/s). */
export type HashrateDist =
  | { dist: 'constant'; value: number }
  | { dist: 'uniform'; min: number; max: number }
  | { dist: 'lognormal'; mu: number; sigma: number }
  | { dist: 'pareto'; alpha: number; min: number }
  | { dist: 'fixed'; values: number[] };

/** What a group of trainers does. Fractions are of the machines (before Sybil splitting). */
export type Behaviour =
  /** Returns garbage for every unit without computing. */
  | { kind: 'lazy'; fraction: number }
  /** Falsifies each unit independently with probability cheatRate (off by O(1)). */
  | { kind: 'cheater'; fraction: number; cheatRate: number }
  /** `groups` groups; a group falsifies the same units (prob. cheatRate) with the SAME wrong answer. */
  | { kind: 'colluder'; fraction: number; groups: number; cheatRate: number }
  /** Honest, but misses a unit's deadline (and a won slot) with probability missRate. */
  | { kind: 'flaky'; fraction: number; missRate: number }
  /**
   * `count` machines (chosen at random, or one holding hashrateShare of all hashrate) each split
   * into `identities` honest trainers with an equal part of the machine's hashrate.
   */
  | { kind: 'sybil'; count: number; identities: number; hashrateShare?: number };

export type BehaviourKind = 'honest' | Behaviour['kind'];

/** A hardware class: its trainers round differently from other classes' (see noiseUlp). */
export interface HardwareClass {
  name: string;
  /** Share of trainers in this class (normalised over all classes). */
  share: number;
}

export interface PodScenario {
  /** 'replicate': every unit run by `replicas` trainers; 'spot-check': one trainer, re-run with probability sampleP. */
  mode: 'replicate' | 'spot-check';
  /** First-round replicas in replicate mode (≥ 1; 1 = accepted unverified, nobody credited). */
  replicas: number;
  /** Most results per unit before it fails (default 2R + 3 as in src/pod/quorum.ts; spot-check uses R = 2). */
  maxReplicas?: number;
  /** Comparison policy string, as in a job manifest. */
  policy: string;
  /** Spot-check probability p in [0, 1]. */
  sampleP: number;
  /** BOINC-style adaptive replication: trusted trainers are checked less often. */
  reputation: { enabled: boolean; trustAfter: number; minP: number };
  /**
   * A trainer found faulty loses credit: with quarantine, all its credit in the job (restored if
   * it is released); without, in spot-check mode, the unverified credit since its last passed check.
   */
  forfeit: boolean;
  /**
   * Per-job quarantine and re-verification, as the grid does (src/coordinator/scheduler.ts): a
   * trainer found faulty gets no more units of the job, and every unit of the job decided with it
   * is re-run without it. false = the older model (a faulty trainer is only listed faulty).
   */
  quarantine: boolean;
  /** Units per job: a job's units are issued one after another; quarantine lasts to the job's end. */
  jobUnits: number;
  /** Work units issued per slot. */
  unitsPerSlot: number;
  /** FLOPs credited per verified unit execution. */
  flops: number;
  /** float32 values per synthetic result tensor. */
  outputSize: number;
}

export interface LotteryScenario {
  /** 'fast': exact-in-distribution Poisson/Fenwick draw; 'ecvrf': real RFC 9381 proofs (small runs). */
  mode: 'fast' | 'ecvrf';
  suite: 'tai' | 'ell2';
  c: number;
  epochSlots: number;
  lookbackEpochs: number;
  /** Epochs of credit that count in a snapshot; 0 = all history (as src/chain does). */
  windowEpochs: number;
  /** A trainer quarantined during epoch e (and not released in it) has lottery weight 0 in epochs e + 1 … e + faultEpochs. */
  faultEpochs: number;
}

export interface Scenario {
  name: string;
  seed: number | string;
  /** Machines (Sybil identities are added on top). */
  trainers: number;
  /** Measured slots (after the warm-up epochs that fill the first snapshot). */
  slots: number;
  hashrate: HashrateDist;
  behaviours: Behaviour[];
  hardware: HardwareClass[];
  /** Honest rounding difference between hardware classes, in float32 ULPs (0 = bit-identical). */
  noiseUlp: number;
  pod: PodScenario;
  lottery: LotteryScenario;
}

/**
 * Defaults. Why these values:
 *  - 1,000 trainers × 10,000 slots runs in about a second and gives ~2,500 blocks, enough for
 *    the fairness statistics to be meaningful.
 *  - lognormal(0, 1): consumer GPUs to datacentre cards span about two orders of magnitude.
 *  - R = 3 and the default allclose policy are the grid's own defaults.
 *  - sampleP 0.1 with reputation floor 0.01: BOINC projects re-check roughly 1 in 10 results of
 *    new hosts and far fewer of long-trusted ones; trustAfter 10 is BOINC's consecutive-valid
 *    threshold for adaptive replication.
 *  - 4 units per slot: one PoD round per slot per core-ish; enough work that every trainer is
 *    credited within a few epochs at 1,000 trainers, cheap enough for 100,000 slots.
 *  - flops 1e9: one unit of a small MLP batch; only ratios matter for the results.
 *  - noiseUlp 64: CPU SIMD re-association differs by tens of ULPs — far inside allclose's
 *    ~8,000-ULP tolerance; set it above ~8,000 to see false penalties.
 *  - epochSlots 32 / lookback 1 / window 0 mirror src/chain/genesis.ts.
 *  - quarantine on, jobUnits 64: the grid quarantines per job; 64 units is a small batch job
 *    (a few thousand rows at the grid's default unit size), short enough that many jobs run
 *    in a default simulation, long enough that a trainer can be caught more than once in one.
 *  - faultEpochs 2: the chain forfeits a faulty worker's lottery weight for 2 epochs.
 */
export const DEFAULT_SCENARIO: Scenario = {
  name: 'default',
  seed: 1,
  trainers: 1000,
  slots: 10_000,
  hashrate: { dist: 'lognormal', mu: 0, sigma: 1 },
  behaviours: [],
  hardware: [
    { name: 'cpu', share: 0.6 },
    { name: 'gpu', share: 0.4 },
  ],
  noiseUlp: 64,
  pod: {
    mode: 'replicate',
    replicas: 3,
    policy: DEFAULT_POLICY,
    sampleP: 0.1,
    reputation: { enabled: false, trustAfter: 10, minP: 0.01 },
    forfeit: true,
    quarantine: true,
    jobUnits: 64,
    unitsPerSlot: 4,
    flops: 1e9,
    outputSize: 4,
  },
  lottery: { mode: 'fast', suite: 'tai', c: DEFAULT_C, epochSlots: 32, lookbackEpochs: 1, windowEpochs: 0, faultEpochs: 2 },
};

/** Flag overrides (all optional) from the CLI. */
export interface ScenarioOverrides {
  trainers?: number;
  slots?: number;
  c?: number;
  replicas?: number;
  sampleP?: number;
  cheaters?: number;
  cheatRate?: number;
  /** Share of the cheaters (`cheaters`, or the scenario's cheaters and colluders) that collude as one group. */
  colluders?: number;
  quarantine?: boolean;
  jobUnits?: number;
  faultEpochs?: number;
  noise?: number;
  seed?: number | string;
  lotteryMode?: 'fast' | 'ecvrf';
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function numberAt(o: Obj, key: string, path: string, dflt: number, min: number, max: number, integer = false): number {
  const v = o[key];
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    throw new UserError(`${path}.${key}`, `${integer ? 'an integer' : 'a number'} from ${min} to ${max}`, v);
  }
  return v;
}

function boolAt(o: Obj, key: string, path: string, dflt: boolean): boolean {
  const v = o[key];
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw new UserError(`${path}.${key}`, 'true or false', v);
  return v;
}

function oneOf<T extends string>(o: Obj, key: string, path: string, dflt: T, allowed: readonly T[]): T {
  const v = o[key];
  if (v === undefined) return dflt;
  if (typeof v !== 'string' || !allowed.includes(v as T)) throw new UserError(`${path}.${key}`, `one of ${allowed.join(', ')}`, v);
  return v as T;
}

function checkKeys(o: Obj, path: string, allowed: readonly string[]): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) throw new UserError(`${path}.${k}`, `one of the keys ${allowed.join(', ')}`, k, 'unknown key');
  }
}

const BIG = 1e300;
/** Largest population: typed arrays of this length stay well under 100 MB in all. */
export const MAX_TRAINERS = 5_000_000;
/** c = 1 − e^-30 is the largest c the Poisson draw of the fast mode handles (see rng.poisson). */
const MAX_FAST_LAMBDA = 30;

function parseHashrate(v: unknown): HashrateDist {
  if (v === undefined) return DEFAULT_SCENARIO.hashrate;
  const p = 'scenario.hashrate';
  if (!isObj(v)) throw new UserError(p, 'an object with dist: constant|uniform|lognormal|pareto|fixed', v);
  const dist = oneOf(v, 'dist', p, 'lognormal', ['constant', 'uniform', 'lognormal', 'pareto', 'fixed'] as const);
  switch (dist) {
    case 'constant':
      checkKeys(v, p, ['dist', 'value']);
      return { dist, value: numberAt(v, 'value', p, 1, Number.MIN_VALUE, BIG) };
    case 'uniform': {
      checkKeys(v, p, ['dist', 'min', 'max']);
      const min = numberAt(v, 'min', p, 1, Number.MIN_VALUE, BIG);
      const max = numberAt(v, 'max', p, 10, min, BIG);
      return { dist, min, max };
    }
    case 'lognormal':
      checkKeys(v, p, ['dist', 'mu', 'sigma']);
      return { dist, mu: numberAt(v, 'mu', p, 0, -50, 50), sigma: numberAt(v, 'sigma', p, 1, 0, 10) };
    case 'pareto':
      checkKeys(v, p, ['dist', 'alpha', 'min']);
      return { dist, alpha: numberAt(v, 'alpha', p, 1.5, 0.1, 100), min: numberAt(v, 'min', p, 1, Number.MIN_VALUE, BIG) };
    case 'fixed': {
      checkKeys(v, p, ['dist', 'values']);
      const vals = v.values;
      if (!Array.isArray(vals) || vals.length === 0 || !vals.every((x) => typeof x === 'number' && Number.isFinite(x) && x > 0)) {
        throw new UserError(`${p}.values`, 'a non-empty array of positive numbers (one per trainer, recycled)', vals);
      }
      return { dist, values: vals as number[] };
    }
  }
}

function parseBehaviour(v: unknown, i: number): Behaviour {
  const p = `scenario.behaviours[${i}]`;
  if (!isObj(v)) throw new UserError(p, 'an object with kind: lazy|cheater|colluder|flaky|sybil', v);
  const kind = oneOf(v, 'kind', p, 'cheater', ['lazy', 'cheater', 'colluder', 'flaky', 'sybil'] as const);
  if (v.kind === undefined) throw new UserError(`${p}.kind`, 'one of lazy, cheater, colluder, flaky, sybil', undefined);
  const fraction = (): number => numberAt(v, 'fraction', p, 0, 0, 1);
  const rate = (): number => numberAt(v, 'cheatRate', p, 1, 0, 1);
  switch (kind) {
    case 'lazy':
      checkKeys(v, p, ['kind', 'fraction']);
      return { kind, fraction: fraction() };
    case 'cheater':
      checkKeys(v, p, ['kind', 'fraction', 'cheatRate']);
      return { kind, fraction: fraction(), cheatRate: rate() };
    case 'colluder':
      checkKeys(v, p, ['kind', 'fraction', 'groups', 'cheatRate']);
      return { kind, fraction: fraction(), groups: numberAt(v, 'groups', p, 1, 1, 1e6, true), cheatRate: rate() };
    case 'flaky':
      checkKeys(v, p, ['kind', 'fraction', 'missRate']);
      return { kind, fraction: fraction(), missRate: numberAt(v, 'missRate', p, 0.2, 0, 0.99) };
    case 'sybil': {
      checkKeys(v, p, ['kind', 'count', 'identities', 'hashrateShare']);
      const b: Behaviour = { kind, count: numberAt(v, 'count', p, 1, 0, MAX_TRAINERS, true), identities: numberAt(v, 'identities', p, 10, 1, 1e6, true) };
      if (v.hashrateShare !== undefined) b.hashrateShare = numberAt(v, 'hashrateShare', p, 0, 0, 0.99);
      return b;
    }
  }
}

/**
 * Check a parsed scenario file (any JSON/YAML value) and fill in defaults, then apply overrides.
 * @throws UserError naming the first bad field (`scenario.pod.replicas`, `--c`, ...).
 */
export function resolveScenario(raw: unknown, over: ScenarioOverrides = {}): Scenario {
  const root = raw === undefined || raw === null ? {} : raw;
  if (!isObj(root)) throw new UserError('scenario', 'an object', root);
  checkKeys(root, 'scenario', ['name', 'seed', 'trainers', 'slots', 'hashrate', 'behaviours', 'hardware', 'noiseUlp', 'pod', 'lottery', 'description']);
  const d = DEFAULT_SCENARIO;
  const P = 'scenario';
  const seedRaw = root.seed;
  if (seedRaw !== undefined && !(typeof seedRaw === 'string' || (typeof seedRaw === 'number' && Number.isSafeInteger(seedRaw)))) {
    throw new UserError('scenario.seed', 'an integer or a string', seedRaw);
  }
  const behavioursRaw = root.behaviours ?? [];
  if (!Array.isArray(behavioursRaw)) throw new UserError('scenario.behaviours', 'an array', behavioursRaw);
  const hwRaw = root.hardware ?? d.hardware;
  if (!Array.isArray(hwRaw) || hwRaw.length === 0 || hwRaw.length > 255) throw new UserError('scenario.hardware', 'an array of 1 to 255 classes', hwRaw);
  const hardware = hwRaw.map((h: unknown, i: number): HardwareClass => {
    const p = `scenario.hardware[${i}]`;
    if (!isObj(h)) throw new UserError(p, 'an object {name, share}', h);
    checkKeys(h, p, ['name', 'share']);
    if (typeof h.name !== 'string' || h.name === '') throw new UserError(`${p}.name`, 'a non-empty string', h.name);
    return { name: h.name, share: numberAt(h, 'share', p, 1, 0, BIG) };
  });
  if (!(hardware.reduce((a, h) => a + h.share, 0) > 0)) throw new UserError('scenario.hardware', 'shares with a positive sum', 0);

  const podRaw = root.pod ?? {};
  if (!isObj(podRaw)) throw new UserError('scenario.pod', 'an object', podRaw);
  checkKeys(podRaw, 'scenario.pod', ['mode', 'replicas', 'maxReplicas', 'policy', 'sampleP', 'reputation', 'forfeit', 'quarantine', 'jobUnits', 'unitsPerSlot', 'flops', 'outputSize']);
  const pp = 'scenario.pod';
  const repRaw = podRaw.reputation ?? {};
  if (!isObj(repRaw)) throw new UserError(`${pp}.reputation`, 'an object {enabled, trustAfter, minP}', repRaw);
  checkKeys(repRaw, `${pp}.reputation`, ['enabled', 'trustAfter', 'minP']);
  const policy = podRaw.policy ?? d.pod.policy;
  if (typeof policy !== 'string') throw new UserError(`${pp}.policy`, 'a policy string', policy);
  parsePolicy(policy, `${pp}.policy`);
  const pod: PodScenario = {
    mode: oneOf(podRaw, 'mode', pp, d.pod.mode, ['replicate', 'spot-check'] as const),
    replicas: numberAt(podRaw, 'replicas', pp, d.pod.replicas, 1, 64, true),
    policy,
    sampleP: numberAt(podRaw, 'sampleP', pp, d.pod.sampleP, 0, 1),
    reputation: {
      enabled: boolAt(repRaw, 'enabled', `${pp}.reputation`, d.pod.reputation.enabled),
      trustAfter: numberAt(repRaw, 'trustAfter', `${pp}.reputation`, d.pod.reputation.trustAfter, 0, 1e9, true),
      minP: numberAt(repRaw, 'minP', `${pp}.reputation`, d.pod.reputation.minP, 0, 1),
    },
    forfeit: boolAt(podRaw, 'forfeit', pp, d.pod.forfeit),
    quarantine: boolAt(podRaw, 'quarantine', pp, d.pod.quarantine),
    jobUnits: numberAt(podRaw, 'jobUnits', pp, d.pod.jobUnits, 1, 1e9, true),
    unitsPerSlot: numberAt(podRaw, 'unitsPerSlot', pp, d.pod.unitsPerSlot, 0, 1e6),
    flops: numberAt(podRaw, 'flops', pp, d.pod.flops, 1, 1e15, true),
    outputSize: numberAt(podRaw, 'outputSize', pp, d.pod.outputSize, 1, 4096, true),
  };
  if (podRaw.maxReplicas !== undefined) pod.maxReplicas = numberAt(podRaw, 'maxReplicas', pp, 0, 1, 256, true);

  const lotRaw = root.lottery ?? {};
  if (!isObj(lotRaw)) throw new UserError('scenario.lottery', 'an object', lotRaw);
  const lp = 'scenario.lottery';
  checkKeys(lotRaw, lp, ['mode', 'suite', 'c', 'epochSlots', 'lookbackEpochs', 'windowEpochs', 'faultEpochs']);
  const lottery: LotteryScenario = {
    mode: oneOf(lotRaw, 'mode', lp, d.lottery.mode, ['fast', 'ecvrf'] as const),
    suite: oneOf(lotRaw, 'suite', lp, d.lottery.suite, ['tai', 'ell2'] as const),
    c: numberAt(lotRaw, 'c', lp, d.lottery.c, Number.MIN_VALUE, 1),
    epochSlots: numberAt(lotRaw, 'epochSlots', lp, d.lottery.epochSlots, 1, 1e9, true),
    lookbackEpochs: numberAt(lotRaw, 'lookbackEpochs', lp, d.lottery.lookbackEpochs, 0, 1e6, true),
    windowEpochs: numberAt(lotRaw, 'windowEpochs', lp, d.lottery.windowEpochs, 0, 1e6, true),
    faultEpochs: numberAt(lotRaw, 'faultEpochs', lp, d.lottery.faultEpochs, 0, 1e6, true),
  };

  const s: Scenario = {
    name: typeof root.name === 'string' ? root.name : d.name,
    seed: (seedRaw as number | string | undefined) ?? d.seed,
    trainers: numberAt(root, 'trainers', P, d.trainers, 1, MAX_TRAINERS, true),
    slots: numberAt(root, 'slots', P, d.slots, 1, 1e9, true),
    hashrate: parseHashrate(root.hashrate),
    behaviours: behavioursRaw.map(parseBehaviour),
    hardware,
    noiseUlp: numberAt(root, 'noiseUlp', P, d.noiseUlp, 0, 1 << 22, true),
    pod,
    lottery,
  };
  applyOverrides(s, over);
  checkConsistency(s);
  return s;
}

function applyOverrides(s: Scenario, o: ScenarioOverrides): void {
  if (o.trainers !== undefined) s.trainers = o.trainers;
  if (o.slots !== undefined) s.slots = o.slots;
  if (o.c !== undefined) s.lottery.c = o.c;
  if (o.seed !== undefined) s.seed = o.seed;
  if (o.noise !== undefined) s.noiseUlp = o.noise;
  if (o.lotteryMode !== undefined) s.lottery.mode = o.lotteryMode;
  if (o.replicas !== undefined) {
    s.pod.replicas = o.replicas;
    if (o.sampleP === undefined) s.pod.mode = 'replicate';
  }
  if (o.sampleP !== undefined) {
    s.pod.sampleP = o.sampleP;
    s.pod.mode = 'spot-check';
  }
  if (o.quarantine !== undefined) s.pod.quarantine = o.quarantine;
  if (o.jobUnits !== undefined) s.pod.jobUnits = o.jobUnits;
  if (o.faultEpochs !== undefined) s.lottery.faultEpochs = o.faultEpochs;
  if (o.colluders !== undefined) {
    splitCheaters(s, o.colluders, o.cheaters, o.cheatRate);
  } else if (o.cheaters !== undefined || o.cheatRate !== undefined) {
    let b = s.behaviours.find((x): x is Extract<Behaviour, { kind: 'cheater' }> => x.kind === 'cheater');
    if (!b) s.behaviours.push((b = { kind: 'cheater', fraction: 0, cheatRate: 1 }));
    if (o.cheaters !== undefined) b.fraction = o.cheaters;
    if (o.cheatRate !== undefined) b.cheatRate = o.cheatRate;
  }
}

/**
 * Split the cheaters into colluders and independent random cheaters (`--colluders F`): a share
 * F of them form one colluding group (one shared wrong answer), the rest cheat independently.
 * The cheater share is `cheaters` if given, else the scenario's cheater and colluder fractions
 * together; the cheat rate is `cheatRate` if given, else the scenario's (cheater first, then
 * colluder; 1 if neither). Replaces the scenario's cheater and colluder behaviours (a
 * colluder behaviour keeps its group count). Modifies `s`.
 */
export function splitCheaters(s: Scenario, colluders: number, cheaters?: number, cheatRate?: number): void {
  const ch = s.behaviours.find((x): x is Extract<Behaviour, { kind: 'cheater' }> => x.kind === 'cheater');
  const co = s.behaviours.find((x): x is Extract<Behaviour, { kind: 'colluder' }> => x.kind === 'colluder');
  const total = cheaters ?? (ch?.fraction ?? 0) + (co?.fraction ?? 0);
  const rate = cheatRate ?? ch?.cheatRate ?? co?.cheatRate ?? 1;
  const rest = s.behaviours.filter((x) => x.kind !== 'cheater' && x.kind !== 'colluder');
  const out: Behaviour[] = [];
  if (total * (1 - colluders) > 0) out.push({ kind: 'cheater', fraction: total * (1 - colluders), cheatRate: rate });
  if (total * colluders > 0) out.push({ kind: 'colluder', fraction: total * colluders, groups: co?.groups ?? 1, cheatRate: rate });
  s.behaviours = [...out, ...rest];
}

function checkConsistency(s: Scenario): void {
  const frac = s.behaviours.reduce((a, b) => a + (b.kind === 'sybil' ? 0 : b.fraction), 0);
  if (frac > 1 + 1e-12) throw new UserError('scenario.behaviours', 'fractions (lazy, cheater, colluder, flaky) summing to at most 1', frac);
  const sybils = s.behaviours.reduce((a, b) => a + (b.kind === 'sybil' ? b.count : 0), 0);
  if (sybils + Math.round(frac * s.trainers) > s.trainers) throw new UserError('scenario.behaviours', `at most ${s.trainers} machines in behaviours and Sybil sets together`, sybils + Math.round(frac * s.trainers));
  const share = s.behaviours.reduce((a, b) => a + (b.kind === 'sybil' ? (b.hashrateShare ?? 0) * b.count : 0), 0);
  if (share >= 1) throw new UserError('scenario.behaviours', 'Sybil hashrateShare × count summing to less than 1', share);
  if (s.lottery.mode === 'fast' && -Math.log1p(-s.lottery.c) > MAX_FAST_LAMBDA && s.lottery.c !== 1) {
    throw new UserError('scenario.lottery.c', 'c ≤ 1 − e^-30 or exactly 1 in fast mode', s.lottery.c);
  }
  if (s.lottery.mode === 'ecvrf' && s.trainers > 10_000) {
    throw new UserError('scenario.lottery.mode', 'fast for more than 10,000 trainers (ecvrf proves once per trainer per slot)', s.lottery.mode);
  }
}
