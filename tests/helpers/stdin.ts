/** Helpers for tests of a job's input (JobManager.attach). */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { JobworkerError } from '../../src/errors.js';
import type { Attachment } from '../../src/job/index.js';

/** Asserts that `promise` rejects with a JobworkerError of `code`. */
export async function rejectsWith(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof JobworkerError, String(err));
    assert.equal(err.code, code, err.message);
    return true;
  });
}

/** Asserts that `fn` throws a JobworkerError of `code`. */
export function throwsWith(fn: () => unknown, code: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof JobworkerError, String(err));
    assert.equal(err.code, code, err.message);
    return true;
  });
}

/**
 * Writes `chunk` again and again, up to `offered` bytes, until a write has
 * not completed for a second (it waits for room that never comes). Tests
 * assert on the bytes, not the time: a slow machine only stops earlier.
 * Returns the bytes accepted and the write left pending (null: none waited).
 */
export async function writeUntilWaiting(
  writer: Attachment,
  chunk: Buffer,
  offered: number,
): Promise<{ accepted: number; pending: Promise<void> | null }> {
  let accepted = 0;
  while (accepted < offered) {
    const write = writer.write(chunk);
    const timer = new AbortController();
    const done = await Promise.race([
      write.then(() => true),
      sleep(1000, false, { signal: timer.signal }),
    ]);
    timer.abort();
    if (!done) return { accepted, pending: write };
    accepted += chunk.length;
  }
  return { accepted, pending: null };
}
