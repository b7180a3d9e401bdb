/**
 * The worker's on-disk model cache: model bytes stored under their sha256, so a unit that names
 * a model by hash finds a local file holding exactly those bytes (what InferencePool.run needs).
 *
 * Layout: `<dir>/<sha256 hex>.onnx`. Writes are atomic (a temp file in the same folder, fsync,
 * then rename), so a crash never leaves a half-written model under a valid name, and every write
 * is sha256-checked, so a peer that sends the wrong bytes for a hash is refused.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
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

/** A content-addressed folder of ONNX models. */
export class ModelCache {
  readonly dir: string;

  /** Creates `dir` (and parents) when missing. */
  constructor(dir: string) {
    this.dir = dir;
    mkdirSync(dir, { recursive: true });
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
    if (existsSync(dest)) return; // content-addressed: the same name always holds the same bytes
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
  }
}
