/**
 * The libp2p bundle (scripts/bundle-libp2p.js, run by `npm ci`): it is built, current, in use,
 * and exports exactly what the packages do — so start-up is fast and the code is the same.
 */
import { describe, it, expect } from 'vitest';
import { existsSync } from 'node:fs';
import * as direct from '../../src/vendor/libp2p.direct.ts';
import * as facade from '../../src/vendor/libp2p.ts';

describe('libp2p bundle', () => {
  it('is built by npm ci and used by the facade', () => {
    expect(existsSync(facade.LIBP2P_BUNDLE), `${facade.LIBP2P_BUNDLE} (run: node scripts/bundle-libp2p.js)`).toBe(true);
    expect(facade.libp2pBundled).toBe(process.env.DRILL_NO_BUNDLE !== '1');
  });

  it('exports the same names as the packages, each of the same kind', async () => {
    const bundled = (await import(facade.LIBP2P_BUNDLE)) as Record<string, unknown>;
    const names = Object.keys(direct).sort();
    expect(Object.keys(bundled).sort()).toEqual(names);
    for (const n of names) expect(typeof bundled[n], n).toBe(typeof (direct as Record<string, unknown>)[n]);
    // The facade re-exports every one of them.
    for (const n of names) expect(n in facade, n).toBe(true);
  });

  it('bundled values work: a key pair makes the same peer id both ways', async () => {
    const bundled = (await import(facade.LIBP2P_BUNDLE)) as typeof direct;
    const seed = new Uint8Array(32).fill(7);
    const a = await bundled.generateKeyPairFromSeed('Ed25519', seed);
    const b = await direct.generateKeyPairFromSeed('Ed25519', seed);
    expect(bundled.peerIdFromPrivateKey(a).toString()).toBe(direct.peerIdFromPrivateKey(b).toString());
    expect(bundled.multiaddr('/ip4/127.0.0.1/tcp/1').toString()).toBe('/ip4/127.0.0.1/tcp/1');
  });
});
