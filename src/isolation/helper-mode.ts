/**
 * Runs one of the native helper's short modes (`--lock`, `--clear-keys`)
 * with an empty environment and collects its exit code and the start of its
 * stderr (its one-line failure message). An abort kills it.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { onAbort } from '../signals.js';

// Enough for the helper's one-line failure message.
const STDERR_LIMIT = 1024;

/** How a helper mode ended. */
export interface HelperModeEnd {
  /** Its exit code; null if a signal ended it. */
  readonly code: number | null;
  readonly stderr: string;
}

/** Runs `helper args...`, with `fd3` as its descriptor 3 if given, until it exits. */
export async function runHelperMode(
  helper: string,
  args: readonly string[],
  options: { readonly fd3?: number; readonly signal?: AbortSignal | undefined } = {},
): Promise<HelperModeEnd> {
  const child = spawn(helper, args, {
    stdio: ['ignore', 'ignore', 'pipe', ...(options.fd3 === undefined ? [] : [options.fd3])],
    env: {},
  });
  const stop = onAbort(options.signal, () => child.kill('SIGKILL'));
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (text: string) => {
    stderr = (stderr + text).slice(0, STDERR_LIMIT);
  });
  const [code] = (await once(child, 'close').finally(stop)) as [number | null];
  return { code, stderr: stderr.trim() };
}
