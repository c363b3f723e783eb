/**
 * JobManager against a fake Isolation whose sandboxes the test drives by
 * hand: end reasons, start failures and their cleanup, lookups. Real
 * processes are in tests/integration/job-*.test.ts.
 */
import assert from 'node:assert/strict';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, test } from 'node:test';
import { setImmediate, setTimeout as delay } from 'node:timers/promises';
import { ErrorCode, JobworkerError } from '../errors.js';
import type {
  ExitReport,
  Isolation,
  LaunchSpec,
  Limits,
  PreparedSandbox,
  Sandbox,
} from '../isolation/index.js';
import { JobManager, openJobManager } from './manager.js';
import { MAX_TIMEOUT_MS } from './spec.js';
import { OWNER_UID_RANGE } from './owner-ids.js';
import type { JobSpec } from './types.js';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

const LIMITS: Limits = {
  cpuMillis: 1000,
  memoryBytes: 1 << 20,
  ioReadBps: 0,
  ioWriteBps: 0,
  pidsMax: 10,
};
const USAGE = { cpuTimeNs: 5, peakMemoryBytes: 6, ioReadBytes: 7, ioWriteBytes: 8 };

/** A sandbox the test ends by hand. */
class FakeSandbox implements Sandbox {
  readonly pid = 4242;
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  readonly stdin = null;
  readonly exited: Promise<ExitReport>;
  readonly ended: Promise<void>;
  terminated = 0;
  killed = 0;
  readonly signals: { signal: string; all: boolean }[] = [];
  #processEnd!: () => void;
  #end!: (r: ExitReport) => void;
  #fail!: (err: Error) => void;
  readonly spec: LaunchSpec;
  constructor(spec: LaunchSpec) {
    this.spec = spec;
    this.ended = new Promise((resolve) => {
      this.#processEnd = resolve;
    });
    this.exited = new Promise((resolve, reject) => {
      this.#end = resolve;
      this.#fail = reject;
    });
  }
  end(report: Partial<ExitReport>): void {
    this.stdout.end();
    this.stderr.end();
    this.exitOnly(report);
  }
  /** Reports the exit but leaves the pipes open, as when a background process still holds them. */
  exitOnly(report: Partial<ExitReport>): void {
    this.#processEnd();
    this.#end({ exitCode: null, signal: null, oomKilled: false, usage: USAGE, ...report });
  }
  /** The job's process has ended; its usage and cgroups are still being dealt with. */
  processEnd(): void {
    this.#processEnd();
  }
  breakPromise(): void {
    this.#processEnd();
    this.stdout.end();
    this.stderr.end();
    this.#fail(new Error('helper crashed'));
  }
  terminate(): void {
    this.terminated++;
  }
  signal(signal: string, all: boolean): void {
    this.signals.push({ signal, all });
  }
  kill(): Promise<void> {
    this.killed++;
    this.end({ signal: 9 });
    return Promise.resolve();
  }
}

class FakeIsolation implements Isolation {
  readonly sandboxes: FakeSandbox[] = [];
  /** Per prepared sandbox, in order: how it ended, and whether its start record was on disk at start(). */
  readonly prepared: { outcome: 'pending' | 'started' | 'cancelled'; persisted: boolean }[] = [];
  launchError: Error | null = null;
  limitsError: Error | null = null;
  /** Runs inside prepare(), while the manager persists the start record. */
  onPrepare: (spec: LaunchSpec) => void = () => undefined;
  stateDir = '';
  resolveLimits(): Limits {
    if (this.limitsError !== null) throw this.limitsError;
    return LIMITS;
  }
  prepare(spec: LaunchSpec): Promise<PreparedSandbox> {
    this.onPrepare(spec);
    const entry = { outcome: 'pending' as 'pending' | 'started' | 'cancelled', persisted: false };
    this.prepared.push(entry);
    return Promise.resolve({
      start: () => {
        entry.persisted = existsSync(join(this.stateDir, 'jobs', spec.jobId, 'record.json'));
        if (this.launchError !== null) return Promise.reject(this.launchError);
        entry.outcome = 'started';
        const sb = new FakeSandbox(spec);
        this.sandboxes.push(sb);
        return Promise.resolve(sb);
      },
      cancel: () => {
        entry.outcome = 'cancelled';
        return Promise.resolve();
      },
    });
  }
}

