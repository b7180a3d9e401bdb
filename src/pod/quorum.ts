/**
 * The outcome of a work unit under Proof of Drilling (pure).
 *
 * A unit is first run by R distinct workers (a "round").
 *  - all R results agree under the policy → `agreed`: every replica is credited the unit's FLOPs.
 *  - any disagreement → nobody is credited for that round; the unit needs more replicas
 *    (`pending`, with `needMore`) until a STRICT majority of all results so far agrees →
 *    `resolved`: the majority is credited, the minority recorded as faulty.
 *  - no strict majority once `maxReplicas` results are in → `failed`: the job fails with
 *    "results do not agree: the model may be nondeterministic under this policy".
 * With R = 1 a unit is accepted unverified: its result is used but nobody is credited,
 * because PoD credit is for work another worker confirmed.
 *
 * Agreement classes are formed greedily in arrival order, each result joining the first
 * class whose representative (first member) it agrees with. `allclose` is not transitive,
 * so the representative rule makes the outcome a deterministic function of the arrival order.
 */
import type { Policy } from './policy.ts';
import { resultsAgree } from './policy.ts';
import type { HostTensor } from '../util/tensor.ts';

export interface ReplicaResult<R = Record<string, HostTensor>> {
  worker: string;
  result: R;
}

/** `unaudited` is the scheduler's: a spot-check unit accepted without an audit (decideUnit says `unverified`). */
export type UnitStatus = 'agreed' | 'resolved' | 'pending' | 'failed' | 'unverified' | 'unaudited';

export interface UnitOutcome {
  status: UnitStatus;
  /** Workers credited the unit's FLOPs (empty unless agreed/resolved). */
  credited: string[];
  /** Workers whose result disagreed with the majority (resolved only). */
  faulty: string[];
  /** Index into the results of the accepted result (agreed/resolved/unverified), else -1. */
  accepted: number;
  /** How many more replicas to run (pending only), else 0. */
  needMore: number;
  /** Sizes of the agreement classes, largest first — for reports. */
  classes: number[];
}

export interface QuorumOptions {
  /** Replicas of the first round (R ≥ 1). */
  replicas: number;
  /**
   * Most results ever collected for one unit before it fails. Default 2R + 3: after a split
   * R-vs-R round there is room for several more tie-breakers, bounding wasted work at about
   * three times the honest cost.
   */
  maxReplicas?: number;
}

export function defaultMaxReplicas(replicas: number): number {
  return 2 * replicas + 3;
}

/** Equality over results — the policy in the grid, a cheaper stand-in in the simulator. */
export type AgreeFn<R> = (a: R, b: R) => boolean;

export function policyAgree(p: Policy): AgreeFn<Record<string, HostTensor>> {
  return (a, b) => resultsAgree(p, a, b);
}

/**
 * Decide a unit from the results collected so far (in arrival order).
 * @throws RangeError on caller misuse (replicas < 1, duplicate workers).
 */
export function decideUnit<R>(results: ReadonlyArray<ReplicaResult<R>>, agree: AgreeFn<R>, opts: QuorumOptions): UnitOutcome {
  const R = opts.replicas;
  if (!Number.isInteger(R) || R < 1) throw new RangeError(`replicas must be an integer ≥ 1, got ${R}`);
  const max = opts.maxReplicas ?? defaultMaxReplicas(R);
  const seen = new Set<string>();
  for (const r of results) {
    if (seen.has(r.worker)) throw new RangeError(`worker ${r.worker} has two results for one unit`);
    seen.add(r.worker);
  }
  const n = results.length;
  if (n < R) return { status: 'pending', credited: [], faulty: [], accepted: -1, needMore: R - n, classes: [] };
  if (R === 1 && n === 1) return { status: 'unverified', credited: [], faulty: [], accepted: 0, needMore: 0, classes: [1] };

  // Greedy agreement classes against each class's first member.
  const classes: number[][] = [];
  for (let i = 0; i < n; i++) {
    const c = classes.find((cl) => agree(results[cl[0]!]!.result, results[i]!.result));
    if (c) c.push(i);
    else classes.push([i]);
  }
  classes.sort((a, b) => b.length - a.length || a[0]! - b[0]!);
  const sizes = classes.map((c) => c.length);
  const top = classes[0]!;

  if (classes.length === 1 && n === R) {
    return { status: 'agreed', credited: results.map((r) => r.worker), faulty: [], accepted: top[0]!, needMore: 0, classes: sizes };
  }
  if (n > R && top.length * 2 > n) {
    const members = new Set(top);
    return {
      status: 'resolved',
      credited: top.map((i) => results[i]!.worker),
      faulty: results.filter((_, i) => !members.has(i)).map((r) => r.worker),
      accepted: top[0]!,
      needMore: 0,
      classes: sizes,
    };
  }
  // The smallest number of extra results that could give `top` a strict majority.
  const needMore = Math.max(1, n - 2 * top.length + 1);
  if (n + needMore > max) return { status: 'failed', credited: [], faulty: [], accepted: -1, needMore: 0, classes: sizes };
  return { status: 'pending', credited: [], faulty: [], accepted: -1, needMore, classes: sizes };
}
