/**
 * jobctl's own terminal while it is attached to a job's: raw mode (every
 * key goes to the job, the job's terminal does the echoing and Ctrl-C),
 * restored on every way out, and the window size the job's terminal gets.
 */
import type { Input, Output } from './command.js';

/** The size a job's terminal gets when jobctl's stdout is not a terminal (the VT100's). */
export const DEFAULT_WINDOW = { rows: 24, cols: 80 } as const;

/** TERM when the local environment has none (what docker sets). */
export const DEFAULT_TERM = 'xterm';

/** The local terminal's size, or {@link DEFAULT_WINDOW}. */
export function windowSize(out: Output): { rows: number; cols: number } {
  const { rows, columns } = out;
  return out.isTTY === true &&
    rows !== undefined &&
    columns !== undefined &&
    rows > 0 &&
    columns > 0
    ? { rows, cols: columns }
    : DEFAULT_WINDOW;
}

/**
 * Puts `stdin` (a terminal) in raw mode and returns the restore, idempotent.
 * The restore also runs on the process's 'exit' (an uncaught error, a
 * process.exit anywhere), which runs synchronously as setRawMode does; only
 * SIGKILL leaves the terminal raw (`stty sane` or `reset` repairs it).
 */
export function enterRawMode(stdin: Input): () => void {
  stdin.setRawMode?.(true);
  let restored = false;
  const restore = (): void => {
    if (restored) return;
    restored = true;
    process.off('exit', restore);
    stdin.setRawMode?.(false);
  };
  process.once('exit', restore);
  return restore;
}