const spec: JobSpec = { argv: ['work'], env: ['A=1'], cwd: '/srv', limits: {}, hostNetwork: true };
let stateDir: string;
before(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'jobworker-manager-test-'));
});
after(async () => {
  await rm(stateDir, { recursive: true, force: true });
});

async function setup() {
  const isolation = new FakeIsolation();
  const dir = await mkdtemp(join(stateDir, 's-'));
  isolation.stateDir = dir;
  return { isolation, dir, jobs: new JobManager({ stateDir: dir, isolation }) };
}

async function finished(jobs: JobManager, id: string) {
  for await (const e of jobs.output(id, { follow: true })) if (e.type === 'finished') return e.job;
  throw new Error('no finished event');
}

test('the launch spec is what was validated, and the status says what was applied', async () => {
  const { isolation, jobs } = await setup();
  const status = await jobs.start('alice', spec);
  const sb = isolation.sandboxes[0];
  assert.ok(sb);
  // The lowest uid free host-wide: another server (or suite) may hold the range's first.
  const uid = sb.spec.uid ?? 0;
  assert.ok(uid >= OWNER_UID_RANGE.first && uid <= OWNER_UID_RANGE.last, `uid ${uid} in the range`);
  assert.deepEqual(sb.spec, {
    jobId: status.id,
    argv: ['work'],
    env: ['A=1', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
    cwd: '/srv',
    limits: LIMITS,
    hostNetwork: true,
    uid,
    gid: uid,
  });
  assert.equal(status.state, 'running');
  assert.equal(status.hostNetwork, true);
  assert.deepEqual(status.limits, LIMITS);
  sb.stdout.write('x');
  sb.end({ exitCode: 0 });
  const done = await finished(jobs, status.id);
  assert.deepEqual(done.usage, USAGE);
  assert.equal(done.endReason, 'exited');
  assert.equal(done.stdout.storedBytes, 1);
});

test('a finished job keeps nothing of its sandbox (pipes, writer, helper) reachable', async () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const { isolation, jobs } = await setup();
  // In a function of its own, so that no frame of this test still holds a sandbox.
  const runJobs = async (): Promise<WeakRef<FakeSandbox>[]> => {
    const refs: WeakRef<FakeSandbox>[] = [];
    for (let i = 0; i < 20; i++) {
      const status = await jobs.start('alice', spec);
      const sb = isolation.sandboxes.pop();
      assert.ok(sb);
      refs.push(new WeakRef(sb));
      sb.stdout.write('x');
      sb.end({ exitCode: 0 });
      await finished(jobs, status.id);
    }
    return refs;
  };
  const refs = await runJobs();
  assert.equal(jobs.list({}).length, 20, 'the finished jobs are still held');
  for (let round = 0; round < 3; round++) {
    await setImmediate();
    gc();
  }
  const alive = refs.filter((r) => r.deref() !== undefined).length;
  assert.equal(alive, 0, `${alive} of 20 finished jobs still reach their sandbox`);
});

test('end reasons: OOM wins over a stop; a broken exited promise is "lost"', async () => {
  const { isolation, jobs } = await setup();
  const a = await jobs.start('alice', spec);
  const b = await jobs.start('alice', spec);
  const [sa, sb] = isolation.sandboxes;
  assert.ok(sa && sb);
  const stopping = jobs.stop(a.id, 'admin', { graceMs: 60_000 });
  assert.equal(sa.terminated, 1);
  sa.end({ signal: 9, oomKilled: true });
  const sta = await stopping;
  assert.deepEqual([sta.endReason, sta.oomKilled, sta.stoppedBy], ['oom_killed', true, 'admin']);
  sb.breakPromise();
  const stb = await finished(jobs, b.id);
  assert.equal(stb.endReason, 'lost');
});

test('grace expiry kills the sandbox and records the escalation', async () => {
  const { isolation, jobs } = await setup();
  const job = await jobs.start('alice', spec);
  const final = await jobs.stop(job.id, 'alice', { graceMs: 0 });
  assert.equal(isolation.sandboxes[0]?.killed, 1);
  assert.equal(final.endReason, 'stop_escalated');
});

