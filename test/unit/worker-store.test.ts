/** The worker's files: content-addressed model cache and the persistent identity key. */
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/util/bytes.ts';
import { isDrillError } from '../../src/util/errors.ts';
import { IDENTITY_FILE, defaultDataDir, loadOrCreateIdentity } from '../../src/worker/identity.ts';
import { ModelCache } from '../../src/worker/models.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'drill-worker-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('ModelCache', () => {
  it('stores bytes under their sha256 and finds them again', async () => {
    const c = new ModelCache(join(dir, 'models'));
    const bytes = new TextEncoder().encode('model bytes');
    const h = await c.put(bytes);
    expect(h).toBe(sha256Hex(bytes));
    expect(c.has(h)).toBe(true);
    expect(c.path(h)).toBe(join(dir, 'models', `${h}.onnx`));
    expect(await c.size(h)).toBe(bytes.length);
    expect(await c.putVerified(h.toUpperCase(), bytes)).toBe(c.path(h)); // idempotent, hash case-insensitive
    // No temp files left behind.
    expect((await readdir(join(dir, 'models'))).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('putVerified rejects bytes that do not match the hash and writes nothing', async () => {
    const c = new ModelCache(dir);
    const want = sha256Hex('the real model');
    let e: unknown;
    try {
      await c.putVerified(want, new TextEncoder().encode('something else'));
    } catch (x) {
      e = x;
    }
    expect(isDrillError(e, 'MODEL_HASH_MISMATCH')).toBe(true);
    expect((e as Error).message).toContain(want);
    expect(c.has(want)).toBe(false);
    expect(await readdir(dir)).toEqual([]);
  });

  it('a malformed hash is BAD_REQUEST', () => {
    const c = new ModelCache(dir);
    expect(() => c.has('../../etc/passwd')).toThrow(/modelHash: expected 64 hex/);
  });
});

describe('identity', () => {
  it('creates a key once (mode 0600) and loads the same peer id afterwards', async () => {
    const a = await loadOrCreateIdentity(dir);
    expect(a.created).toBe(true);
    expect(a.privateKey.type).toBe('Ed25519');
    expect((await stat(join(dir, IDENTITY_FILE))).mode & 0o777).toBe(0o600);
    const b = await loadOrCreateIdentity(dir);
    expect(b.created).toBe(false);
    expect(b.peerId).toBe(a.peerId);
    expect(b.privateKey.equals(a.privateKey)).toBe(true);
  });

  it('a corrupt key file is an error naming the file, never silently replaced', async () => {
    const file = join(dir, IDENTITY_FILE);
    await writeFile(file, 'garbage', { mode: 0o600 });
    let e: unknown;
    try {
      await loadOrCreateIdentity(dir);
    } catch (x) {
      e = x;
    }
    expect(isDrillError(e, 'IDENTITY_CORRUPT')).toBe(true);
    expect((e as Error).message).toContain(file);
    expect(await readdir(dir)).toEqual([IDENTITY_FILE]);
  });

  it('default data dir: $DRILL_HOME, else ~/.matrix-drill', () => {
    expect(defaultDataDir({ DRILL_HOME: '/srv/drill' })).toBe('/srv/drill');
    expect(defaultDataDir({})).toMatch(/\.matrix-drill$/);
  });
});
