/**
 * Empties the kernel keyrings a uid owns by itself (user, user session and
 * persistent keyrings: they outlive every process of the uid), through the
 * native helper's `--clear-keys` mode (native/uid-keys.c), which must run as
 * root. The job layer calls it before a uid's first job for a new owner.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { ErrorCode, JobworkerError } from '../errors.js';

// Enough for the helper's one-line failure message.
const STDERR_LIMIT = 1024;

/** Resolves once `uid`'s own keyrings are empty; rejects (internal) naming the helper's failure. */
export async function clearUidKeys(uid: number, helper: string): Promise<void> {
  const child = spawn(helper, ['--clear-keys', String(uid)], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: {},
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => {
    stderr = (stderr + text).slice(0, STDERR_LIMIT);
  });
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0) {
    throw new JobworkerError(
      ErrorCode.Internal,
      `cannot clear the keyrings of uid ${uid}: the native helper exited with ${code ?? 'a signal'}: ${stderr.trim()}`,
    );
  }
}
