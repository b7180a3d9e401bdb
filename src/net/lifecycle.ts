/**
 * A node's running/stopped state, shared by its gossip and request/response halves: calls
 * after stop fail with NET_STOPPED, and waits in progress are woken with it.
 */
import { NetError, NetErrorCode } from './errors.ts';

export class Lifecycle {
  #stopped = false;
  /** Pending waits to fail when the node stops. */
  readonly waiters = new Set<(err: Error) => void>();

  get stopped(): boolean {
    return this.#stopped;
  }

  /** @throws NetError NET_STOPPED once stopped. */
  assertRunning(): void {
    if (this.#stopped) throw new NetError(NetErrorCode.NET_STOPPED, 'network node is stopped');
  }

  /** Mark stopped and fail every pending wait. Returns false when already stopped. */
  stop(): boolean {
    if (this.#stopped) return false;
    this.#stopped = true;
    for (const finish of [...this.waiters]) finish(new NetError(NetErrorCode.NET_STOPPED, 'network node stopped while waiting'));
    return true;
  }
}
