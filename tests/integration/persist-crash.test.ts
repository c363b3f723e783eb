/**
 * Restart after a crash: a server process (tests/helpers/persist-server.ts,
 * real isolation) with a finished and a running job is killed with SIGKILL;
 * a new JobManager on the same state directory lists the finished job with
 * its full exit report and streams its output byte-exact, reports the
 * running one as lost, and no process or cgroup of it is left. Root only.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { nodeCgroupFs, removeCgroup } from '../../src/isolation/cgroup/fs.js';
import { createIsolation } from '../../src/isolation/index.js';
import { openJobManager } from '../../src/job/index.js';
import { requiresExecutable, requiresRoot } from '../helpers/guards.js';
import { readAll } from '../helpers/job-fixture.js';

const HELPER = fileURLToPath(new URL('../../../native/build/jobexec', import.meta.url));

/** Pids of processes whose argv contains `marker` (read from /proc). */
async function processesWith(marker: string): Promise<number[]> {
  const found: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const argv = await readFile(`/proc/${name}/cmdline`, 'latin1').catch(() => '');
    if (argv.split('\0').includes(marker)) found.push(Number(name));
  }
  return found;
}

interface ServerReport {
  finishedId: string;
  runningId: string;
  streamedSha256: string;
  finished: {
    endReason: string;
    exitCode: number;
    stdoutBytes: number;
    stdoutSha256: string;
    stderrSha256: string;
    usage: unknown;
  };
}

/** Starts the server script; resolves with its report once its jobs are set up. */
async function startServer(stateDir: string, cgroupGroup: string, marker: string) {
  const script = fileURLToPath(new URL('../helpers/persist-server.js', import.meta.url));
  const server = spawn(
    process.execPath,
    ['--enable-source-maps', script, JSON.stringify({ stateDir, cgroupGroup, marker })],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: server.stdout });
  const exited = once(server, 'exit').then(([code]) => {
    throw new Error(`the server exited (${String(code)}) before reporting its jobs`);
  });
  try {
    const [line] = (await Promise.race([once(lines, 'line'), exited])) as [string];
    return { server, before: JSON.parse(line) as ServerReport };
  } catch (err) {
    server.kill('SIGKILL');
    throw err;
  } finally {
    exited.catch(() => undefined);
    lines.close();
  }
}

const skip = requiresRoot() || (await requiresExecutable(HELPER));

test(
  'after a clean shutdown of the server: every job finished, listed again with its report',
  { skip, timeout: 120_000 },
  async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'jobworker-persist-clean-'));
    const cgroupGroup = `jobworker-persist-${process.pid}-clean`;
    const marker = `persist-marker-${randomBytes(8).toString('hex')}`;
    const isolation = await createIsolation({ stateDir, cgroupGroup });
    try {
      const { server, before } = await startServer(stateDir, cgroupGroup, marker);
      server.stdin.end();
      const [code] = (await once(server, 'exit')) as [number | null];
      assert.equal(code, 0);
      assert.deepEqual(await processesWith(marker), []);
      const jobs = await openJobManager({ stateDir, isolation });
      try {
        assert.deepEqual(jobs.recovery, {
          restored: 2,
          lost: 0,
          damaged: [],
          halfMadeRemoved: 0,
          leftoverCgroups: 0,
        });
        const stopped = jobs.get(before.runningId);
        assert.deepEqual(
          [stopped.endReason, stopped.stoppedBy],
          ['stopped', 'jobworkerd shutdown'],
        );
        const finished = jobs.get(before.finishedId);
        assert.equal(finished.stdout.sha256?.toString('hex'), before.finished.stdoutSha256);
        const out = await readAll(jobs, before.finishedId);
        assert.equal(createHash('sha256').update(out.stdout).digest('hex'), before.streamedSha256);
        assert.ok((await readAll(jobs, before.runningId)).stdout.toString().startsWith('started'));
      } finally {
        await jobs.shutdown();
      }
    } finally {
      await isolation.sweepLeftovers();
      for (const dir of isolation.cgroupGroupDirs) await removeCgroup(nodeCgroupFs, dir);
      await rm(stateDir, { recursive: true, force: true });
    }
  },
);