test('a job that exited by itself but is still draining output is already finished for stop', async () => {
  const { isolation, jobs } = await setup();
  const job = await jobs.start('alice', spec);
  const sb = isolation.sandboxes[0];
  assert.ok(sb);
  sb.stdout.write('draining');
  // The exit report comes first, the pipes end later (a background writer).
  sb.exitOnly({ exitCode: 0 });
  await sb.exited;
  await setImmediate();
  const stopping = jobs.stop(job.id, 'alice');
  assert.equal(jobs.get(job.id).state, 'running');
  sb.stdout.end();
  sb.stderr.end();
  await assert.rejects(
    stopping,
    (e: unknown) => e instanceof JobworkerError && e.code === 'already_finished',
  );
  assert.equal(sb.terminated, 0);
});

test('a stop after the process ended, while the sandbox still tears down, leaves the real end', async () => {
  const { isolation, jobs } = await setup();
  const job = await jobs.start('alice', spec);
  const sb = isolation.sandboxes[0];
  assert.ok(sb);
  sb.stdout.end();
  sb.stderr.end();
  sb.processEnd();
  await setImmediate();
  const stopping = jobs.stop(job.id, 'admin', { graceMs: 0 });
  // Usage read and cgroups removed only now.
  sb.exitOnly({ exitCode: 3 });
  await assert.rejects(
    stopping,
    (e: unknown) => e instanceof JobworkerError && e.code === 'already_finished',
  );
  const final = jobs.get(job.id);
  assert.deepEqual(
    [final.endReason, final.exitCode, final.stoppedBy, sb.terminated, sb.killed],
    ['exited', 3, null, 0, 0],
  );
});

test('failed starts propagate coded errors, wrap untyped ones and leave no directory or record', async () => {
  const { isolation, jobs, dir } = await setup();
  isolation.launchError = new JobworkerError('start_failed', 'command not found: work');
  await assert.rejects(jobs.start('alice', spec), {
    code: 'start_failed',
    message: 'command not found: work',
  });
  isolation.launchError = new Error('EIO');
  await assert.rejects(
    jobs.start('alice', spec),
    (e: unknown) => e instanceof JobworkerError && e.code === 'internal' && /EIO/.test(e.message),
  );
  isolation.launchError = null;
  isolation.limitsError = new JobworkerError(
    'invalid_argument',
    'limits.memoryBytes -1 is invalid',
  );
  await assert.rejects(jobs.start('alice', spec), { code: 'invalid_argument' });
  assert.deepEqual(await readdir(join(dir, 'jobs')), []);
  assert.deepEqual(jobs.list(), []);
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(jobs.start('alice', spec, ac.signal), { code: 'cancelled' });
});

test('a job starts only once its start record is persisted', async () => {
  const { isolation, jobs } = await setup();
  const status = await jobs.start('alice', spec);
  assert.deepEqual(isolation.prepared, [{ outcome: 'started', persisted: true }]);
  isolation.sandboxes[0]?.end({ exitCode: 0 });
  await finished(jobs, status.id);
});

test('a failed persist cancels the prepared sandbox, never starts it, and leaves nothing', async () => {
  const { isolation, jobs, dir } = await setup();
  // The job's directory turns into a file while the record is being written.
  isolation.onPrepare = (launch) => {
    const jobDir = join(dir, 'jobs', launch.jobId);
    rmSync(jobDir, { recursive: true });
    writeFileSync(jobDir, '');
  };
  await assert.rejects(jobs.start('alice', spec), { code: 'internal' });
  assert.deepEqual(isolation.prepared, [{ outcome: 'cancelled', persisted: false }]);
  assert.deepEqual(isolation.sandboxes, []);
  assert.deepEqual(await readdir(join(dir, 'jobs')), []);
  assert.deepEqual(jobs.list(), []);
});

