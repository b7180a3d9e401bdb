/**
 * Ed25519 signing with node:crypto (OpenSSL). Ed25519 signatures are deterministic (RFC 8032),
 * so these are the same bytes @noble/curves produces — but ~50 µs a signature instead of ~1 ms
 * (and ~100 ms for noble's first, which builds its tables): the coordinator signs a credit
 * record for every unit it decides. Verification stays with @noble/curves (ZIP-215 rules, the
 * same on every node). Key objects are cached per seed.
 */
import { createPrivateKey, createPublicKey, sign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';

/** PKCS#8 DER prefix of an Ed25519 private key; the 32-byte seed follows. */
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
/** Keys kept: a process signs with one or two (the coordinator's, a producer's). */
const MAX_CACHED_KEYS = 16;
const keys = new Map<string, { priv: KeyObject; pub: Uint8Array }>();

function keyOf(seed: Uint8Array): { priv: KeyObject; pub: Uint8Array } {
  if (seed.length !== 32) throw new RangeError(`ed25519 seed: expected 32 bytes, received ${seed.length}`);
  const id = Buffer.from(seed).toString('hex');
  let k = keys.get(id);
  if (!k) {
    const priv = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
    const spki = createPublicKey(priv).export({ format: 'der', type: 'spki' });
    k = { priv, pub: new Uint8Array(spki.subarray(spki.length - 32)) };
    if (keys.size >= MAX_CACHED_KEYS) keys.delete(keys.keys().next().value!);
    keys.set(id, k);
  }
  return k;
}

/** The 32-byte public key of a 32-byte seed. @throws RangeError for another length. */
export function ed25519PublicKey(seed: Uint8Array): Uint8Array {
  return keyOf(seed).pub.slice();
}

/** The 64-byte signature of `message` by `seed` (RFC 8032). @throws RangeError for a seed that is not 32 bytes. */
export function ed25519Sign(message: Uint8Array, seed: Uint8Array): Uint8Array {
  return new Uint8Array(sign(null, message, keyOf(seed).priv));
}
