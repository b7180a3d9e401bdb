/**
 * Argument checks of the network layer's public calls: addresses, peer ids, sizes, timeouts.
 * Each failure is a NetError NET_BAD_ARGUMENT naming the field, what was expected and what was
 * received.
 */
import { peerIdFromString, multiaddr } from '../vendor/libp2p.ts';
import type { PeerId } from '@libp2p/interface';
import type { Multiaddr } from '@multiformats/multiaddr';
import { NetError, NetErrorCode } from './errors.ts';

export function parseAddr(addr: string, field: string): Multiaddr {
  try {
    return multiaddr(addr);
  } catch (e) {
    throw new NetError(NetErrorCode.NET_BAD_ARGUMENT, `${field}: expected a multiaddr like /ip4/127.0.0.1/tcp/4001/p2p/12D3Koo..., received ${JSON.stringify(addr)}`, {}, { cause: e });
  }
}

export function parseTarget(peerOrAddr: string): PeerId | Multiaddr {
  if (typeof peerOrAddr !== 'string' || peerOrAddr.length === 0) {
    throw new NetError(NetErrorCode.NET_BAD_ARGUMENT, `peer: expected a peer id or multiaddr, received ${String(peerOrAddr)}`);
  }
  if (peerOrAddr.startsWith('/')) return parseAddr(peerOrAddr, 'peer');
  try {
    return peerIdFromString(peerOrAddr);
  } catch (e) {
    throw new NetError(NetErrorCode.NET_BAD_ARGUMENT, `peer: expected a peer id (12D3Koo...) or multiaddr, received ${JSON.stringify(peerOrAddr.slice(0, 60))}`, {}, { cause: e });
  }
}

export function checkSize(field: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (!Number.isSafeInteger(v) || v < 0 || v > 0xffffffff) {
    throw new NetError(NetErrorCode.NET_BAD_ARGUMENT, `${field}: expected an integer in 0..4294967295, received ${String(v)}`);
  }
  return v;
}

export function checkTimeout(field: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > 2 ** 31 - 1) {
    throw new NetError(NetErrorCode.NET_BAD_ARGUMENT, `${field}: expected milliseconds in 1..2147483647, received ${String(v)}`);
  }
  return v;
}