test('list pages: newest first, from a cursor, at most the limit', async () => {
  const { isolation, jobs } = await setup();
  const started = [];
  for (let i = 0; i < 6; i++) started.push(await jobs.start(i % 2 === 0 ? 'alice' : 'bob', spec));
  for (const sb of isolation.sandboxes) sb.end({ exitCode: 0 });
  // Jobs started within one millisecond are ordered by id.
  const newest = started
    .sort((a, b) => b.startedAt.getTime() - a.startedAt.getTime() || (a.id < b.id ? 1 : -1))
    .map((s) => s.id);
  assert.deepEqual(
    jobs.list().map((s) => s.id),
    newest,
  );
  assert.deepEqual(
    jobs.list({ limit: 2 }).map((s) => s.id),
    newest.slice(0, 2),
  );
  const last = jobs.list({ limit: 2 }).at(-1);
  assert.ok(last);
  const after = { startedAtMs: last.startedAt.getTime(), id: last.id };
  assert.deepEqual(
    jobs.list({ after, limit: 3 }).map((s) => s.id),
    newest.slice(2, 5),
  );
  assert.deepEqual(
    jobs.list({ owner: 'alice', limit: 2 }).map((s) => s.owner),
    ['alice', 'alice'],
  );
});

test('a timeout stops the job (its grace sequence) and ends it timed_out, also after a restart', async () => {
  const { isolation, dir, jobs } = await setup();
  const started = await jobs.start('alice', { ...spec, timeoutMs: 30 });
  assert.equal(started.timeoutMs, 30);
  const sb = isolation.sandboxes[0];
  assert.ok(sb);
  while (sb.terminated === 0) await delay(5);
  assert.equal(jobs.get(started.id).state, 'stopping');
  sb.end({ signal: 15 });
  const done = await finished(jobs, started.id);
  assert.equal(done.endReason, 'timed_out');
  assert.equal(done.stoppedBy, 'jobworkerd timeout');
  await jobs.shutdown();
  const reopened = await openJobManager({ stateDir: dir, isolation });
  const restored = reopened.get(started.id);
  assert.equal(restored.endReason, 'timed_out');
  assert.equal(restored.timeoutMs, 30);
  await reopened.shutdown();
});

test('a job that ended by itself before its timeout is not stopped by it', async () => {
  const { isolation, jobs } = await setup();
  const started = await jobs.start('alice', { ...spec, timeoutMs: 30 });
  const sb = isolation.sandboxes[0];
  assert.ok(sb);
  sb.processEnd();
  await delay(60);
  assert.equal(sb.terminated, 0);
  sb.end({ exitCode: 0 });
  assert.equal((await finished(jobs, started.id)).endReason, 'exited');
});

test('timeouts below 0, above the maximum or fractional are refused naming the field', async () => {
  const { jobs } = await setup();
  for (const timeoutMs of [-1, 0.5, MAX_TIMEOUT_MS + 1]) {
    await assert.rejects(jobs.start('alice', { ...spec, timeoutMs }), {
      code: ErrorCode.InvalidArgument,
      message: /^timeoutMs: /,
    });
  }
});

test('signal reaches the sandbox while the job runs, already_finished after', async () => {
  const { isolation, jobs } = await setup();
  const { id } = await jobs.start('alice', spec);
  const sb = isolation.sandboxes[0];
  assert.ok(sb);
  jobs.signal(id, 'SIGHUP', false);
  jobs.signal(id, 'SIGUSR1', true);
  assert.deepEqual(sb.signals, [
    { signal: 'SIGHUP', all: false },
    { signal: 'SIGUSR1', all: true },
  ]);
  sb.end({ exitCode: 0 });
  await jobs.wait(id);
  assert.throws(() => jobs.signal(id, 'SIGHUP', false), { code: ErrorCode.AlreadyFinished });
});

test('delete ends a follower still reading the output with not_found, and waiters of a gone job', async () => {
  const { isolation, dir, jobs } = await setup();
  const { id } = await jobs.start('alice', spec);
  const sb = isolation.sandboxes[0];
  assert.ok(sb);
  await assert.rejects(jobs.delete(id, 'alice'), { code: ErrorCode.JobRunning });
  sb.stdout.write('x'.repeat(1024));
  sb.end({ exitCode: 0 });
  await jobs.wait(id);
  const reader = jobs.output(id, { follow: false })[Symbol.asyncIterator]();
  const first = await reader.next();
  assert.equal(first.done ? null : first.value.type, 'chunk');
  await jobs.delete(id, 'alice');
  await assert.rejects(reader.next(), {
    code: ErrorCode.NotFound,
    message: `job ${id} was removed on request`,
  });
  assert.equal(existsSync(join(dir, 'jobs', id)), false);
  await assert.rejects(jobs.wait(id), { code: ErrorCode.NotFound });
  await assert.rejects(jobs.delete(id, 'alice'), { code: ErrorCode.NotFound });
});
