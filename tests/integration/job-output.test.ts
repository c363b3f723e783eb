/**
 * Followers of a job's output against every isolation of
 * tests/helpers/isolations.ts: many followers joining during fast output, a
 * paused follower, a thousand cancelled followers, the output cap.
 */
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { execFile } from 'node:child_process';
import { chmod, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setImmediate } from 'node:timers/promises';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { JobworkerError } from '../../src/errors.js';
import { isolationFactories } from '../helpers/isolations.js';
import {
  hashFollow,
  newFixture,
  readAll,
  spec,
  waitForOutput,
  type Fixture,
  type Hashed,
} from '../helpers/job-fixture.js';
import { jobScratchDir } from '../helpers/scratch.js';

const MiB = 1024 * 1024;
const run = promisify(execFile);

/** A forced full GC, so that heap figures measure what is retained rather than garbage. */
function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

/** Bytes of JS heap and Buffers in use, after a full GC. */
function retainedBytes(): number {
  collectGarbage();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

const openFds = async (): Promise<number> => (await readdir('/proc/self/fd')).length;

for (const factory of isolationFactories) {
  describe(`job output followers (${factory.name} isolation)`, () => {
    let fx: Fixture;
    let scratch: string;
    before(async () => {
      fx = await newFixture(factory);
      // World-readable, so that a job running as an unprivileged user can reach it.
      scratch = await jobScratchDir('scratch-');
      await chmod(scratch, 0o755);
    });
    after(async () => {
      await fx.close();
      await rm(scratch, { recursive: true, force: true });
    });

    test('20 followers joining at random moments of fast output, and a late joiner, all get the recorded digest', async () => {
      const size = 32 * MiB;
      const job = await fx.jobs.start('alice', spec(['head', '-c', String(size), '/dev/urandom']));
      // Join points are random offsets seen by a pilot follower, so that joins land while the job writes.
      const joinAt = Array.from({ length: 20 }, () => Math.floor(Math.random() * size)).sort(
        (a, b) => a - b,
      );
      const followers: Promise<Hashed>[] = [];
      const pilot = await hashFollow(fx.jobs, job.id, {}, (offset) => {
        while (joinAt.length > 0 && (joinAt[0] ?? 0) <= offset) {
          joinAt.shift();
          followers.push(hashFollow(fx.jobs, job.id));
        }
        return undefined;
      });
      // Joins at the moment the pilot saw the end, and after the job has finished.
      followers.push(hashFollow(fx.jobs, job.id));
      const results = await Promise.all(followers);
      results.push(await hashFollow(fx.jobs, job.id), pilot);
      const final = fx.jobs.get(job.id);
      assert.equal(final.state, 'finished');
      assert.equal(final.stdout.storedBytes, size);
      assert.ok(final.stdout.sha256);
      assert.equal(results.length, 23);
      for (const r of results) {
        assert.equal(r.stdoutBytes, size);
        assert.deepEqual(r.stdoutSha256, final.stdout.sha256);
        assert.equal(r.finished?.state, 'finished');
        assert.deepEqual(r.finished.stdout.sha256, final.stdout.sha256);
      }
      assert.deepEqual(fx.jobs.followerStats(job.id), { open: 0, waiting: 0 });
    });

    test('a follower paused for the whole job slows neither the job nor others, and memory stays bounded', async (t) => {
      const size = 128 * MiB;
      const before = retainedBytes();
      const job = await fx.jobs.start('alice', spec(['head', '-c', String(size), '/dev/zero']));
      let release: () => void = () => undefined;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let pausedAt = -1;
      const paused = hashFollow(fx.jobs, job.id, {}, (offset) => {
        if (pausedAt >= 0) return undefined;
        pausedAt = offset;
        return gate;
      });
      // A fast follower reads everything and sees the end while the paused one sleeps on its first chunk.
      const fast = await hashFollow(fx.jobs, job.id);
      assert.equal(fast.stdoutBytes, size);
      assert.equal(fx.jobs.get(job.id).state, 'finished');
      assert.ok(
        pausedAt > 0 && pausedAt <= 1 * MiB,
        `paused follower read only its first chunk (${pausedAt})`,
      );
      const grown = retainedBytes() - before;
      t.diagnostic(
        `retained memory growth with a paused follower: ${(grown / MiB).toFixed(1)} MiB for ${size / MiB} MiB written`,
      );
      // Nothing buffers the job's output for the paused follower: far less than the 128 MiB written.
      assert.ok(grown < 32 * MiB, `retained memory grew by ${(grown / MiB).toFixed(1)} MiB`);
      release();
      const late = await paused;
      assert.equal(late.stdoutBytes, size);
      assert.deepEqual(late.stdoutSha256, fast.stdoutSha256);
    });

    test('1,000 followers cancelled mid-stream leave no file handle, waiter or listener', async () => {
      // The job prints 1 MiB, then one line when the test writes to the FIFO.
      const fifo = join(scratch, 'go');
      await run('mkfifo', ['-m', '0666', fifo]);
      const job = await fx.jobs.start(
        'alice',
        spec([
          'sh',
          '-c',
          `head -c 1048576 /dev/zero; read x < ${fifo}; echo tick; exec sleep 1000`,
        ]),
      );
      const fdsBefore = await openFds();
      const shared = new AbortController();
      const idle = new AbortController();
      // 100 followers that sleep until the line comes, are woken with it, then stop iterating.
      const woken = Array.from({ length: 100 }, async () => {
        for await (const e of fx.jobs.output(job.id, {
          follow: true,
          stdoutOffset: 1048576,
          signal: shared.signal,
        })) {
          if (e.type === 'chunk') break;
        }
      });
      // 100 followers with nothing to read ever: they sleep until aborted.
      const sleepers = Array.from({ length: 100 }, async () => {
        for await (const event of fx.jobs.output(job.id, {
          follow: true,
          stdoutOffset: 2 ** 40,
          signal: idle.signal,
        })) {
          assert.fail(`nothing is stored at that offset, got ${event.type}`);
        }
      });
      // No event says "all asleep": yield to the event loop until the count shows it.
      while (fx.jobs.followerStats(job.id).waiting < 200) await setImmediate();
      // 1,000 followers from the start, cancelled after their first chunk, half by abort, half by return().
      const cancelled = Array.from({ length: 1000 }, async (_, i) => {
        const own = new AbortController();
        const it = fx.jobs
          .output(job.id, { follow: true, signal: i % 2 === 0 ? own.signal : shared.signal })
          [Symbol.asyncIterator]();
        assert.equal((await it.next()).done, false);
        if (i % 2 === 0) {
          own.abort();
          await assert.rejects(
            it.next(),
            (err: unknown) => err instanceof JobworkerError && err.code === 'cancelled',
          );
        } else {
          // The consumer stops iterating (as a `break` does).
          await it.return?.(undefined);
        }
      });
      await writeFile(fifo, 'go\n');
      await Promise.all([...cancelled, ...woken]);
      idle.abort();
      const ended = await Promise.allSettled(sleepers);
      assert.ok(
        ended.every(
          (r) =>
            r.status === 'rejected' &&
            r.reason instanceof JobworkerError &&
            r.reason.code === 'cancelled',
        ),
      );
      assert.deepEqual(fx.jobs.followerStats(job.id), { open: 0, waiting: 0 });
      assert.equal(
        getEventListeners(shared.signal, 'abort').length,
        0,
        'listeners left on a live signal',
      );
      assert.equal(getEventListeners(idle.signal, 'abort').length, 0);
      assert.equal(await openFds(), fdsBefore, 'file descriptors left open');
      const stopped = await fx.jobs.stop(job.id, 'alice');
      assert.equal(stopped.endReason, 'stopped');
    });

    test('without follow, output ends after what is stored now', async () => {
      const job = await fx.jobs.start('alice', spec(['sh', '-c', 'printf first; exec sleep 1000']));
      await waitForOutput(fx.jobs, job.id, 'first');
      const now = await readAll(fx.jobs, job.id, { follow: false });
      assert.equal(now.stdout.toString(), 'first');
      assert.equal(now.finished, null);
      await fx.jobs.stop(job.id, 'alice');
    });
  });

  describe(`output cap (${factory.name} isolation)`, () => {
    test('past the cap the job keeps running, the rest is counted and followers see the marker', async () => {
      const fx = await newFixture(factory, { outputCapBytes: 1000 });
      try {
        const job = await fx.jobs.start(
          'alice',
          spec(['sh', '-c', 'head -c 5000 /dev/zero; printf more >&2; exit 7']),
        );
        const { events, stdout, stderr, finished } = await readAll(fx.jobs, job.id);
        assert.equal(stdout.length, 1000);
        assert.equal(stderr.length, 0);
        const marks = events.filter((e) => e.type === 'truncated');
        assert.deepEqual(marks, [{ type: 'truncated', capBytes: 1000 }]);
        assert.equal(
          events.findIndex((e) => e.type === 'truncated'),
          events.length - 2,
          'marker after the last stored byte',
        );
        assert.ok(finished);
        assert.equal(finished.exitCode, 7, 'the job ran to its end');
        assert.equal(finished.outputTruncated, true);
        assert.deepEqual([finished.stdout.storedBytes, finished.stdout.droppedBytes], [1000, 4000]);
        assert.deepEqual([finished.stderr.storedBytes, finished.stderr.droppedBytes], [0, 4]);
        // A follower from an offset past the cap still sees the marker and the end.
        const tail = await readAll(fx.jobs, job.id, { stdoutOffset: 1000 });
        assert.deepEqual(
          tail.events.map((e) => e.type),
          ['truncated', 'finished'],
        );
      } finally {
        await fx.close();
      }
    });

    test('megabytes past the cap: counted to the byte, the job runs to its end', async () => {
      // Past the cap the helper discards (paced) instead of relaying: the counts
      // then come from the helper's own, and must be what the job wrote.
      const past = 24 * 1024 * 1024 + 7;
      const fx = await newFixture(factory, { outputCapBytes: 1000 });
      try {
        const job = await fx.jobs.start(
          'alice',
          spec(['sh', '-c', `head -c ${String(past)} /dev/zero; printf abc >&2; exit 9`]),
        );
        const { stdout, finished } = await readAll(fx.jobs, job.id);
        assert.equal(stdout.length, 1000);
        assert.ok(finished);
        assert.equal(finished.exitCode, 9, 'the job ran to its end');
        assert.deepEqual(
          [finished.stdout.storedBytes, finished.stdout.droppedBytes],
          [1000, past - 1000],
        );
        assert.deepEqual([finished.stderr.storedBytes, finished.stderr.droppedBytes], [0, 3]);
        assert.deepEqual(fx.jobs.get(job.id).stdout, finished.stdout);
      } finally {
        await fx.close();
      }
    });
  });
}
