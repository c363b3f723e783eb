/**
 * Lifecycle of real sandboxes (root): reaping, kill, server death, cleanup
 * after many jobs, cancelled launches.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { JobworkerError } from '../../src/errors.js';
import { detectLayout } from '../../src/isolation/cgroup/detect.js';
import { nodeCgroupFs } from '../../src/isolation/cgroup/fs.js';
import { waitPopulatedZero } from '../../src/isolation/cgroup/kill.js';
import { createIsolation } from '../../src/isolation/index.js';
import { requiresLayout, requiresRoot } from '../helpers/guards.js';
import {
  collect,
  isolationFixture,
  launch,
  newJobId,
  run,
  specFor,
  suiteIsolation,
} from '../helpers/isolation-fixture.js';

/** Host pids in every cgroup of `jobId` below the group dirs. */
async function pidsOf(groupDirs: readonly string[], jobId: string): Promise<number[]> {
  const pids = new Set<number>();
  for (const dir of groupDirs) {
    const text = await readFile(`${dir}/${jobId}/cgroup.procs`, 'utf8');
    for (const line of text.split('\n')) if (line !== '') pids.add(Number(line));
  }
  return [...pids];
}

// PF_EXITING in /proc/PID/stat's flags (include/linux/sched.h).
const PF_EXITING = 0x4;

/**
 * Whether `pid` is gone, a zombie, or already inside exit(): a task leaves
 * its cgroup (so `populated 0` can fire) in do_exit() before it becomes a
 * zombie, and runs no user code from there on.
 */
async function isGone(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  if (stat === null) return true;
  const [state = '', , , , , , flags = '0'] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return state === 'Z' || state === 'X' || (Number(flags) & PF_EXITING) !== 0;
}

