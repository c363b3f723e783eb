/**
 * Per-identity bound on open output streams. Each follower holds a file
 * handle and a read buffer on the server; without a bound one certificate
 * could open streams until the process runs out of file descriptors, and
 * then no job of any user could start. One instance per server (no global
 * state); a slot is taken when a stream opens and given back when it ends.
 */
import { ErrorCode, JobworkerError } from '../errors.js';

/** Open streams one identity may hold at once. TODO(configuration system): a constant for now. */
export const MAX_STREAMS_PER_IDENTITY = 256;

/** Counts open streams per identity. */
export class StreamQuota {
  readonly #open = new Map<string, number>();
  readonly #max: number;

  constructor(max = MAX_STREAMS_PER_IDENTITY) {
    this.#max = max;
  }

  /** Takes a slot for `identity` and returns its release (idempotent); resource_exhausted when full. */
  acquire(identity: string): () => void {
    const open = this.#open.get(identity) ?? 0;
    if (open >= this.#max) {
      throw new JobworkerError(
        ErrorCode.ResourceExhausted,
        `${identity} already has ${open} output streams open (at most ${this.#max}); close some first`,
      );
    }
    this.#open.set(identity, open + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#open.get(identity) ?? 1) - 1;
      if (left === 0) this.#open.delete(identity);
      else this.#open.set(identity, left);
    };
  }

  /** Open streams of `identity` (for tests and diagnostics). */
  openCount(identity: string): number {
    return this.#open.get(identity) ?? 0;
  }
}
