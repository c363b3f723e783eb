/**
 * A one-shot "something changed" broadcast: waiters register, one notify()
 * wakes them all and forgets them. Followers use it to sleep until the log
 * grows or the job finishes, at no CPU cost and without a polling timer.
 *
 * A plain Set instead of an EventEmitter: a thousand followers are normal
 * here, not a leak worth a MaxListeners warning, and removal is O(1).
 */
import { cancelled, onAbort } from '../signals.js';

/** Wakes every current waiter on {@link Notifier.notify}. */
export class Notifier {
  readonly #waiters = new Set<() => void>();

  /** Number of pending waiters (for tests and metrics). */
  get waiterCount(): number {
    return this.#waiters.size;
  }

  /** Wakes and forgets every current waiter. */
  notify(): void {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const wake of waiters) wake();
  }

  /**
   * Resolves at the next notify(); rejects with the abort reason (coded) if
   * `signal` aborts first. Either way nothing of the waiter stays registered.
   * Callers check their condition and call this in the same tick, so a
   * notification cannot fall in between.
   */
  wait(signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const wake = (): void => {
        stopListening();
        resolve();
      };
      const stopListening = onAbort(signal, () => {
        this.#waiters.delete(wake);
        reject(cancelled(signal as AbortSignal));
      });
      if (signal?.aborted !== true) this.#waiters.add(wake);
    });
  }
}
