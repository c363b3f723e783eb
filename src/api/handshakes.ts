/**
 * The connections of the TLS listener still in their handshake, in arrival
 * order, in all and per peer address, so that the listener can push out the
 * oldest when a budget is full (connection-policy.ts).
 */
import type { Socket } from 'node:net';

/** Connections in their TLS handshake: in arrival order, in all and per peer address. */
export class Handshakes {
  readonly #all = new Map<string, Socket>();
  readonly #byAddress = new Map<string, Map<string, Socket>>();

  /** Handshakes under way. */
  get size(): number {
    return this.#all.size;
  }

  /** Records the new connection `peer` (`address:port`) from `address`. */
  add(peer: string, address: string, socket: Socket): void {
    this.#all.set(peer, socket);
    const mine = this.#byAddress.get(address) ?? new Map<string, Socket>();
    mine.set(peer, socket);
    this.#byAddress.set(address, mine);
  }

  /** The oldest handshake of `address` (or of all when undefined). */
  oldest(address?: string): string | undefined {
    const from = address === undefined ? this.#all : this.#byAddress.get(address);
    return from?.keys().next().value;
  }

  /** Handshakes under way from `address`. */
  countOf(address: string): number {
    return this.#byAddress.get(address)?.size ?? 0;
  }

  /** Destroys every socket still in its handshake. */
  destroyAll(): void {
    for (const socket of this.#all.values()) socket.destroy();
  }

  /** Removes `peer`; returns its socket if it was there. */
  remove(peer: string, address: string): Socket | undefined {
    const socket = this.#all.get(peer);
    this.#all.delete(peer);
    const mine = this.#byAddress.get(address);
    mine?.delete(peer);
    if (mine?.size === 0) this.#byAddress.delete(address);
    return socket;
  }
}
