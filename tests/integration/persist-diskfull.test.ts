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
import {
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  statfs,
  truncate,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { JobworkerError } from '../../src/errors.js';
import { newJobId } from '../../src/job/index.js';
import type { JobRecord } from '../../src/job/job.js';
import { parseRecord } from '../../src/job/record-schema.js';
import {
  RECORD_FILE,
  reserveRecordSpace,
  writeFinalRecord,
  writeRecord,
} from '../../src/job/store.js';
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
        // Sent to the client as it is: no server path in it.
        assert.ok(!err.message.includes(mountPoint), err.message);
        assert.match(err.message, /^output storage full \(ENOSPC\): /);
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

/** A finished job's record, for the store-level test. */
function finishedRecord(id: string): JobRecord {
  const stream = { storedBytes: 0, droppedBytes: 0, sha256Hex: null, incompleteAt: null };
  return {
    id,
    owner: 'alice',
    uid: 60514,
    argv: ['true'],
    cwd: '/',
    stdin: false,
    tty: false,
    hostNetwork: false,
    limits: { cpuMillis: 1000, memoryBytes: 1 << 20, ioReadBps: 0, ioWriteBps: 0, pidsMax: 1 },
    startedAtMs: 1,
    state: 'finished',
    endReason: 'exited',
    exitCode: 0,
    signal: null,
    oomKilled: false,
    stoppedBy: null,
    finishedAtMs: 2,
    usage: null,
    stdout: stream,
    stderr: stream,
    outputTruncated: false,
    name: null,
    labels: {},
    outputIncomplete: false,
    logBytes: 0,
    lastSyncAt: null,
    timeoutMs: 0,
  };
}

test(
  'on a full disk the final record is written in the room reserved at start',
  { skip: requiresRoot(), timeout: 60_000 },
  async () => {
    const mountPoint = await mkdtemp(join(tmpdir(), 'jobworker-full-'));
    await run('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', mountPoint]);
    try {
      const id = newJobId();
      const dir = join(mountPoint, id);
      await mkdir(dir);
      // Several pages long (a long argv), so that a write can be cut short.
      const final = { ...finishedRecord(id), argv: ['sh', '-c', 'x'.repeat(20_000)] };
      const atStart: JobRecord = { ...final, state: 'running', endReason: null, logBytes: null };
      await reserveRecordSpace(dir, atStart);
      await writeRecord(dir, atStart);
      await writeFile(join(mountPoint, 'filler'), Buffer.alloc(1 << 20)).catch(() => undefined);
      // Really full: a plain replace fails, and the old record is intact.
      await assert.rejects(writeRecord(dir, final), { code: 'resource_exhausted' });
      assert.deepEqual(parseRecord(await readFile(join(dir, RECORD_FILE), 'utf8'), id), atStart);
      // A reservation lost to a crash (its blocks never written back) cannot be grown on a
      // full disk: the write fails whole, and the start record stays.
      const reserve = join(dir, 'record.reserve');
      const saved = await readFile(reserve);
      await truncate(reserve, 0);
      // Full but for one page: a plain write() of the record would be short, not failed.
      const refill = join(mountPoint, 'refill');
      const { bavail, bsize } = await statfs(mountPoint);
      await writeFile(refill, Buffer.alloc(Math.max(0, bavail * bsize - 4096)));
      await assert.rejects(writeFinalRecord(dir, final), { code: 'resource_exhausted' });
      assert.deepEqual(parseRecord(await readFile(join(dir, RECORD_FILE), 'utf8'), id), atStart);
      await rm(refill);
      await writeFile(reserve, saved);
      await writeFinalRecord(dir, final);
      assert.deepEqual(parseRecord(await readFile(join(dir, RECORD_FILE), 'utf8'), id), final);
    } finally {
      await run('umount', [mountPoint]);
      await rm(mountPoint, { recursive: true, force: true });
    }
  },
);