test(
  'after SIGKILL of the server: finished jobs intact, running ones lost, nothing left running',
  { skip, timeout: 120_000 },
  async (t) => {
    const stateDir = await mkdtemp(join(tmpdir(), 'jobworker-persist-crash-'));
    // A group of our own: a sweep must never reach jobs of tests running in parallel.
    const cgroupGroup = `jobworker-persist-${process.pid}`;
    const marker = `persist-marker-${randomBytes(8).toString('hex')}`;
    const isolation = await createIsolation({ stateDir, cgroupGroup });
    let server: ChildProcess | undefined;
    try {
      const started = await startServer(stateDir, cgroupGroup, marker);
      server = started.server;
      const { before } = started;
      assert.ok((await processesWith(marker)).length >= 1, 'the running job runs');
      server.kill('SIGKILL');
      await once(server, 'exit');

      const warnings: string[] = [];
      const jobs = await openJobManager({
        stateDir,
        isolation,
        log: (level, message) => {
          if (level === 'warn') warnings.push(message);
        },
      });
      try {
        // The dead server's running job left its cgroup; the sweep killed and removed it.
        assert.equal(jobs.recovery.leftoverCgroups, 1);
        assert.deepEqual([jobs.recovery.restored, jobs.recovery.lost], [1, 1]);
        assert.deepEqual(await processesWith(marker), [], 'no process of the lost job is alive');
        for (const dir of isolation.cgroupGroupDirs)
          assert.deepEqual(await nodeCgroupFs.children(dir), [], `no job cgroup left in ${dir}`);

        const finished = jobs.get(before.finishedId);
        assert.equal(finished.state, 'finished');
        assert.equal(finished.endReason, before.finished.endReason);
        assert.equal(finished.exitCode, 3);
        assert.equal(finished.stdout.storedBytes, 200_000);
        assert.equal(finished.stdout.sha256?.toString('hex'), before.finished.stdoutSha256);
        assert.equal(finished.stderr.sha256?.toString('hex'), before.finished.stderrSha256);
        assert.deepEqual(finished.usage, before.finished.usage);
        // Streamed again from the first byte, byte-exact.
        const out = await readAll(jobs, before.finishedId);
        assert.equal(createHash('sha256').update(out.stdout).digest('hex'), before.streamedSha256);
        assert.equal(before.streamedSha256, before.finished.stdoutSha256);
        assert.equal(out.stderr.toString(), 'to-stderr\n');
        assert.deepEqual(out.finished, finished);

        const lost = jobs.get(before.runningId);
        assert.equal(lost.state, 'finished');
        assert.equal(lost.endReason, 'lost');
        assert.equal(lost.exitCode, null);
        const lostOut = await readAll(jobs, before.runningId);
        assert.ok(lostOut.stdout.toString().startsWith('started'), lostOut.stdout.toString());
        assert.equal(lost.stdout.storedBytes, lostOut.stdout.length);
        assert.deepEqual(lost.stdout.sha256, createHash('sha256').update(lostOut.stdout).digest());
        assert.ok(
          warnings.some((w) => w.includes('job cgroups left by a previous run')),
          warnings.join('\n'),
        );
        assert.deepEqual(
          jobs.list().map((s) => s.id),
          [before.runningId, before.finishedId],
        );
      } finally {
        await jobs.shutdown();
      }
      // And once more: the lost job's record is final now, nothing is recovered twice.
      const again = await openJobManager({ stateDir, isolation, log: () => undefined });
      assert.deepEqual(
        [again.recovery.restored, again.recovery.lost, again.recovery.leftoverCgroups],
        [2, 0, 0],
      );
      assert.equal(again.get(before.runningId).endReason, 'lost');
      await again.shutdown();
      t.diagnostic(`recovered after SIGKILL: warnings ${JSON.stringify(warnings)}`);
    } finally {
      if (server && server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
      await isolation.sweepLeftovers();
      for (const dir of isolation.cgroupGroupDirs) await removeCgroup(nodeCgroupFs, dir);
      await rm(stateDir, { recursive: true, force: true });
    }
  },
);
