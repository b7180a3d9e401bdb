/**
 * Weighted sampling structures for the simulator (pure).
 *
 *  - `AliasTable` (Walker/Vose): O(n) build, O(1) draws from fixed weights — used to assign
 *    work units to trainers in proportion to their (static) hashrate.
 *  - `FenwickSampler`: a binary indexed tree over weights that change a few at a time —
 *    used by the fast lottery, whose weights (credited FLOPs) change only for the trainers
 *    credited in the epoch that just entered the snapshot. O(log n) per update and per draw,
 *    so an epoch change costs O(k log n) for k changed trainers, not O(n).
 * Both take their randomness as a uniform in [0, 1) from the caller.
 */

/** Walker's alias method (Vose's stable construction). */
export class AliasTable {
  readonly n: number;
  readonly #prob: Float64Array;
  readonly #alias: Int32Array;

  /**
   * @param weights non-negative, finite, with a positive sum.
   * @throws RangeError otherwise.
   */
  constructor(weights: ArrayLike<number>) {
    const n = weights.length;
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const w = weights[i]!;
      if (!(w >= 0 && Number.isFinite(w))) throw new RangeError(`weight ${i} must be finite and ≥ 0, got ${w}`);
      sum += w;
    }
    if (!(sum > 0)) throw new RangeError('weights must have a positive sum');
    this.n = n;
    this.#prob = new Float64Array(n);
    this.#alias = new Int32Array(n);
    const scaled = new Float64Array(n);
    const small = new Int32Array(n);
    const large = new Int32Array(n);
    let ns = 0;
    let nl = 0;
    for (let i = 0; i < n; i++) {
      scaled[i] = (weights[i]! * n) / sum;
      if (scaled[i]! < 1) small[ns++] = i;
      else large[nl++] = i;
    }
    while (ns > 0 && nl > 0) {
      const s = small[--ns]!;
      const l = large[--nl]!;
      this.#prob[s] = scaled[s]!;
      this.#alias[s] = l;
      scaled[l] = scaled[l]! + scaled[s]! - 1;
      if (scaled[l]! < 1) small[ns++] = l;
      else large[nl++] = l;
    }
    while (nl > 0) this.#prob[large[--nl]!] = 1;
    while (ns > 0) this.#prob[small[--ns]!] = 1; // only reached through rounding
  }

  /** Draw an index with probability weight/sum, from one uniform u in [0, 1). */
  sample(u: number): number {
    const x = u * this.n;
    const i = Math.floor(x);
    return x - i < this.#prob[i]! ? i : this.#alias[i]!;
  }
}

/** A Fenwick (binary indexed) tree of non-negative weights with weighted draws. */
export class FenwickSampler {
  readonly n: number;
  readonly #tree: Float64Array; // 1-based
  readonly #w: Float64Array;
  #total = 0;
  readonly #top: number; // highest power of two ≤ n

  constructor(n: number) {
    this.n = n;
    this.#tree = new Float64Array(n + 1);
    this.#w = new Float64Array(n);
    let top = 1;
    while (top * 2 <= n) top *= 2;
    this.#top = n > 0 ? top : 0;
  }

  /** Sum of all weights. */
  get total(): number {
    return this.#total;
  }

  /** The weight of item i. */
  get(i: number): number {
    return this.#w[i]!;
  }

  /** Set item i's weight (≥ 0). */
  set(i: number, w: number): void {
    if (!(w >= 0 && Number.isFinite(w))) throw new RangeError(`weight must be finite and ≥ 0, got ${w}`);
    const d = w - this.#w[i]!;
    if (d === 0) return;
    this.#w[i] = w;
    this.#total += d;
    for (let j = i + 1; j <= this.n; j += j & -j) this.#tree[j] = this.#tree[j]! + d;
  }

  /**
   * The item whose cumulative range contains u·total: item i with probability w_i/total.
   * Items of weight 0 are never returned. Returns -1 when the total is 0.
   */
  sample(u: number): number {
    if (!(this.#total > 0)) return -1;
    let target = u * this.#total;
    let pos = 0;
    for (let step = this.#top; step > 0; step >>= 1) {
      const nxt = pos + step;
      if (nxt <= this.n && this.#tree[nxt]! <= target) {
        pos = nxt;
        target -= this.#tree[nxt]!;
      }
    }
    // pos is the count of items whose prefix sum ≤ target: the answer is item `pos`, unless
    // rounding walked past the last positive item — then step back to a positive one.
    let i = Math.min(pos, this.n - 1);
    while (i > 0 && this.#w[i] === 0) i--;
    while (i < this.n - 1 && this.#w[i] === 0) i++;
    return i;
  }
}
