/**
 * The libp2p values the project uses (see libp2p.direct.ts), loaded fast.
 *
 * libp2p and its modules are hundreds of small ES modules: importing them costs ~1 s of
 * start-up on the development machine (resolving and compiling each file), more than the rest
 * of `drill run` on a small job. `npm ci` bundles them into one file
 * (`node_modules/.cache/matrix-drill/libp2p.mjs`, by scripts/bundle-libp2p.js with rolldown),
 * which imports in ~0.2 s; this module loads that bundle when it is there and the packages
 * otherwise (an install without dev dependencies, or DRILL_NO_BUNDLE=1). Same code either way.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type * as Direct from './libp2p.direct.ts';

/** Where scripts/bundle-libp2p.js writes the bundle. */
export const LIBP2P_BUNDLE = fileURLToPath(new URL('../../node_modules/.cache/matrix-drill/libp2p.mjs', import.meta.url));

/**
 * Whether the bundle is there and was built from the current libp2p.direct.ts (its stamp holds
 * that file's sha256): an edited list of exports falls back to the packages until the bundle is
 * rebuilt (`node scripts/bundle-libp2p.js`, or any `npm install`).
 */
function bundleIsCurrent(): boolean {
  try {
    const stamp = readFileSync(`${LIBP2P_BUNDLE}.sha256`, 'utf8').trim();
    return stamp === createHash('sha256').update(readFileSync(new URL('./libp2p.direct.ts', import.meta.url))).digest('hex');
  } catch {
    return false;
  }
}

const useBundle = process.env.DRILL_NO_BUNDLE !== '1' && bundleIsCurrent();
const m = (useBundle ? await import(LIBP2P_BUNDLE) : await import('./libp2p.direct.ts')) as typeof Direct;

/** Whether the one-file bundle is in use (for diagnostics and tests). */
export const libp2pBundled: boolean = useBundle;

export const {
  createLibp2p, tcp, noise, yamux, identify, gossipsub, StrictSign, TopicValidatorResult, createTopicScoreParams,
  generateKeyPair, generateKeyPairFromSeed, privateKeyFromProtobuf, privateKeyToProtobuf, publicKeyFromRaw,
  peerIdFromString, peerIdFromPublicKey, peerIdFromPrivateKey, multiaddr, KEEP_ALIVE,
} = m;
