/**
 * Job library lifecycle against every isolation of tests/helpers/isolations.ts:
 * real processes, real files. Start, exit reports, start failures that leave
 * nothing behind, the environment, stop (grace, escalation, idempotence) and
 * shutdown.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { JobworkerError, type ErrorCode } from '../../src/errors.js';
import { DEFAULT_PATH, type JobStatus } from '../../src/job/index.js';
import { isolationFactories, realIsolationFactory } from '../helpers/isolations.js';
import { newFixture, readAll, spec, waitForOutput, type Fixture } from '../helpers/job-fixture.js';
import { jobScratchDir } from '../helpers/scratch.js';

const run = promisify(execFile);

function isCode(code: ErrorCode, message?: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof JobworkerError, `expected a JobworkerError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    return true;
  };
}

/** A shell job that ignores SIGTERM (its children inherit the ignored disposition) and says when it is ready. */
const IGNORES_TERM = ['sh', '-c', 'trap "" TERM; printf ready; while :; do sleep 1; done'];

for (const factory of isolationFactories) {
  describe(`job lifecycle (${factory.name} isolation)`, () => {
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

    test('binary output round-trips exactly: NUL, 0xff, no trailing newline', async () => {
      const started = await fx.jobs.start('alice', spec(['printf', 'a\\000\\377b\\nlast']));
      assert.equal(started.state, 'running');
      assert.equal(started.owner, 'alice');
      const { stdout, stderr, finished } = await readAll(fx.jobs, started.id);
      assert.deepEqual(stdout, Buffer.from('a\x00\xffb\nlast', 'latin1'));
      assert.equal(stderr.length, 0);
      assert.ok(finished);
      assert.equal(finished.endReason, 'exited');
      assert.equal(finished.exitCode, 0);
      assert.equal(finished.stdout.storedBytes, 9);
      assert.deepEqual(finished.stdout.sha256, createHash('sha256').update(stdout).digest());
      assert.deepEqual(finished.stderr.sha256, createHash('sha256').digest());
    });

    test('stdout and stderr are kept apart, with their own offsets, in the order they were written', async () => {
      // FIFOs make the job wait until the test has seen each piece: the order is then certain.
      const f1 = join(scratch, 'f1');
      const f2 = join(scratch, 'f2');
      await run('mkfifo', ['-m', '0666', f1, f2]);
      const job = await fx.jobs.start(
        'alice',
        spec([
          'sh',
          '-c',
          `printf out1; read a < ${f1}; printf err1 >&2; read b < ${f2}; printf out2`,
        ]),
      );
      const seen: string[] = [];
      for await (const e of fx.jobs.output(job.id, { follow: true })) {
        if (e.type !== 'chunk') break;
        seen.push(`${e.stream}@${e.offset}:${e.data.toString()}`);
        if (e.data.toString() === 'out1') await writeFile(f1, 'go\n');
        if (e.data.toString() === 'err1') await writeFile(f2, 'go\n');
      }
      assert.deepEqual(seen, ['stdout@0:out1', 'stderr@0:err1', 'stdout@4:out2']);
      const again = await readAll(fx.jobs, job.id);
      assert.equal(again.stdout.toString(), 'out1out2');
      assert.equal(again.stderr.toString(), 'err1');
      const onlyErr = await readAll(fx.jobs, job.id, { stream: 'stderr' });
      assert.equal(onlyErr.stdout.length, 0);
      assert.equal(onlyErr.stderr.toString(), 'err1');
    });

    test('exit codes and signals are reported with the reason', async () => {
      const three = await fx.jobs.start('bob', spec(['sh', '-c', 'exit 3']));
      const killed = await fx.jobs.start('bob', spec(['sh', '-c', 'kill -9 $$']));
      const a = (await readAll(fx.jobs, three.id)).finished;
      const b = (await readAll(fx.jobs, killed.id)).finished;
      assert.deepEqual([a?.endReason, a?.exitCode, a?.signal], ['exited', 3, null]);
      assert.deepEqual([b?.endReason, b?.exitCode, b?.signal], ['signaled', null, 9]);
      assert.ok(b?.finishedAt instanceof Date && b.finishedAt >= b.startedAt);
      assert.ok(b.usage !== null);
    });

    test("the server's environment does not reach the job; PATH defaults", async () => {
      process.env['JOBWORKER_TEST_SECRET'] = 's3cret';
      try {
        const job = await fx.jobs.start('alice', spec(['env'], ['GREETING=hi there']));
        const lines = (await readAll(fx.jobs, job.id)).stdout
          .toString()
          .split('\n')
          .filter(Boolean)
          .sort();
        assert.deepEqual(lines, ['GREETING=hi there', `PATH=${DEFAULT_PATH}`]);
      } finally {
        delete process.env['JOBWORKER_TEST_SECRET'];
      }
    });

    test('failed starts give coded errors and leave nothing behind', async () => {
      const notExec = join(scratch, 'not-executable');
      await writeFile(notExec, '#!/bin/sh\necho hi\n', { mode: 0o644 });
      const before = fx.jobs.list().length;
      const cases: [string, Parameters<typeof spec>[0], string, ErrorCode, RegExp][] = [
        [
          'missing binary on PATH',
          ['no-such-command-jobworker'],
          '/',
          'start_failed',
          /no-such-command-jobworker/,
        ],
        [
          'missing binary by path',
          ['/nonexistent/bin/tool'],
          '/',
          'start_failed',
          /\/nonexistent\/bin\/tool/,
        ],
        ['non-executable file', [notExec], '/', 'start_failed', /not-executable/],
        [
          'bad working directory',
          ['true'],
          '/nonexistent-jobworker-dir',
          'start_failed',
          /nonexistent-jobworker-dir/,
        ],
        [
          'oversized argv',
          ['echo', 'x'.repeat(200 * 1024)],
          '/',
          'invalid_argument',
          /^argv is larger than/,
        ],
        [
          'NUL in argv',
          ['echo', 'a\0b'],
          '/',
          'invalid_argument',
          /^argv\[1\] contains a NUL byte$/,
        ],
      ];
      for (const [name, argv, cwd, code, message] of cases) {
        await assert.rejects(
          fx.jobs.start('alice', { ...spec(argv), cwd }),
          isCode(code, message),
          name,
        );
      }
      assert.equal(fx.jobs.list().length, before, 'no record of a failed start');
      const dirs = new Set(await fx.jobDirs());
      for (const job of fx.jobs.list()) dirs.delete(job.id);
      assert.deepEqual([...dirs], [], 'no directory of a failed start');
    });

    test('get, list and lookups: newest first, filters, not_found and malformed ids', async () => {
      const a = await fx.jobs.start('carol', spec(['true']));
      const b = await fx.jobs.start('dave', spec(['true']));
      await readAll(fx.jobs, a.id);
      await readAll(fx.jobs, b.id);
      const ids = fx.jobs.list().map((j) => j.id);
      assert.ok(ids.indexOf(b.id) < ids.indexOf(a.id), 'newest first');
      assert.deepEqual(
        fx.jobs.list({ owner: 'carol' }).map((j) => j.id),
        [a.id],
      );
      assert.ok(fx.jobs.list({ owner: 'dave', state: 'finished' }).some((j) => j.id === b.id));
      assert.deepEqual(fx.jobs.list({ owner: 'dave', state: 'running' }), []);
      assert.equal(fx.jobs.get(a.id).state, 'finished');
      assert.throws(
        () => fx.jobs.get('aaaaaaaaaaaaaaaaaaaaaaaaaa'),
        isCode('not_found', /aaaaaaaaaaaaaaaaaaaaaaaaaa/),
      );
      assert.throws(
        () => fx.jobs.get('../../etc'),
        isCode('invalid_argument', /"\.\.\/\.\.\/etc"/),
      );
      assert.throws(() => fx.jobs.output('nope', { follow: false }), isCode('invalid_argument'));
      assert.throws(
        () => fx.jobs.output(a.id, { follow: false, stdoutOffset: -1 }),
        isCode('invalid_argument', /stdoutOffset/),
      );
    });

    test('stop of a finished job is already_finished', async () => {
      const job = await fx.jobs.start('alice', spec(['true']));
      await readAll(fx.jobs, job.id);
      await assert.rejects(
        fx.jobs.stop(job.id, 'alice'),
        isCode('already_finished', new RegExp(`^job ${job.id} has already finished$`)),
      );
    });

    test('stop twice: concurrent stops share one stop and both get the final status', async () => {
      const job = await fx.jobs.start('alice', spec(['sleep', '1000']));
      const [s1, s2] = await Promise.all([
        fx.jobs.stop(job.id, 'alice'),
        fx.jobs.stop(job.id, 'admin'),
      ]);
      for (const s of [s1, s2]) {
        assert.equal(s.state, 'finished');
        assert.equal(s.endReason, 'stopped');
        assert.equal(s.stoppedBy, 'alice');
        assert.equal(s.signal, 15);
      }
      await assert.rejects(fx.jobs.stop(job.id, 'alice'), isCode('already_finished'));
    });

    test('a job ignoring SIGTERM is killed after the grace period while other calls answer at once', async () => {
      const stubborn = await fx.jobs.start('alice', spec(IGNORES_TERM));
      const other = await fx.jobs.start('bob', spec(['sleep', '1000']));
      await waitForOutput(fx.jobs, stubborn.id, 'ready');
      let stopped: JobStatus | null = null;
      const stopping = fx.jobs
        .stop(stubborn.id, 'alice', { graceMs: 8000 })
        .then((s) => (stopped = s));
      assert.equal(fx.jobs.get(stubborn.id).state, 'stopping');
      // During the grace period: start, read, list, stop another job, wait for it and a short job.
      const quick = await fx.jobs.start('bob', spec(['printf', 'quick']));
      assert.equal((await readAll(fx.jobs, quick.id)).stdout.toString(), 'quick');
      assert.ok(fx.jobs.list().length >= 3);
      assert.equal((await fx.jobs.stop(other.id, 'bob')).endReason, 'stopped');
      assert.equal(stopped, null, 'the other calls did not wait for the grace period');
      assert.equal(fx.jobs.get(stubborn.id).state, 'stopping');
      // A caller may stop waiting; the stop itself goes on.
      const ac = new AbortController();
      const impatient = fx.jobs.stop(stubborn.id, 'carol', { graceMs: 1, signal: ac.signal });
      ac.abort();
      await assert.rejects(impatient, isCode('cancelled'));
      const final = await stopping;
      assert.equal(final.endReason, 'stop_escalated');
      assert.equal(final.stoppedBy, 'alice');
      assert.equal(final.signal, 9);
    });

    test('a short grace escalates quickly', async () => {
      const job = await fx.jobs.start('alice', spec(IGNORES_TERM));
      await waitForOutput(fx.jobs, job.id, 'ready');
      const final = await fx.jobs.stop(job.id, 'alice', { graceMs: 200 });
      assert.equal(final.endReason, 'stop_escalated');
      await assert.rejects(
        fx.jobs.stop(job.id, 'alice', { graceMs: -1 }),
        isCode('invalid_argument', /grace/),
      );
    });
  });
}

