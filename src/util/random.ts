/**
 * Random numbers for the coordinator's draws (replica sets, audit coins): unpredictable by
 * default (the OS CSPRNG, so no worker can foresee who it will be paired with or whether it
 * will be audited), or reproducible from a seed for tests and experiments.
 */
import { createHash, randomFillSync } from 'node:crypto';

/** Uniform numbers in [0, 1). */
export type RandomSource = () => number;

const TWO_53 = 2 ** 53;

function toUnit(hi: number, lo: number): number {
  // 53 random bits: 21 from hi, 32 from lo.
  return ((hi >>> 11) * 2 ** 32 + lo) / TWO_53;
}

/** Uniform numbers from the OS CSPRNG (buffered 512 at a time). */
export function cryptoRandom(): RandomSource {
  const buf = new Uint32Array(1024);
  let i = buf.length;
  return () => {
    if (i >= buf.length) {
      randomFillSync(buf);
      i = 0;
    }
    const hi = buf[i++]!;
    const lo = buf[i++]!;
    return toUnit(hi, lo);
  };
}

/**
 * A reproducible stream from `seed`: SHA-256 in counter mode (seed ‖ counter), 4 numbers per
 * hash. Same seed, same numbers, on every platform.
 */
export function seededRandom(seed: string): RandomSource {
  let counter = 0;
  let words: Uint32Array = new Uint32Array(0);
  let i = 0;
  return () => {
    if (i >= words.length) {
      const d = createHash('sha256').update(seed).update(`\u0000${counter++}`).digest();
      words = new Uint32Array(d.buffer, d.byteOffset, 8);
      i = 0;
    }
    const hi = words[i++]!;
    const lo = words[i++]!;
    return toUnit(hi, lo);
  };
}
