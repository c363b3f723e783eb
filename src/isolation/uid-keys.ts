/**
 * Empties the kernel keyrings a uid owns by itself (user, user session and
 * persistent keyrings: they outlive every process of the uid), through the
 * native helper's `--clear-keys` mode (native/uid-keys.c), which must run as
 * root. The job layer calls it before a uid's first job for a new owner.
 */
import { ErrorCode, JobworkerError } from '../errors.js';
import { runHelperMode } from './helper-mode.js';

/** Resolves once `uid`'s own keyrings are empty; rejects (internal) naming the helper's failure. */
export async function clearUidKeys(uid: number, helper: string): Promise<void> {
  const { code, stderr } = await runHelperMode(helper, ['--clear-keys', String(uid)]);
  if (code !== 0) {
    throw new JobworkerError(
      ErrorCode.Internal,
      `cannot clear the keyrings of uid ${uid}: the native helper exited with ${code ?? 'a signal'}: ${stderr}`,
    );
  }
}
