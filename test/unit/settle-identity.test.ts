/** Identity links (peer id ↔ SS58) and loading Substrate keys. */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { encodeAddress, decodeAddress } from '@polkadot/util-crypto';
import { canonicalSs58, isSs58, linkIdentity, loadSubstratePair, verifyIdentityLink } from '../../src/settle/index.ts';

describe('settle identity link', () => {
  it('links a libp2p Ed25519 key to an sr25519 account; both signatures verify', async () => {
    const key = await generateKeyPair('Ed25519');
    const bob = await loadSubstratePair('//Bob');
    const link = await linkIdentity(key, bob);
    expect(link.ss58).toBe('5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty');
    expect(await verifyIdentityLink(link)).toBe(true);
    // valid under another SS58 prefix (the public key is what is signed)
    expect(await verifyIdentityLink({ ...link, ss58: encodeAddress(decodeAddress(link.ss58), 0) })).toBe(true);
  });

  it('rejects a link naming another account, another peer, or with a flipped signature', async () => {
    const key = await generateKeyPair('Ed25519');
    const other = await generateKeyPair('Ed25519');
    const bob = await loadSubstratePair('//Bob');
    const alice = await loadSubstratePair('//Alice');
    const link = await linkIdentity(key, bob);
    const otherLink = await linkIdentity(other, bob);
    expect(await verifyIdentityLink({ ...link, ss58: alice.address })).toBe(false);
    expect(await verifyIdentityLink({ ...link, peer: otherLink.peer })).toBe(false);
    const flip = (h: string): string => (h[0] === '0' ? '1' : '0') + h.slice(1);
    expect(await verifyIdentityLink({ ...link, sigByPeer: flip(link.sigByPeer) })).toBe(false);
    expect(await verifyIdentityLink({ ...link, sigBySs58: flip(link.sigBySs58) })).toBe(false);
    expect(await verifyIdentityLink(null)).toBe(false);
    expect(await verifyIdentityLink({ ...link, peer: 'not-a-peer' })).toBe(false);
  });

  it('refuses a non-Ed25519 libp2p key', async () => {
    const key = await generateKeyPair('secp256k1');
    await expect(linkIdentity(key, await loadSubstratePair('//Bob'))).rejects.toThrow(RangeError);
  });

  it('loads --suri from a dev URI, a mnemonic file, and names the flag on junk without echoing secrets', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'settle-id-'));
    const f = join(dir, 'key');
    writeFileSync(f, 'bottom drive obey lake curtain smoke basket hold race lonely fit walk\n');
    const fromFile = await loadSubstratePair(f);
    expect(fromFile.address).toBe(canonicalSs58('5DfhGyQdFobKM8NsWvEeAKk5EQQgYe9AydgJ7rMB6E1EqRzV'));
    await expect(loadSubstratePair('not a valid phrase at all')).rejects.toMatchObject({ code: 'USER_INPUT', message: expect.stringContaining('--suri') });
    await expect(loadSubstratePair('0xdeadbeef')).rejects.toMatchObject({ message: expect.not.stringContaining('deadbeef') });
    await expect(loadSubstratePair('junk')).rejects.toMatchObject({ code: 'USER_INPUT' });
    writeFileSync(f, 'bottom drive obey lake curtain smoke basket hold race lonely fit wall\n');
    await expect(loadSubstratePair(f)).rejects.toMatchObject({ message: expect.stringContaining(`the contents of file ${f}`) });
    expect((await loadSubstratePair('//Alice')).address).toBe('5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY');
    expect((await loadSubstratePair(`0x${'11'.repeat(32)}`)).address).toMatch(/^5/);
    expect(isSs58(fromFile.address)).toBe(true);
    expect(isSs58('12D3KooWExample')).toBe(false);
  });
});
