/**
 * Per-identity bound on open output streams and waits (WaitJob). Each
 * follower holds a file handle and a read buffer on the server, each waiter
 * a call and a listener on its job; without a bound one certificate
 * could open streams until the process runs out of file descriptors, and
 * then no job of any user could start. One instance per server (no global
 * state); a slot is taken when a stream opens and given back when it ends,
 * through the job layer's per-key {@link Budget}.
 */
import { Budget, type Release } from '../job/index.js';

/** Open streams one identity may hold at once. TODO(configuration system): a constant for now. */
export const MAX_STREAMS_PER_IDENTITY = 256;

/** Counts open streams per identity. */
export class StreamQuota {
  readonly #budget: Budget<'streams'>;

  constructor(max = MAX_STREAMS_PER_IDENTITY) {
    this.#budget = new Budget('identity', {
      streams: { name: 'max_streams_per_identity', max, noun: 'output streams and waits open' },
    });
  }

  /** Takes a slot for `identity` and returns its release (idempotent); resource_exhausted when full. */
  acquire(identity: string): Release {
    return this.#budget.reserve(identity, { streams: 1 });
  }

  /** Open streams of `identity` (for tests and diagnostics). */
  openCount(identity: string): number {
    return this.#budget.held(identity).streams;
  }
}