/** Skip reason unless a real isolation is registered; under CI=true its absence is a failure. */
function realOnly(): string | false {
  if (realIsolationFactory()) return false;
  if (process.env['CI'] === 'true') {
    throw new Error('CI=true but no real isolation is registered in tests/helpers/isolations.ts');
  }
  return 'requires a real isolation in tests/helpers/isolations.ts';
}

describe('real isolation only', () => {
  test(
    'stop kills a setsid background child (needs real isolation)',
    { skip: realOnly() },
    async () => {
      const real = realIsolationFactory();
      assert.ok(real);
      const rfx = await newFixture(real);
      try {
        // The setsid child keeps stdout open: the job can only finish once it is dead.
        const job = await rfx.jobs.start(
          'alice',
          spec([
            'sh',
            '-c',
            'trap "" TERM; setsid sh -c \'trap "" TERM; while :; do sleep 1; done\' & printf ready; wait',
          ]),
        );
        await waitForOutput(rfx.jobs, job.id, 'ready');
        const final = await rfx.jobs.stop(job.id, 'alice', { graceMs: 500 });
        assert.equal(final.state, 'finished');
        assert.equal(final.endReason, 'stop_escalated');
      } finally {
        await rfx.close();
      }
    },
  );
});

describe('limits of the manager (plain isolation)', () => {
  const plain = isolationFactories[0];
  assert.ok(plain);

  test('the running-jobs cap answers resource_exhausted, and frees up when a job ends', async () => {
    const fx = await newFixture(plain, { maxRunningJobs: 1 });
    try {
      const first = await fx.jobs.start('alice', spec(['sleep', '1000']));
      await assert.rejects(
        fx.jobs.start('alice', spec(['true'])),
        isCode('resource_exhausted', /1/),
      );
      await fx.jobs.stop(first.id, 'alice');
      const second = await fx.jobs.start('alice', spec(['true']));
      assert.equal((await readAll(fx.jobs, second.id)).finished?.endReason, 'exited');
    } finally {
      await fx.close();
    }
  });

  test('shutdown stops running jobs, waits for them and refuses new starts', async () => {
    const fx = await newFixture(plain);
    try {
      const job = await fx.jobs.start('alice', spec(['sleep', '1000']));
      await fx.jobs.shutdown();
      const status = fx.jobs.get(job.id);
      assert.equal(status.state, 'finished');
      assert.equal(status.endReason, 'stopped');
      assert.equal(status.stoppedBy, 'jobworkerd shutdown');
      await assert.rejects(fx.jobs.start('alice', spec(['true'])), isCode('unavailable'));
    } finally {
      await fx.close();
    }
  });
});
