/**
 * The worker's on-disk model cache: model bytes stored under their sha256, so a unit that names
 * a model by hash finds a local file holding exactly those bytes (what InferencePool.run needs).
 *
 * Layout: `<dir>/<sha256 hex>.onnx`. Writes are atomic (a temp file in the same folder, fsync,
 * then rename), so a crash never leaves a half-written model under a valid name, and every write
 * is sha256-checked, so a peer that sends the wrong bytes for a hash is refused.
 *
 * Bounded by size (`maxBytes`, `drill worker --cache-max`): past it, the least recently used
 * models are deleted — never one in use (`pin`ned by a unit that runs it or a fetch under way).
 * Coordinators choose which models a worker fetches, so an unbounded cache is a disk a stranger
 * could fill.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DrillError } from '../util/errors.ts';

const HEX64 = /^[0-9a-f]{64}$/;

/** sha256 hex of `bytes` (node:crypto: several times faster than a JS hash on 100 MB models). */
export function modelHashOf(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function checkHash(hash: string): string {
  const h = typeof hash === 'string' ? hash.toLowerCase() : '';
  if (!HEX64.test(h)) throw new DrillError('BAD_REQUEST', `modelHash: expected 64 hex characters (sha256), received ${JSON.stringify(String(hash).slice(0, 80))}`, { field: 'modelHash' });
  return h;
}

export interface ModelCacheOptions {
  /** Most bytes of models kept; default unbounded. Models in use are kept even past it. */
  maxBytes?: number;
}

/** A content-addressed folder of ONNX models. */
export class ModelCache {
  readonly dir: string;
  readonly maxBytes: number;
  /** Stored models: size and last use (ms; file mtime for models found at start). */
  readonly #index = new Map<string, { size: number; lastUsed: number }>();
  readonly #pins = new Map<string, number>();
  #bytes = 0;
  /** Models deleted to stay under maxBytes. */
  evictions = 0;

  /** Creates `dir` (and parents) when missing, and indexes the models already in it. */
  constructor(dir: string, opts: ModelCacheOptions = {}) {
    this.dir = dir;
    this.maxBytes = opts.maxBytes ?? Number.POSITIVE_INFINITY;
    mkdirSync(dir, { recursive: true });
    for (const name of readdirSync(dir)) {
      const m = /^([0-9a-f]{64})\.onnx$/.exec(name);
      if (!m) continue;
      const st = statSync(join(dir, name));
      this.#index.set(m[1]!, { size: st.size, lastUsed: st.mtimeMs });
      this.#bytes += st.size;
    }
  }

  /** Bytes of models stored. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Keep `hash` from eviction until `unpin` (pins count: each pin needs its unpin). Pin before
   * checking `has` so the model cannot vanish between the check and its use.
   */
  pin(hash: string): void {
    const h = checkHash(hash);
    this.#pins.set(h, (this.#pins.get(h) ?? 0) + 1);
    const e = this.#index.get(h);
    if (e) e.lastUsed = Date.now();
  }

  unpin(hash: string): void {
    const h = checkHash(hash);
    const n = (this.#pins.get(h) ?? 0) - 1;
    if (n > 0) this.#pins.set(h, n);
    else this.#pins.delete(h);
  }

  /** Whether the model with this hash is stored. @throws DrillError BAD_REQUEST for a malformed hash. */
  has(hash: string): boolean {
    return existsSync(this.path(hash));
  }

  /** Where the model with this hash is (or would be) stored. @throws DrillError BAD_REQUEST for a malformed hash. */
  path(hash: string): string {
    return join(this.dir, `${checkHash(hash)}.onnx`);
  }

  /** Store `bytes` under their own hash; returns the hash. */
  async put(bytes: Uint8Array): Promise<string> {
    const hash = modelHashOf(bytes);
    await this.#write(hash, bytes);
    return hash;
  }

  /**
   * Store bytes received for `hash`, refusing them when they hash to something else.
   * @returns the stored file's path.
   * @throws DrillError MODEL_HASH_MISMATCH (nothing is written).
   */
  async putVerified(hash: string, bytes: Uint8Array): Promise<string> {
    const want = checkHash(hash);
    const got = modelHashOf(bytes);
    if (got !== want) {
      throw new DrillError('MODEL_HASH_MISMATCH', `model bytes: expected sha256 ${want}, received ${bytes.length} bytes with sha256 ${got}`, { field: 'model', expected: want, received: got });
    }
    await this.#write(want, bytes);
    return this.path(want);
  }

  /** Size in bytes of a stored model, or undefined. */
  async size(hash: string): Promise<number | undefined> {
    try {
      return (await stat(this.path(hash))).size;
    } catch {
      return undefined;
    }
  }

  async #write(hash: string, bytes: Uint8Array): Promise<void> {
    const dest = this.path(hash);
    if (existsSync(dest)) {
      // Content-addressed: the same name always holds the same bytes (perhaps written by another process).
      const e = this.#index.get(hash);
      if (e) e.lastUsed = Date.now();
      else {
        const size = statSync(dest).size;
        this.#index.set(hash, { size, lastUsed: Date.now() });
        this.#bytes += size;
        await this.#evict(hash);
      }
      return;
    }
    const tmp = join(this.dir, `.${hash}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      const fh = await open(tmp, 'wx', 0o644);
      try {
        await fh.writeFile(bytes);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, dest);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
    if (!this.#index.has(hash)) this.#bytes += bytes.length;
    this.#index.set(hash, { size: bytes.length, lastUsed: Date.now() });
    await this.#evict(hash);
  }

  /** Delete least recently used, unpinned models (never `keep`) until under maxBytes. */
  async #evict(keep: string): Promise<void> {
    while (this.#bytes > this.maxBytes) {
      let victim: string | undefined;
      let oldest = Number.POSITIVE_INFINITY;
      for (const [h, e] of this.#index) {
        if (h === keep || this.#pins.has(h)) continue;
        if (e.lastUsed < oldest) {
          oldest = e.lastUsed;
          victim = h;
        }
      }
      if (victim === undefined) return; // everything left is in use
      const e = this.#index.get(victim)!;
      this.#index.delete(victim);
      this.#bytes -= e.size;
      this.evictions++;
      await rm(this.path(victim), { force: true });
    }
  }
}
