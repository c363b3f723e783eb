/**
 * Retention with real processes and files: finished jobs go after the
 * retention period (the clock is moved, not waited for) and, oldest first,
 * when their output exceeds the disk budget; running jobs stay; a follower
 * of a removed job ends with not_found and its file is closed.
 */
import assert from 'node:assert/strict';
import { readdir, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { JobworkerError } from '../../src/errors.js';
import { DEFAULT_RETENTION_MS, type JobEvent } from '../../src/job/index.js';
import { spec, waitForOutput } from '../helpers/job-fixture.js';
import { persistFixture, runToEnd } from '../helpers/persist-fixture.js';

/** Paths this process has open (from /proc/self/fd). */
async function openPaths(): Promise<string[]> {
  const out: string[] = [];
  for (const fd of await readdir('/proc/self/fd')) {
    out.push(await readlink(`/proc/self/fd/${fd}`).catch(() => ''));
  }
  return out;
}

test('finished jobs are removed after the retention period, at open and by the sweep; running ones stay', async () => {
  const fx = await persistFixture();
  try {
    const events: JobEvent[] = [];
    const jobs = await fx.open({ onEvent: (e) => events.push(e) });
    const old = await runToEnd(jobs, ['printf', 'old']);
    const running = await jobs.start('bob', spec(['sh', '-c', 'printf up; exec sleep 1000']));
    await waitForOutput(jobs, running.id, 'up');
    fx.skewMs = DEFAULT_RETENTION_MS - 60_000;
    jobs.sweepRetention();
    await jobs.retentionIdle();
    assert.equal(jobs.get(old.id).state, 'finished', 'kept within the period');
    fx.skewMs = DEFAULT_RETENTION_MS + 60_000;
    jobs.sweepRetention();
    await jobs.retentionIdle();
    assert.throws(() => jobs.get(old.id), { code: 'not_found' });
    await assert.rejects(stat(join(fx.jobsDir, old.id)), { code: 'ENOENT' });
    assert.equal(jobs.get(running.id).state, 'running', 'a running job is never removed');
    await jobs.shutdown();
    // What the metrics count (src/api/metrics.ts).
    assert.deepEqual(events, [
      { type: 'started' },
      { type: 'finished', reason: 'exited' },
      { type: 'started' },
      { type: 'removed', reason: 'age' },
      { type: 'finished', reason: 'stopped' },
    ]);

    // At open: the job stopped by the shutdown is old by the (skewed) clock at the next open.
    fx.skewMs = 0;
    const kept = await fx.open();
    assert.equal(kept.get(running.id).endReason, 'stopped');
    await kept.shutdown();
    fx.skewMs = DEFAULT_RETENTION_MS + 60_000;
    const later = await fx.open();
    assert.deepEqual(later.list(), []);
    assert.deepEqual(await readdir(fx.jobsDir), []);
  } finally {
    await fx.close();
  }
});

test('over the disk budget the oldest finished jobs go first', async () => {
  const fx = await persistFixture();
  try {
    // Each job stores 1000 bytes (plus 16-byte record headers): three exceed 2500 bytes.
    const jobs = await fx.open({ diskBudgetBytes: 2500 });
    const running = await jobs.start(
      'bob',
      spec(['sh', '-c', 'head -c 3000 /dev/zero; exec sleep 1000']),
    );
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      ids.push((await runToEnd(jobs, ['head', '-c', '1000', '/dev/zero'])).id);
      jobs.sweepRetention();
      await jobs.retentionIdle();
    }
    assert.deepEqual(
      jobs.list().map((s) => s.id),
      [ids[3], ids[2], running.id],
    );
    for (const id of ids.slice(0, 2))
      await assert.rejects(stat(join(fx.jobsDir, id)), { code: 'ENOENT' });
  } finally {
    await fx.close();
  }
});

test('a follower of a job removed by retention ends with not_found and closes its file', async () => {
  const fx = await persistFixture();
  try {
    const jobs = await fx.open();
    // Several 64 KiB reads: the follower is mid-stream when the job goes.
    const job = await runToEnd(jobs, ['head', '-c', '1000000', '/dev/zero']);
    const logPath = join(fx.jobsDir, job.id, 'output.log');
    const follower = jobs.output(job.id, { follow: true })[Symbol.asyncIterator]();
    const first = await follower.next();
    assert.equal(first.done, false);
    assert.ok((await openPaths()).includes(logPath), 'the follower has the log open');
    fx.skewMs = DEFAULT_RETENTION_MS + 60_000;
    jobs.sweepRetention();
    await jobs.retentionIdle();
    await assert.rejects(
      async () => {
        while (!(await follower.next()).done);
      },
      (err: unknown) => {
        assert.ok(err instanceof JobworkerError, String(err));
        assert.equal(err.code, 'not_found');
        assert.equal(err.message, `job ${job.id} was removed by retention`);
        return true;
      },
    );
    const open = await openPaths();
    assert.ok(!open.some((p) => p.startsWith(logPath)), `log still open: ${open.join(' ')}`);
  } finally {
    await fx.close();
  }
});

test('finished jobs without output go by count too: per owner, then in all, oldest first', async () => {
  const fx = await persistFixture();
  try {
    const jobs = await fx.open({ maxFinishedJobs: 3, maxFinishedJobsPerOwner: 2 });
    const ids: string[] = [];
    for (const owner of ['alice', 'alice', 'alice', 'bob', 'bob']) {
      ids.push((await runToEnd(jobs, ['true'], owner)).id);
      await jobs.retentionIdle();
    }
    const [a1, a2, a3, b1, b2] = ids;
    assert.deepEqual(new Set(jobs.list().map((s) => s.id)), new Set([a3, b1, b2]));
    for (const id of [a1, a2])
      await assert.rejects(stat(join(fx.jobsDir, id ?? '')), { code: 'ENOENT' });
    await jobs.shutdown();
    // The rules hold at open too.
    const reopened = await fx.open({ maxFinishedJobs: 1 });
    assert.deepEqual(
      reopened.list().map((s) => s.id),
      [b2],
    );
  } finally {
    await fx.close();
  }
});
