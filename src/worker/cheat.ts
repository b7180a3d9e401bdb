/**
 * DEMO AND TEST ONLY: how a cheating worker answers, so a report (and the adversarial tests)
 * can show Proof of Drilling catching it. A worker never says it cheats: the embedded grid
 * knows which workers it started as cheaters; a separate-process test starts a worker with the
 * hidden `drill worker --cheat MODE` flag.
 *
 *  - corrupt  every value visibly wrong, deterministically — so all `corrupt` cheaters return
 *             the SAME wrong answer and agree with each other, like colluders that never talked;
 *  - noise    the true result plus noise of its own, so each cheater disagrees with everyone;
 *  - lazy     zeros of the right shapes, without running the model (lazy cheaters agree);
 *  - error    report an error for every unit (error cheaters agree: the same message);
 *  - stale    replay an earlier result of the same job (a unit with the same row count),
 *             computing only when it has none to replay.
 */
import { randomBytes } from 'node:crypto';
import { UserError } from '../util/errors.ts';
import type { HostTensor, TensorData } from '../util/tensor.ts';

export const CHEAT_MODES = ['corrupt', 'noise', 'lazy', 'error', 'stale'] as const;
export type CheatMode = (typeof CHEAT_MODES)[number];

export function isCheatMode(s: string): s is CheatMode {
  return (CHEAT_MODES as readonly string[]).includes(s);
}

/** Parse a cheat mode as given on the command line. @throws UserError naming `field`. */
export function parseCheatMode(s: string, field = '--cheat'): CheatMode {
  if (!isCheatMode(s)) throw new UserError(field, `one of ${CHEAT_MODES.join(', ')}`, s);
  return s;
}

/** The message every `error` cheater reports (identical, so they agree with each other). */
export const CHEAT_ERROR_MESSAGE = 'inference failed: the model could not be run on this device';

type Result = Record<string, HostTensor>;

function mapData(t: HostTensor, f: { float: (x: number) => number; int: (x: number, bits: number, signed: boolean) => number; big: (x: bigint) => bigint }): TensorData {
  const d = t.data as unknown;
  if (d instanceof Float32Array || d instanceof Float64Array) return d.map(f.float) as TensorData;
  if (d instanceof BigInt64Array || d instanceof BigUint64Array) return (d as BigInt64Array).map(f.big) as TensorData;
  if (t.dtype === 'bool') return (d as Uint8Array).map((x) => x ^ 1) as TensorData;
  if ((t.dtype as string) === 'float16') return (d as Uint16Array).map((x) => x ^ 0x8000) as unknown as TensorData; // negated halves
  const a = d as Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array;
  const bits = a.BYTES_PER_ELEMENT * 8;
  const signed = a instanceof Int8Array || a instanceof Int16Array || a instanceof Int32Array;
  return (a as Int32Array).map((x) => f.int(x, bits, signed)) as unknown as TensorData;
}

/**
 * Every value visibly wrong and the order of values reversed (floats x → 1 − x/2, signed
 * integers x → −1 − x, unsigned x → max − x, bool flipped, halves negated), same shapes — the
 * kind of result a worker that skipped the compute would invent. Reversing the order matters:
 * an order-preserving change keeps every argmax, so under an `argmax` policy such a cheater
 * would agree with honest workers and be credited.
 */
export function corrupt(outputs: Result): Result {
  const out: Result = {};
  for (const [k, t] of Object.entries(outputs)) {
    out[k] = { ...t, data: mapData(t, { float: (x) => 1 - x * 0.5, int: (x, bits, signed) => (signed ? -1 - x : 2 ** bits - 1 - x), big: (x) => 1n - x }) };
  }
  return out;
}

/** The result plus noise drawn afresh (floats ±[0.5, 1.5) relative-or-absolute; integers ±1..3). */
export function addNoise(outputs: Result): Result {
  const seed = randomBytes(4).readUInt32LE(0);
  let st = seed || 1;
  const rnd = (): number => {
    st ^= st << 13;
    st ^= st >>> 17;
    st ^= st << 5;
    return (st >>> 0) / 2 ** 32;
  };
  const sign = (): number => (rnd() < 0.5 ? -1 : 1);
  const out: Result = {};
  for (const [k, t] of Object.entries(outputs)) {
    out[k] = {
      ...t,
      data: mapData(t, {
        float: (x) => x + sign() * (0.5 + rnd()) * Math.max(1, Math.abs(x)),
        int: (x) => x + sign() * (1 + Math.floor(rnd() * 3)),
        big: (x) => x + BigInt(sign() * (1 + Math.floor(rnd() * 3))),
      }),
    };
  }
  return out;
}

/** Zeros with the shapes and dtypes of `outputs`. */
export function zeros(outputs: Result): Result {
  const out: Result = {};
  for (const [k, t] of Object.entries(outputs)) {
    const Ctor = t.data.constructor as new (n: number) => TensorData;
    out[k] = { ...t, data: new Ctor(t.data.length) };
  }
  return out;
}

/** Remembers results per job for `stale` cheaters (a few per job, by row count). */
export class StaleCache {
  readonly #byJob = new Map<string, Map<number, Result>>();
  /** A result of `job` with `rows` rows to replay, if one was kept. */
  get(job: string, rows: number): Result | undefined {
    return this.#byJob.get(job)?.get(rows);
  }
  put(job: string, rows: number, r: Result): void {
    let m = this.#byJob.get(job);
    if (!m) {
      if (this.#byJob.size >= 8) this.#byJob.delete(this.#byJob.keys().next().value!);
      this.#byJob.set(job, (m = new Map()));
    }
    if (!m.has(rows)) m.set(rows, r);
  }
}
