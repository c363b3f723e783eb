/**
 * Persistence across restarts of the job library, with real processes and
 * real files (plain isolation; the real one and SIGKILL are in
 * persist-crash.test.ts): a clean restart, damaged records and logs, half-made
 * job directories and a torn log tail of a job that was running at a crash.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { appendFile, mkdir, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { JobworkerError } from '../../src/errors.js';
import { newJobId, type OutputEvent } from '../../src/job/index.js';
import { dataHeader } from '../../src/job/log-format.js';
import { readAll, spec, waitForOutput } from '../helpers/job-fixture.js';
import { persistFixture, runToEnd } from '../helpers/persist-fixture.js';

/** The stored time of each chunk. */
const storedTimes = (events: readonly OutputEvent[]): (number | null)[] =>
  events.flatMap((e) => (e.type === 'chunk' ? [e.storedAtMs] : []));

function notFound(err: unknown): boolean {
  assert.ok(err instanceof JobworkerError, String(err));
  assert.equal(err.code, 'not_found', err.message);
  return true;
}

test('a clean restart lists every job with its full report and streams output byte-exact', async () => {
  const fx = await persistFixture();
  try {
    const first = await fx.open();
    const done = await runToEnd(first, [
      'sh',
      '-c',
      'printf "a\\000\\377b"; head -c 100000 /dev/zero; printf oops >&2; exit 2',
    ]);
    const running = await first.start('bob', spec(['sh', '-c', 'printf ready; exec sleep 1000']));
    await waitForOutput(first, running.id, 'ready');
    const before = await readAll(first, done.id);
    await first.shutdown();
    const stopped = first.get(running.id);
    assert.equal(stopped.endReason, 'stopped');

    const second = await fx.open();
    assert.deepEqual(second.recovery, {
      restored: 2,
      lost: 0,
      damaged: [],
      halfMadeRemoved: 0,
      leftoverCgroups: null,
    });
    assert.deepEqual(second.list(), [stopped, done]);
    assert.equal(second.get(done.id).exitCode, 2);
    const after = await readAll(second, done.id);
    assert.deepEqual(after.stdout, before.stdout);
    assert.equal(after.stderr.toString(), 'oops');
    assert.deepEqual(after.finished, done);
    assert.deepEqual(done.stdout.sha256, createHash('sha256').update(after.stdout).digest());
    // From an offset inside a record, too.
    const tail = await readAll(second, done.id, { stdoutOffset: 2, stream: 'stdout' });
    assert.deepEqual(tail.stdout, before.stdout.subarray(2));
    // Each chunk's stored time, and a tail found from the last SYNC record the record keeps.
    assert.deepEqual(storedTimes(after.events), storedTimes(before.events));
    assert.ok(storedTimes(before.events).every((t) => t !== null && t >= done.startedAt.getTime()));
    // Stdout has no newline: with stderr after it, one line; alone, one line too.
    const last = await readAll(second, done.id, { tailLines: 1, stream: 'stdout' });
    assert.deepEqual(last.stdout, before.stdout);
    const none = await readAll(second, done.id, { tailLines: 0 });
    assert.equal(none.events.length, 1, 'only the finished event');
    assert.deepEqual(fx.warnings, []);
  } finally {
    await fx.close();
  }
});

