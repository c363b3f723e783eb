/**
 * Servers on one host, as `jobworkerd serve` wires them (src/api/serve.ts):
 * each state directory has one server, held by a lock, and a cgroup group of
 * its own, so that one server's start, sweep and shutdown never touch
 * another's jobs; a group removed under a running server comes back.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, chown, mkdir, mkdtemp, readdir, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startServe, type Running } from '../../src/api/serve.js';
import { tlsFilesIn } from '../../src/api/tls.js';
import { EndReason, JobState } from '../../src/gen/jobworker/v1/job_service.js';
import type { JobServiceClient } from '../../src/gen/jobworker/v1/job_service.js';
import { nodeCgroupFs } from '../../src/isolation/cgroup/fs.js';
import { LOCK_FILE, StateDirInUseError } from '../../src/isolation/index.js';
import { lockFile, lockStateDir } from '../../src/isolation/state-dir.js';
import { DEFAULT_HELPER_PATH } from '../../src/isolation/helper-check.js';
import { requiresRoot } from '../helpers/guards.js';
import { isolationFixture, run } from '../helpers/isolation-fixture.js';
import { makeTestPki } from '../helpers/pki.js';
import { connect, readStream, unary } from '../helpers/server.js';

const JOBWORKERD = fileURLToPath(new URL('../../src/api/main.js', import.meta.url));
const STATE_IN_USE_EXIT = 75;

describe('state directory lock', { skip: requiresRoot() }, () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'jobworker-lock-test-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('the lock outlives the helper that took it, until the holder closes it or dies', async () => {
    const held = await lockStateDir(dir, DEFAULT_HELPER_PATH);
    // The helper has exited: the lock lives on in this process's descriptor.
    await assert.rejects(lockStateDir(dir, DEFAULT_HELPER_PATH), (err: unknown) => {
      assert.ok(err instanceof StateDirInUseError);
      assert.equal(err.holderPid, process.pid);
      assert.match(
        err.message,
        new RegExp(`in use by another jobworkerd \\(pid ${process.pid}\\)`),
      );
      return true;
    });
    await held.release();
    await (await lockStateDir(dir, DEFAULT_HELPER_PATH)).release();

    // A holder that dies without releasing (SIGKILL) leaves no stale lock.
    const module = new URL('../../src/isolation/state-dir.js', import.meta.url).href;
    const holder = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const { lockStateDir } = await import(${JSON.stringify(module)});
         await lockStateDir(${JSON.stringify(dir)}, ${JSON.stringify(DEFAULT_HELPER_PATH)});
         process.stdout.write('locked\\n'); setInterval(() => {}, 1000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      const [line] = (await once(holder.stdout, 'data')) as [Buffer];
      assert.equal(line.toString(), 'locked\n');
      await assert.rejects(lockStateDir(dir, DEFAULT_HELPER_PATH), (err: unknown) => {
        assert.ok(err instanceof StateDirInUseError);
        assert.equal(err.holderPid, holder.pid);
        return true;
      });
    } finally {
      holder.kill('SIGKILL');
      await once(holder, 'exit');
    }
    await (await lockStateDir(dir, DEFAULT_HELPER_PATH)).release();
  });

  test('a waiting lock is taken once the holder releases it, or given up on abort', async () => {
    const file = join(dir, 'wait.lock');
    const held = await lockFile(file, DEFAULT_HELPER_PATH);
    assert.ok(!('held' in held));
    const aborted = new AbortController();
    const gaveUp = lockFile(file, DEFAULT_HELPER_PATH, { wait: true, signal: aborted.signal });
    // Once its helper is blocked in flock: the abort kills it.
    setTimeout(() => {
      aborted.abort();
    }, 50);
    await assert.rejects(gaveUp, { code: 'cancelled' });
    let taken = false;
    const waiting = lockFile(file, DEFAULT_HELPER_PATH, { wait: true }).then((lock) => {
      taken = true;
      return lock;
    });
    // The waiter's helper is blocked in flock: nothing resolves while the lock is held.
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(taken, false);
    await held.release();
    const next = await waiting;
    assert.ok(!('held' in next));
    await next.release();
  });
});

describe('two servers on one host', { skip: requiresRoot() }, () => {
  let root: string;
  let certsDir: string;
  const servers: Running[] = [];
  const clients: JobServiceClient[] = [];

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'jobworker-two-servers-'));
    certsDir = join(root, 'certs');
    await makeTestPki(certsDir);
  });
  after(async () => {
    for (const c of clients) c.close();
    for (const s of servers) await s.stop();
    await rm(root, { recursive: true, force: true });
  });

  async function serve(name: string): Promise<{ running: Running; alice: JobServiceClient }> {
    const running = await startServe({
      listen: '127.0.0.1:0',
      stateDir: join(root, name),
      tls: tlsFilesIn(certsDir, 'server'),
      auditStdout: false,
    });
    servers.push(running);
    const alice = await connect(`localhost:${running.port}`, certsDir, 'alice');
    clients.push(alice);
    return { running, alice };
  }

  async function stop(running: Running): Promise<void> {
    servers.splice(servers.indexOf(running), 1);
    await running.stop();
  }

  async function sleeper(alice: JobServiceClient): Promise<string> {
    const started = await unary(alice, 'startJob', {
      command: ['sleep', '600'],
      env: [],
      workingDir: '',
      hostNetwork: false,
    });
    return started.job?.id ?? assert.fail('no job');
  }

  /** Stops the job: it must still be running, and end by this stop (not SIGKILLed earlier). */
  async function assertStillRunning(alice: JobServiceClient, jobId: string): Promise<void> {
    const got = await unary(alice, 'getJob', { jobId });
    assert.equal(got.job?.state, JobState.JOB_STATE_RUNNING, `job ${jobId} is running`);
    const stopped = await unary(alice, 'stopJob', {
      jobId,
      gracePeriod: { seconds: 5, nanos: 0 },
    });
    assert.equal(stopped.job?.endReason, EndReason.END_REASON_STOPPED);
  }

  async function assertStartsJobs(alice: JobServiceClient): Promise<void> {
    const started = await unary(alice, 'startJob', {
      command: ['true'],
      env: [],
      workingDir: '',
      hostNetwork: false,
    });
    const jobId = started.job?.id ?? assert.fail('no job');
    assert.equal((await readStream(alice, { jobId, follow: true })).error, null); // to its end
    const got = await unary(alice, 'getJob', { jobId });
    assert.equal(got.job?.endReason, EndReason.END_REASON_EXITED);
    assert.equal(got.job.exitCode, 0);
  }

  /** Processes (other than this one) with the lock file of `stateDir` open. */
  async function lockHolders(stateDir: string): Promise<number[]> {
    const lockFile = join(stateDir, LOCK_FILE);
    const holders = new Set<number>();
    for (const pid of (await readdir('/proc')).filter((n) => /^\d+$/.test(n))) {
      for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [])) {
        const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
        if (target === lockFile) holders.add(Number(pid));
      }
    }
    holders.delete(process.pid);
    return [...holders];
  }

  test("one server's start, sweep and shutdown leave the other's running jobs alone", async () => {
    const a = await serve('a');
    const jobA = await sleeper(a.alice);
    const b = await serve('b'); // sweeps its leftovers at start
    const jobB = await sleeper(b.alice);
    // Neither the fork servers nor the jobs inherited a lock descriptor.
    assert.deepEqual(await lockHolders(join(root, 'a')), []);
    assert.deepEqual(await lockHolders(join(root, 'b')), []);
    await stop(b.running); // stops b's jobs, removes b's group
    await assertStartsJobs(a.alice);
    const b2 = await serve('b'); // b again: its start sweeps b's group only
    await assertStillRunning(a.alice, jobA);
    const jobB2 = await sleeper(b2.alice);
    await sleeper(a.alice); // a's shutdown stops it and removes a's group
    await stop(a.running);
    await assertStartsJobs(b2.alice);
    await assertStillRunning(b2.alice, jobB2);
    const got = await unary(b2.alice, 'getJob', { jobId: jobB });
    assert.equal(got.job?.state, JobState.JOB_STATE_FINISHED, 'b stopped its job at shutdown');
  });

  test('a state directory not root-owned 0700 is refused, with the fix in the message', async () => {
    const dir = join(root, 'open-state');
    await mkdir(dir, { mode: 0o700 });
    await chmod(dir, 0o755);
    await assert.rejects(
      startServe({
        listen: '127.0.0.1:0',
        stateDir: dir,
        tls: tlsFilesIn(certsDir, 'server'),
        auditStdout: false,
      }),
      {
        code: 'unavailable',
        message: `state directory ${dir} is owned by uid 0 with mode 0755; it must be root's with mode 0700 (fix: chmod 700 ${dir})`,
      },
    );
    await chown(dir, 1000, 1000);
    await chmod(dir, 0o700);
    await assert.rejects(
      startServe({
        listen: '127.0.0.1:0',
        stateDir: dir,
        tls: tlsFilesIn(certsDir, 'server'),
        auditStdout: false,
      }),
      { message: new RegExp(`uid 1000 with mode 0700; .*\\(fix: chown root:root ${dir}\\)$`) },
    );
    assert.deepEqual(await readdir(dir), [], 'nothing was created in it');
  });

  test('a second server on the same state directory is refused, naming the first', async () => {
    const a = await serve('same');
    const jobA = await sleeper(a.alice);
    const second = spawn(
      process.execPath,
      [
        JOBWORKERD,
        'serve',
        '--listen',
        '127.0.0.1:0',
        '--state-dir',
        join(root, 'same'),
        '--certs',
        certsDir,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    second.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
    const timer = setTimeout(() => second.kill('SIGKILL'), 30_000);
    try {
      const [code] = (await once(second, 'exit')) as [number | null];
      assert.equal(code, STATE_IN_USE_EXIT, stderr);
      assert.match(stderr, new RegExp(`in use by another jobworkerd \\(pid ${process.pid}\\)`));
    } finally {
      clearTimeout(timer);
    }
    await assertStillRunning(a.alice, jobA);
    await stop(a.running);
  });
});

test(
  'a group removed under a running server is made again at the next job start',
  { skip: requiresRoot() },
  async () => {
    const fx = await isolationFixture();
    try {
      assert.equal((await run(fx.iso, ['true'])).report.exitCode, 0);
      for (const dir of fx.iso.cgroupGroupDirs) await nodeCgroupFs.rmdir(dir);
      const { report } = await run(fx.iso, ['true']);
      assert.equal(report.exitCode, 0, JSON.stringify(report));
    } finally {
      await fx.dispose();
    }
  },
);
