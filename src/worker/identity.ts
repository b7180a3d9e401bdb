/**
 * The worker's data folder and its long-lived identity: an Ed25519 libp2p key, so a worker keeps
 * the same peer id (and with it its credit history) across restarts.
 *
 * The key is stored as libp2p's protobuf encoding in `<dataDir>/identity.key`, mode 0600, written
 * atomically (temp file + rename) the first time. A key file that cannot be read back is an
 * error naming the file: replacing it silently would throw away the worker's earned credit.
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readFile, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf, peerIdFromPrivateKey } from '../vendor/libp2p.ts';
import type { PrivateKey } from '@libp2p/interface';
import { DrillError } from '../util/errors.ts';
import type { Logger } from '../util/log.ts';

/** File name of the identity key inside the data folder. */
export const IDENTITY_FILE = 'identity.key';
/** Folder name under the home directory when DRILL_HOME is unset. */
export const DEFAULT_DATA_DIR_NAME = '.matrix-drill';

/** The worker's identity. */
export interface WorkerIdentity {
  privateKey: PrivateKey;
  /** The libp2p peer id (base58btc string). */
  peerId: string;
  /** True when this call generated the key. */
  created: boolean;
  /** Where the key lives. */
  path: string;
}

/** `$DRILL_HOME`, else `~/.matrix-drill`, as an absolute path. */
export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.DRILL_HOME;
  return resolve(fromEnv && fromEnv.length > 0 ? fromEnv : join(homedir(), DEFAULT_DATA_DIR_NAME));
}

/** Create the data folder (mode 0700: it holds the private key) when missing; returns its absolute path. */
export async function ensureDataDir(dataDir: string): Promise<string> {
  const dir = resolve(dataDir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/**
 * Load `<dataDir>/identity.key`, or create it with a fresh Ed25519 key when it does not exist.
 * @throws DrillError IDENTITY_CORRUPT when the file exists but is not a readable Ed25519 key.
 */
export async function loadOrCreateIdentity(dataDir: string, opts: { logger?: Logger } = {}): Promise<WorkerIdentity> {
  const dir = await ensureDataDir(dataDir);
  const path = join(dir, IDENTITY_FILE);
  let bytes: Uint8Array | undefined;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  if (bytes !== undefined) {
    let key: PrivateKey;
    try {
      key = privateKeyFromProtobuf(bytes);
    } catch (e) {
      throw new DrillError('IDENTITY_CORRUPT', `${path}: expected a libp2p protobuf private key, received ${bytes.length} bytes that do not decode (${e instanceof Error ? e.message : String(e)}); move the file away to create a new identity (the old peer id and its credit are lost)`, { field: path }, { cause: e });
    }
    if (key.type !== 'Ed25519') {
      throw new DrillError('IDENTITY_CORRUPT', `${path}: expected an Ed25519 key, received a ${key.type} key`, { field: path });
    }
    const mode = (await stat(path)).mode & 0o777;
    if (mode & 0o077) opts.logger?.warn('identity key is readable by other users; chmod 600 it', { path, mode: mode.toString(8) });
    return { privateKey: key, peerId: peerIdFromPrivateKey(key).toString(), created: false, path };
  }
  const key = await generateKeyPair('Ed25519');
  const tmp = join(dir, `.${IDENTITY_FILE}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(privateKeyToProtobuf(key));
      await fh.sync();
    } finally {
      await fh.close();
    }
    // link, not rename: it fails when another process created the key meanwhile, and then
    // that key (the one on disk) is the identity.
    await link(tmp, path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return loadOrCreateIdentity(dir, opts);
    throw e;
  } finally {
    await rm(tmp, { force: true });
  }
  const peerId = peerIdFromPrivateKey(key).toString();
  opts.logger?.info('created worker identity', { path, peerId });
  return { privateKey: key, peerId, created: true, path };
}