test('damaged records and logs are reported and skipped; half-made directories removed', async () => {
  const fx = await persistFixture();
  try {
    const first = await fx.open();
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await runToEnd(first, ['printf', `job ${i}`])).id);
    await first.shutdown();
    const [torn, wrongShape, shortLog, intact] = ids as [string, string, string, string];
    const record = (id: string) => join(fx.jobsDir, id, 'record.json');
    // A record cut short (as by a crash of a non-atomic writer), one of the wrong shape, a log cut short.
    const text = await readFile(record(torn), 'utf8');
    await writeFile(record(torn), text.slice(0, text.length / 2));
    const valid = JSON.parse(await readFile(record(wrongShape), 'utf8')) as object;
    await writeFile(record(wrongShape), JSON.stringify({ ...valid, owner: 7 }));
    await truncate(join(fx.jobsDir, shortLog, 'output.log'), 5);
    // A job directory without a record (crash before the first record) and a stranger.
    const halfMade = newJobId();
    await mkdir(join(fx.jobsDir, halfMade));
    await writeFile(join(fx.jobsDir, halfMade, 'output.log'), '');
    await writeFile(join(fx.jobsDir, 'README'), 'not a job');

    const second = await fx.open();
    assert.deepEqual(
      second.list().map((s) => s.id),
      [intact],
    );
    assert.equal((await readAll(second, intact)).stdout.toString(), 'job 3');
    const damaged = new Map(second.recovery.damaged.map((d) => [d.id, d.reason]));
    assert.deepEqual([...damaged.keys()].sort(), [torn, wrongShape, shortLog].sort());
    assert.match(damaged.get(torn) ?? '', /not JSON/);
    assert.match(damaged.get(wrongShape) ?? '', /owner is not a string/);
    assert.match(damaged.get(shortLog) ?? '', /output log is 5 bytes, the record says \d+/);
    assert.equal(second.recovery.halfMadeRemoved, 1);
    await assert.rejects(stat(join(fx.jobsDir, halfMade)), { code: 'ENOENT' });
    assert.ok((await stat(join(fx.jobsDir, 'README'))).isFile(), 'a stranger is left alone');
    for (const id of [torn, wrongShape, shortLog]) {
      assert.throws(() => second.get(id), notFound);
      assert.ok(
        fx.warnings.some((w) => w.includes(`skipping damaged job ${id}`)),
        id,
      );
    }
    assert.ok(
      fx.warnings.some((w) => w.includes('"README"')),
      fx.warnings.join('\n'),
    );
  } finally {
    await fx.close();
  }
});

test('a job running at a crash is finished as lost; a torn log tail is cut off', async () => {
  const fx = await persistFixture();
  try {
    const first = await fx.open();
    const job = await runToEnd(first, ['sh', '-c', 'printf hello; printf world >&2']);
    const times = storedTimes((await readAll(first, job.id)).events);
    await first.shutdown();
    // Play the crash: the record as written at start (running), and a last record cut mid-write.
    const recordPath = join(fx.jobsDir, job.id, 'record.json');
    const logPath = join(fx.jobsDir, job.id, 'output.log');
    const stored = JSON.parse(await readFile(recordPath, 'utf8')) as Record<string, unknown>;
    const atStart = {
      ...stored,
      state: 'running',
      endReason: null,
      exitCode: null,
      finishedAtMs: null,
      usage: null,
      logBytes: null,
      lastSyncAt: null,
      stdout: { storedBytes: 0, droppedBytes: 0, sha256Hex: null, incompleteAt: null },
      stderr: { storedBytes: 0, droppedBytes: 0, sha256Hex: null, incompleteAt: null },
    };
    await writeFile(recordPath, JSON.stringify(atStart));
    const whole = (await stat(logPath)).size;
    await appendFile(
      logPath,
      Buffer.concat([dataHeader('stdout', 100, 5), Buffer.from('partial')]),
    );

    const second = await fx.open();
    assert.deepEqual([second.recovery.restored, second.recovery.lost], [0, 1]);
    const lost = second.get(job.id);
    assert.equal(lost.state, 'finished');
    assert.equal(lost.endReason, 'lost');
    assert.equal(lost.exitCode, null);
    assert.deepEqual(lost.stdout.sha256, job.stdout.sha256);
    assert.deepEqual(lost.stderr.sha256, job.stderr.sha256);
    const out = await readAll(second, job.id);
    assert.deepEqual([out.stdout.toString(), out.stderr.toString()], ['hello', 'world']);
    assert.equal((await stat(logPath)).size, whole, 'the torn record was cut off the file');
    // The scan found the last SYNC record: times and tails as before the crash.
    assert.deepEqual(storedTimes(out.events), times);
    const tail = await readAll(second, job.id, { tailLines: 1, stream: 'stderr' });
    assert.equal(tail.stderr.toString(), 'world');
    assert.ok(
      fx.warnings.some((w) => w.includes('torn record at byte')),
      fx.warnings.join('\n'),
    );
    await second.shutdown();
    // The recovered record is final: a third start restores it as it is.
    const third = await fx.open();
    assert.deepEqual([third.recovery.restored, third.recovery.lost], [1, 0]);
    assert.deepEqual(third.get(job.id), lost);
  } finally {
    await fx.close();
  }
});
