/**
 * Ctrl-C for the commands that follow something until the user stops them
 * (`logs -f`, `list --watch`, `events`): it aborts the work's signal, and
 * the command exits 130 without reporting an error.
 */
import type { Io } from './command.js';
import { ExitCode } from './exit-codes.js';

/** Ctrl-C's reason: ends the work; not an error to report. */
class Interrupted extends Error {
  override readonly name = 'Interrupted';
}

/** Runs `work` with a signal Ctrl-C aborts; returns its status, or 130 once interrupted. */
export async function untilInterrupted(
  io: Io,
  work: (signal: AbortSignal) => Promise<number>,
): Promise<number> {
  const interrupt = new AbortController();
  const onSigint = (): void => {
    interrupt.abort(new Interrupted('interrupted'));
  };
  io.signals.on('SIGINT', onSigint);
  try {
    return await work(interrupt.signal);
  } catch (err) {
    if (err instanceof Interrupted) return ExitCode.Interrupted;
    throw err;
  } finally {
    io.signals.off('SIGINT', onSigint);
  }
}

/** The second Ctrl-C's reason: leave the jobs as they are and exit. */
export class Detached extends Error {
  override readonly name = 'Detached';
}

/** The two signals of {@link listenForInterrupts}. */
export interface Interrupts {
  /** Aborted by the first Ctrl-C: stop the jobs and keep following them. */
  readonly stop: AbortSignal;
  /** Aborted by the second Ctrl-C (reason {@link Detached}): give up on them. */
  readonly detach: AbortSignal;
  /** Removes the SIGINT listener and aborts `detach`, ending whatever still waits on it. */
  dispose(): void;
}

/**
 * Ctrl-C for work that is stopped before it is given up on (`run` on
 * several contexts): the first aborts `stop` and calls `onStop`, the second
 * aborts `detach`.
 */
export function listenForInterrupts(io: Io, onStop: () => void): Interrupts {
  const stop = new AbortController();
  const detach = new AbortController();
  const onSigint = (): void => {
    if (stop.signal.aborted) {
      detach.abort(new Detached('detached'));
    } else {
      stop.abort(new Detached('stopping'));
      onStop();
    }
  };
  io.signals.on('SIGINT', onSigint);
  return {
    stop: stop.signal,
    detach: detach.signal,
    dispose: () => {
      io.signals.off('SIGINT', onSigint);
      detach.abort(new Detached('done'));
    },
  };
}
