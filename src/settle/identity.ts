/**
 * Trainer identity on Substrate: a worker's libp2p peer id (Ed25519) linked to a Substrate
 * account (sr25519, SS58 address) by two signatures, each key signing a message that names the
 * other. The link travels inside settlement anchors, so anyone reading the Substrate chain can
 * look a trainer's credit up by SS58 address and check the link without trusting the settler.
 *
 * Signed message (both keys sign the same bytes):
 *   "matrix-drill/identity-link/v1\n" ‖ peer id (base58btc) ‖ "\n" ‖ sr25519 public key (hex, no 0x)
 * The public key rather than the SS58 string is signed, so a link stays valid under any SS58
 * network prefix.
 */
import { readFileSync, statSync } from 'node:fs';
import type { PrivateKey } from '@libp2p/interface';
import { peerIdFromPrivateKey, peerIdFromString } from '../vendor/libp2p.ts';
import { Keyring } from '@polkadot/keyring';
import type { KeyringPair } from '@polkadot/keyring/types';
import { cryptoWaitReady, decodeAddress, encodeAddress, mnemonicValidate, signatureVerify } from '@polkadot/util-crypto';
import { bytesToHex, hexToBytes, utf8ToBytes } from '../util/bytes.ts';
import { UserError } from '../util/errors.ts';

/** Generic Substrate SS58 prefix (42), what node-template and most dev chains use. */
export const DEFAULT_SS58_FORMAT = 42;
const LINK_TAG = 'matrix-drill/identity-link/v1';

/** A peer id ↔ Substrate account link. Signatures are hex without 0x. */
export interface IdentityLink {
  /** libp2p peer id (base58btc), Ed25519. */
  peer: string;
  /** Substrate account, SS58 (any prefix). */
  ss58: string;
  /** Ed25519 signature by the peer's key over linkMessage. */
  sigByPeer: string;
  /** sr25519 signature by the Substrate account over linkMessage. */
  sigBySs58: string;
}

/** The bytes both keys sign. */
export function linkMessage(peer: string, substratePublicKey: Uint8Array): Uint8Array {
  return utf8ToBytes(`${LINK_TAG}\n${peer}\n${bytesToHex(substratePublicKey)}`);
}

/**
 * Link a libp2p identity to a Substrate keypair (sr25519 or ed25519 keyring pair).
 * @throws RangeError when the libp2p key is not Ed25519 (peer ids of workers always are).
 */
export async function linkIdentity(peerKey: PrivateKey, pair: KeyringPair, ss58Format = DEFAULT_SS58_FORMAT): Promise<IdentityLink> {
  if (peerKey.type !== 'Ed25519') throw new RangeError(`identity link: expected an Ed25519 libp2p key, got ${peerKey.type}`);
  await cryptoWaitReady();
  const peer = peerIdFromPrivateKey(peerKey).toString();
  const msg = linkMessage(peer, pair.publicKey);
  const sigByPeer = bytesToHex(await peerKey.sign(msg));
  const sigBySs58 = bytesToHex(pair.sign(msg));
  return { peer, ss58: encodeAddress(pair.publicKey, ss58Format), sigByPeer, sigBySs58 };
}

/** Check both signatures of an untrusted link. Returns false (never throws) when anything is off. */
export async function verifyIdentityLink(link: unknown): Promise<boolean> {
  try {
    if (typeof link !== 'object' || link === null) return false;
    const l = link as Record<string, unknown>;
    if (typeof l.peer !== 'string' || typeof l.ss58 !== 'string' || typeof l.sigByPeer !== 'string' || typeof l.sigBySs58 !== 'string') return false;
    if (!/^[0-9a-f]{128}$/.test(l.sigByPeer) || !/^[0-9a-f]{128}$/.test(l.sigBySs58)) return false;
    await cryptoWaitReady();
    const peerId = peerIdFromString(l.peer);
    if (peerId.type !== 'Ed25519' || peerId.publicKey === undefined) return false;
    const pub = decodeAddress(l.ss58);
    const msg = linkMessage(l.peer, pub);
    if (!(await peerId.publicKey.verify(msg, hexToBytes(l.sigByPeer)))) return false;
    return signatureVerify(msg, hexToBytes(l.sigBySs58), pub).isValid;
  } catch {
    return false;
  }
}

/** Is `s` an SS58 address (any prefix)? */
export function isSs58(s: string): boolean {
  try {
    decodeAddress(s);
    return !s.startsWith('0x');
  } catch {
    return false;
  }
}

/** Canonical (prefix 42) form of an SS58 address, for comparing addresses across prefixes. */
export function canonicalSs58(s: string): string {
  return encodeAddress(decodeAddress(s), DEFAULT_SS58_FORMAT);
}

/**
 * The Substrate signing key from `--suri`: a dev URI (`//Alice`), a mnemonic (with optional
 * `//hard/soft` derivation), a 0x seed, or the path of a file holding one of those.
 * @throws UserError naming `field` when it is none of these.
 */
export async function loadSubstratePair(suri: string, field = '--suri', ss58Format = DEFAULT_SS58_FORMAT): Promise<KeyringPair> {
  await cryptoWaitReady();
  let secret = suri;
  let fromFile = false;
  if (!suri.startsWith('//') && !suri.includes(' ') && !suri.startsWith('0x')) {
    let isFile = false;
    try {
      isFile = statSync(suri).isFile();
    } catch {
      isFile = false;
    }
    if (isFile) {
      secret = readFileSync(suri, 'utf8').trim();
      fromFile = true;
    }
  }
  // Keyring accepts any string (a short one becomes a raw seed), so a mistyped mnemonic would
  // silently sign as another account: accept only the documented forms.
  const phrase = secret.split('//')[0]!.split('///')[0]!.trim();
  const ok = phrase === '' ? secret.startsWith('//') : phrase.startsWith('0x') ? /^0x[0-9a-fA-F]{64}$/.test(phrase) : mnemonicValidate(phrase);
  const expected = 'a dev URI like //Alice, a BIP39 mnemonic, a 0x 32-byte seed, or a file holding one';
  const shown = fromFile ? `the contents of file ${suri}` : suri.startsWith('//') ? suri : 'a secret that does not parse (not echoed)';
  if (!ok) throw new UserError(field, expected, shown);
  try {
    return new Keyring({ type: 'sr25519', ss58Format }).addFromUri(secret);
  } catch (e) {
    throw new UserError(field, expected, shown, (e as Error).message);
  }
}
