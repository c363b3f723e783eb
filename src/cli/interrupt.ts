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
