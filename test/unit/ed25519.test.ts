/**
 * node:crypto Ed25519 signing (src/util/ed25519.ts) gives the bytes RFC 8032 and @noble/curves
 * give: the RFC's test vectors, and random seeds and messages checked against noble.
 */
import { describe, it, expect } from 'vitest';
import { ed25519 } from '@noble/curves/ed25519.js';
import { ed25519PublicKey, ed25519Sign } from '../../src/util/ed25519.ts';
import { hexToBytes, bytesToHex } from '../../src/util/bytes.ts';
import { Rng } from '../../src/sim/rng.ts';

describe('ed25519 with node:crypto', () => {
  it('RFC 8032 section 7.1 tests 1-3', () => {
    const cases = [
      ['9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a', '', 'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b'],
      ['4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb', '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c', '72', '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00'],
      ['c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7', 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025', 'af82', '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a'],
    ] as const;
    for (const [seed, pub, msg, sig] of cases) {
      expect(bytesToHex(ed25519PublicKey(hexToBytes(seed)))).toBe(pub);
      expect(bytesToHex(ed25519Sign(hexToBytes(msg), hexToBytes(seed)))).toBe(sig);
    }
  });

  it('equals @noble/curves on random seeds and messages, and noble verifies it', () => {
    const rng = new Rng('ed25519-cross');
    for (let i = 0; i < 50; i++) {
      const seed = Uint8Array.from({ length: 32 }, () => Math.floor(rng.next() * 256));
      const msg = Uint8Array.from({ length: Math.floor(rng.next() * 300) }, () => Math.floor(rng.next() * 256));
      const sig = ed25519Sign(msg, seed);
      expect(bytesToHex(sig)).toBe(bytesToHex(ed25519.sign(msg, seed)));
      expect(bytesToHex(ed25519PublicKey(seed))).toBe(bytesToHex(ed25519.getPublicKey(seed)));
      expect(ed25519.verify(sig, msg, ed25519PublicKey(seed))).toBe(true);
    }
  });

  it('refuses a seed that is not 32 bytes', () => {
    expect(() => ed25519Sign(new Uint8Array(1), new Uint8Array(31))).toThrow(/expected 32 bytes, received 31/);
  });
});