describe('isolation lifecycle', { skip: requiresRoot() }, () => {
  const fx = suiteIsolation();

  test('a job leaving 500 orphans leaves no zombie', async () => {
    // Each ( ... & ) subshell exits at once, orphaning its sleep to init.
    const script = [
      'for i in $(seq 500); do (sleep 0.01 &); done',
      // bounded wait (30 s) for the orphans to end, then count zombies
      'n=0; while ps -e -o comm= | grep -qx sleep && [ $n -lt 300 ]; do sleep 0.1; n=$((n+1)); done',
      'ps -e -o stat= | grep -c "^Z"',
    ].join('; ');
    const { stdout, report } = await run(fx.iso, ['sh', '-c', script]);
    assert.equal(stdout.trim(), '0');
    assert.equal(report.exitCode, 1); // grep -c found nothing
  });

  test('kill() ends a setsid background child with the whole cgroup', async () => {
    const jobId = newJobId();
    const sandbox = await launch(
      fx.iso,
      specFor(fx.iso, ['sh', '-c', 'setsid sleep 1000 & echo ready; exec sleep 1000'], { jobId }),
    );
    sandbox.stderr.resume();
    await once(sandbox.stdout, 'data');
    sandbox.stdout.resume();
    const pids = await pidsOf(fx.iso.cgroupGroupDirs, jobId);
    assert.ok(pids.length >= 3, `init, sh and the setsid child: ${pids.join(' ')}`);
    await sandbox.kill();
    await sandbox.kill(); // idempotent
    for (const pid of pids) assert.ok(await isGone(pid), `pid ${pid} survived kill()`);
    const report = await sandbox.exited;
    assert.deepEqual([report.exitCode, report.signal], [null, 9]);
  });

  test('the server killed with SIGKILL leaves no job process alive', async (t) => {
    const group = `jobworker-test-${process.pid}-server`;
    const jobId = newJobId();
    const script = fileURLToPath(new URL('../helpers/isolation-server.js', import.meta.url));
    const server = spawn(process.execPath, [script, group, jobId], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let swept: number;
    const pids: number[] = [];
    try {
      const [line] = (await once(server.stdout, 'data')) as [Buffer];
      const { groupDirs } = JSON.parse(line.toString()) as { groupDirs: string[] };
      pids.push(...(await pidsOf(groupDirs, jobId)));
      assert.ok(pids.length >= 3, pids.join(' '));
      // The child runs in our cgroups: our cgroup2 directory is its.
      const { unified } = await detectLayout();
      server.kill('SIGKILL');
      await once(server, 'exit');
      // The populated 0 event of the job's cgroup2 directory (hybrid and v2
      // hosts). Pure v1 has no such event: re-read each pid, bounded at 60 s.
      if (unified !== null) {
        await waitPopulatedZero(
          nodeCgroupFs,
          `${unified}/${group}/${jobId}`,
          AbortSignal.timeout(60_000),
        );
      } else {
        for (let i = 0; i < 600; i++) {
          const gone = await Promise.all(pids.map(isGone));
          if (gone.every(Boolean)) break;
          await delay(100);
        }
      }
      for (const pid of pids) assert.ok(await isGone(pid), `pid ${pid} outlived the server`);
    } finally {
      if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
      // A restarted server sweeps what the dead one left (also after a failure above).
      const restarted = await createIsolation({ stateDir: tmpdir(), cgroupGroup: group });
      swept = await restarted.sweepLeftovers();
      for (const dir of restarted.cgroupGroupDirs) await nodeCgroupFs.rmdir(dir);
    }
    assert.equal(swept, 1);
    t.diagnostic(`${pids.length} job processes gone after the server's SIGKILL`);
  });

  test('a launch aborted by its signal is cancelled and leaves nothing', async () => {
    const aborted = AbortSignal.abort(new JobworkerError('cancelled', 'client went away'));
    await assert.rejects(launch(fx.iso, specFor(fx.iso, ['true']), aborted), /client went away/);
    const controller = new AbortController();
    const launching = launch(fx.iso, specFor(fx.iso, ['sleep', '1000']), controller.signal);
    controller.abort();
    await assert.rejects(
      launching,
      (err: unknown) => err instanceof JobworkerError && err.code === 'cancelled',
    );
    for (const dir of fx.iso.cgroupGroupDirs)
      assert.deepEqual(await nodeCgroupFs.children(dir), []);
  });

  test('no cgroup is left after 200 jobs of mixed outcomes', async (t) => {
    const outcomes = new Map<string, number>();
    const count = (what: string) => outcomes.set(what, (outcomes.get(what) ?? 0) + 1);
    const one = async (i: number): Promise<void> => {
      try {
        switch (i % 8) {
          case 0:
            count(`exit ${(await run(fx.iso, ['true'])).report.exitCode}`);
            return;
          case 1:
            count(`exit ${(await run(fx.iso, ['sh', '-c', 'exit 3'])).report.exitCode}`);
            return;
          case 2:
            await run(fx.iso, ['no-such-command-jobworker']);
            return;
          case 3:
            await run(fx.iso, ['true'], { cwd: '/no/such/dir' });
            return;
          case 4: {
            const sandbox = await launch(fx.iso, specFor(fx.iso, ['sleep', '1000']));
            sandbox.terminate();
            count(`signal ${(await collect(sandbox)).report.signal}`);
            return;
          }
          case 5: {
            const sandbox = await launch(fx.iso, specFor(fx.iso, ['sleep', '1000']));
            const done = collect(sandbox);
            await sandbox.kill();
            count(`signal ${(await done).report.signal}`);
            return;
          }
          case 6:
            count(`signal ${(await run(fx.iso, ['sh', '-c', 'kill -9 $$'])).report.signal}`);
            return;
          default: {
            const { report } = await run(
              fx.iso,
              ['sh', '-c', 'head -c 100000000 /dev/zero | tail'],
              {
                limits: { memoryBytes: 16 * 1024 * 1024 },
              },
            );
            count(report.oomKilled ? 'oom' : 'no oom');
            return;
          }
        }
      } catch (err) {
        count(err instanceof JobworkerError ? err.code : 'other error');
      }
    };
    const jobs = Array.from({ length: 200 }, (_, i) => i);
    const workers = Array.from({ length: 8 }, async () => {
      for (let i = jobs.shift(); i !== undefined; i = jobs.shift()) await one(i);
    });
    await Promise.all(workers);
    t.diagnostic(JSON.stringify(Object.fromEntries(outcomes)));
    assert.deepEqual(Object.fromEntries([...outcomes].sort()), {
      'exit 0': 25,
      'exit 3': 25,
      oom: 25,
      'signal 15': 25,
      'signal 9': 50,
      start_failed: 50,
    });
    for (const dir of fx.iso.cgroupGroupDirs)
      assert.deepEqual(await nodeCgroupFs.children(dir), [], dir);
  });
});

const hostLayout = await detectLayout().catch(() => null);

describe('isolation lifecycle on the v1 code path', { skip: requiresRoot() }, () => {
  // This host's v1 hierarchies seen without its cgroup2 mount: the pure-v1
  // path (joins by cgroup.procs writes only, stop by freezer) on the real kernel.
  const skip = requiresLayout(hostLayout?.v1.has('freezer') === true, 'needs a v1 freezer');
  test('kill() freezes, kills and thaws; nothing is left', { skip }, async () => {
    const layout = hostLayout;
    assert.ok(layout);
    const fx = await isolationFixture({ layout: { kind: 'v1', v1: layout.v1, unified: null } });
    try {
      assert.equal(fx.iso.cgroupKind, 'v1');
      const jobId = newJobId();
      const sandbox = await launch(
        fx.iso,
        specFor(fx.iso, ['sh', '-c', 'setsid sleep 1000 & echo ready; exec sleep 1000'], { jobId }),
      );
      sandbox.stderr.resume();
      await once(sandbox.stdout, 'data');
      sandbox.stdout.resume();
      const pids = await pidsOf(fx.iso.cgroupGroupDirs, jobId);
      assert.ok(pids.length >= 3, pids.join(' '));
      await sandbox.kill();
      for (const pid of pids) assert.ok(await isGone(pid), `pid ${pid} survived kill()`);
      const report = await sandbox.exited;
      assert.deepEqual([report.exitCode, report.signal], [null, 9]);
      const { report: normal } = await run(fx.iso, ['sh', '-c', 'exit 4']);
      assert.equal(normal.exitCode, 4);
    } finally {
      await fx.dispose();
    }
    assert.deepEqual(fx.warnings, []);
  });
});
