/**
 * AbortSignal helpers for every layer: client hang-up, deadlines and server
 * shutdown all end work through a signal whose reason is the error. Each
 * helper removes what it added (listener, timer) once it is done. Signals
 * are linked by hand, not with AbortSignal.any: on Node 20, and on Node 22
 * for a linked signal that aborts with a listener still on it, that keeps
 * every linked signal alive for as long as a long-lived source (the server's
 * shutdown signal) lives (nodejs/node#55351, nodejs/node#64476, undici#3779).
 */
import { ErrorCode, JobworkerError } from './errors.js';

/** Releases what a helper added; safe to call more than once. */
export type Dispose = () => void;

/**
 * The error an operation ended by `signal` throws: its reason when that is
 * already coded (a removal, a shutdown, a deadline), else `cancelled`
 * naming `what` was cancelled ("launch cancelled by the caller").
 */
export function cancelled(signal: AbortSignal, what?: string): JobworkerError {
  const reason: unknown = signal.reason;
  if (reason instanceof JobworkerError) return reason;
  const message =
    what === undefined ? 'cancelled by the caller' : `${what} cancelled by the caller`;
  return new JobworkerError(ErrorCode.Cancelled, message, { cause: reason });
}

/** Throws {@link cancelled} if `signal` has aborted. */
export function checkAborted(signal: AbortSignal | undefined, what?: string): void {
  if (signal?.aborted === true) throw cancelled(signal, what);
}

/**
 * Calls `listener` once when `signal` aborts, at once if it already has;
 * the returned function removes the listener.
 */
export function onAbort(signal: AbortSignal | undefined, listener: () => void): Dispose {
  if (signal === undefined) return () => undefined;
  if (signal.aborted) {
    listener();
    return () => undefined;
  }
  signal.addEventListener('abort', listener, { once: true });
  return () => {
    signal.removeEventListener('abort', listener);
  };
}

/**
 * Settles as `promise` does, or rejects with {@link cancelled} as soon as
 * `signal` aborts. Only the caller's wait ends: the work goes on, and its
 * later rejection is handled here.
 */
export async function raceAbort<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  what?: string,
): Promise<T> {
  if (signal === undefined) return promise;
  checkAborted(signal, what);
  let dispose: Dispose = () => undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        dispose = onAbort(signal, () => {
          reject(cancelled(signal, what));
        });
      }),
    ]);
  } finally {
    dispose();
  }
}

/** A controller aborted by any of its sources; see {@link linkSignals}. */
export interface LinkedSignal {
  /** Aborts the linked signal from its owner's side too (a call's own cancel). */
  readonly controller: AbortController;
  readonly signal: AbortSignal;
  /** Removes the listeners on the sources; call when the linked work ends. */
  readonly dispose: Dispose;
}

/**
 * A signal that aborts, with the source's reason, when any of `sources`
 * does. Its listeners on the sources go once it aborts or on `dispose`.
 */
export function linkSignals(...sources: readonly (AbortSignal | undefined)[]): LinkedSignal {
  const controller = new AbortController();
  const disposers: Dispose[] = [];
  const dispose = (): void => {
    for (const remove of disposers.splice(0)) remove();
  };
  for (const source of sources) {
    if (source === undefined) continue;
    if (source.aborted) {
      controller.abort(source.reason);
      break;
    }
    disposers.push(
      onAbort(source, () => {
        controller.abort(source.reason);
        dispose();
      }),
    );
  }
  if (controller.signal.aborted) dispose();
  return { controller, signal: controller.signal, dispose };
}

/** A signal that aborts after `ms` (deadline_exceeded); see {@link deadlineSignal}. */
export interface DeadlineSignal {
  readonly signal: AbortSignal;
  /** Clears the timer; call when the bounded work ends. */
  readonly dispose: Dispose;
}

/**
 * A signal that aborts with deadline_exceeded after `ms` naming `what`.
 * Its timer keeps the process alive until it fires or `dispose` clears it.
 */
export function deadlineSignal(ms: number, what = 'the operation'): DeadlineSignal {
  const controller = new AbortController();
  const timer = setTimeout(() => {
    controller.abort(
      new JobworkerError(ErrorCode.DeadlineExceeded, `${what} did not end within ${ms} ms`),
    );
  }, ms);
  return {
    signal: controller.signal,
    dispose: () => {
      clearTimeout(timer);
    },
  };
}
