/**
 * A full file system under the state directory (a 1 MiB tmpfs mounted by the
 * test) while a job writes: the job runs to its end, its status says its
 * output is incomplete and from which offset, the record still persists,
 * new starts fail with resource_exhausted, and a job on a healthy state
 * directory is unaffected. Root only (mount).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { JobworkerError } from '../../src/errors.js';
import { readAll, spec } from '../helpers/job-fixture.js';
import { requiresRoot } from '../helpers/guards.js';
import { persistFixture, runToEnd } from '../helpers/persist-fixture.js';

const run = promisify(execFile);
const WRITTEN = 4_000_000;

test(
  'a full disk makes a job output incomplete, not the server fail',
  { skip: requiresRoot(), timeout: 120_000 },
  async (t) => {
    const mountPoint = await mkdtemp(join(tmpdir(), 'jobworker-full-'));
    await run('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0700', 'tmpfs', mountPoint]);
    const full = await persistFixture(mountPoint);
    const healthy = await persistFixture();
    try {
      const jobs = await full.open();
      const other = await healthy.open();
      // Both at once: the healthy job must not notice the other's full disk.
      const [status, fine] = await Promise.all([
        runToEnd(jobs, ['sh', '-c', `head -c ${WRITTEN} /dev/zero; echo finished >&2; exit 4`]),
        runToEnd(other, ['head', '-c', String(WRITTEN), '/dev/zero']),
      ]);
      // The job was never blocked: it wrote everything and exited by itself.
      assert.equal(status.endReason, 'exited');
      assert.equal(status.exitCode, 4);
      assert.equal(status.outputIncomplete, true);
      assert.ok(status.stdout.storedBytes < WRITTEN, String(status.stdout.storedBytes));
      assert.equal(status.stdout.incompleteAt, status.stdout.storedBytes);
      assert.equal(status.stdout.storedBytes + status.stdout.droppedBytes, WRITTEN);
      assert.equal(status.stderr.incompleteAt, status.stderr.storedBytes);
      const out = await readAll(jobs, status.id);
      assert.equal(out.stdout.length, status.stdout.storedBytes);
      assert.deepEqual(status.stdout.sha256, createHash('sha256').update(out.stdout).digest());

      assert.equal(fine.outputIncomplete, false);
      assert.equal(fine.stdout.storedBytes, WRITTEN);
      assert.equal(fine.stdout.incompleteAt, null);

      // Fill what the failed job left free (it cut its log back to whole records):
      // a start then fails cleanly, and leaves nothing behind.
      await writeFile(join(mountPoint, 'filler'), Buffer.alloc(2 << 20)).catch((err: unknown) => {
        assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
      });
      await assert.rejects(jobs.start('alice', spec(['true'])), (err: unknown) => {
        assert.ok(err instanceof JobworkerError, String(err));
        assert.equal(err.code, 'resource_exhausted', err.message);
        return true;
      });
      assert.deepEqual(
        jobs.list().map((s) => s.id),
        [status.id],
      );
      assert.deepEqual(await readdir(full.jobsDir), [status.id]);
      // The final record made it to the full disk (the reservation made room) and is found again.
      await jobs.shutdown();
      const reopened = await full.open();
      assert.deepEqual(reopened.get(status.id), status);
      assert.deepEqual(reopened.recovery.damaged, []);
      assert.deepEqual(full.warnings, []);
      const used = (await stat(join(full.jobsDir, status.id, 'output.log'))).size;
      t.diagnostic(
        `stored ${status.stdout.storedBytes} of ${WRITTEN} bytes on a 1 MiB tmpfs (log ${used} bytes)`,
      );
    } finally {
      await full.close();
      await healthy.close();
      await run('umount', [mountPoint]);
      await rm(mountPoint, { recursive: true, force: true });
    }
  },
);
