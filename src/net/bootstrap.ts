/**
 * Bootstrap: dial the peers a node is given at start. A reached peer is tagged keep-alive, so
 * libp2p redials it when the connection drops (a coordinator restart); a failed dial is logged,
 * not fatal.
 */
import type { Libp2p } from 'libp2p';
import { KEEP_ALIVE } from '../vendor/libp2p.ts';
import type { Logger } from '../util/log.ts';
import { parseAddr } from './checks.ts';
import type { Lifecycle } from './lifecycle.ts';

/** Dial each bootstrap multiaddr in turn. Never throws for an unreachable peer. */
export async function dialBootstrap(libp2p: Libp2p, addrs: readonly string[], life: Lifecycle, log: Logger): Promise<void> {
  for (const addr of addrs) {
    try {
      life.assertRunning();
      const conn = await libp2p.dial(parseAddr(addr, 'bootstrap'));
      // Tagged peers are redialled by libp2p when the connection drops (e.g. a coordinator
      // restarts): RECONNECT_RETRIES attempts with growing back-off.
      await libp2p.peerStore.merge(conn.remotePeer, { tags: { [KEEP_ALIVE]: { value: 1 } } });
    } catch (e) {
      log.warn('bootstrap dial failed', { addr, err: (e as Error).message });
    }
  }
}
