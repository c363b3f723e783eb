/**
 * The host budget on the group cgroup and the OOM killer's order, on real
 * cgroups as root. Budgets are set small here so that filling one takes a
 * few hundred tasks or tens of MiB, not half the host; the default budget is
 * checked as written, not filled.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { ErrorCode, JobworkerError } from '../../src/errors.js';
import { nodeCgroupFs } from '../../src/isolation/cgroup/fs.js';
import { readHostTotals, type Sandbox } from '../../src/isolation/index.js';
import { requiresRoot } from '../helpers/guards.js';
import {
  collect,
  type IsolationFixture,
  isolationFixture,
  launch,
  newJobId,
  run,
  specFor,
  suiteIsolation,
} from '../helpers/isolation-fixture.js';

const MiB = 1024 * 1024;
const skip = requiresRoot();

/** The group directory (or, with `jobId`, the job's) of the hierarchy holding `file`. */
async function dirWith(iso: { cgroupGroupDirs: readonly string[] }, file: string, jobId = '') {
  for (const group of iso.cgroupGroupDirs) {
    const dir = jobId === '' ? group : `${group}/${jobId}`;
    if ((await nodeCgroupFs.read(`${dir}/${file}`).catch(() => null)) !== null) return dir;
  }
  throw new Error(`no hierarchy has ${file}`);
}

const FILL_MS = 10_000;

const readNumber = async (file: string) => Number((await readFile(file, 'utf8')).trim());

/** Polls `file` until it reads at least `target` (or `ms` pass); returns the most seen. */
async function waitAtLeast(file: string, target: number, ms: number): Promise<number> {
  let most = 0;
  const end = Date.now() + ms;
  while (Date.now() < end && most < target) {
    most = Math.max(most, await readNumber(file).catch(() => 0));
    if (most < target) await delay(20);
  }
  return most;
}

/**
 * A fork loop as a hostile job writes it: forks until the kernel refuses and
 * keeps retrying, each child holding its task (perl-base is in every Debian;
 * dash exits at its first refused fork, and a `b | b &` bomb churns).
 */
const BOMB = [
  'perl',
  '-e',
  'while (1) { my $p = fork; if (!defined $p) { select undef, undef, undef, 0.01; next } exec "sleep", "60" if $p == 0 }',
];

/** Whether this process may lower oom_score_adj (CAP_SYS_RESOURCE, bit 24). */
async function hasSysResource(): Promise<boolean> {
  const status = await readFile('/proc/self/status', 'utf8');
  const eff = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1] ?? '0';
  return (BigInt(`0x${eff}`) & (1n << 24n)) !== 0n;
}

describe('host budget: tasks', { skip }, () => {
  let fx: IsolationFixture;
  before(async () => {
    fx = await isolationFixture({ hostBudget: { pidsMax: 400 } });
  });
  after(async () => {
    await fx.dispose();
    assert.deepEqual(fx.warnings, []);
  });

  test('the group carries the budget; a job may ask for all of it, not more', async () => {
    const group = await dirWith(fx.iso, 'pids.max');
    assert.equal((await readFile(`${group}/pids.max`, 'utf8')).trim(), '400');
    assert.equal(fx.iso.resolveLimits({ pidsMax: 400 }).pidsMax, 400);
    assert.throws(
      () => fx.iso.resolveLimits({ pidsMax: 401 }),
      (err: unknown) =>
        err instanceof JobworkerError &&
        err.code === ErrorCode.InvalidArgument &&
        err.message === 'limits.pidsMax: 401 is above the maximum 400',
    );
  });

  test('a fork bomb under its own pids limit is held there; another job starts and the host forks', async (t) => {
    const jobId = newJobId();
    const bomb = await launch(fx.iso, specFor(fx.iso, BOMB, { jobId, limits: { pidsMax: 100 } }));
    const ended = collect(bomb);
    try {
      const jobDir = await dirWith(fx.iso, 'pids.current', jobId);
      const reached = await waitAtLeast(`${jobDir}/pids.current`, 100, FILL_MS);
      t.diagnostic(`fork bomb under pids 100: reached ${reached} tasks`);
      assert.equal(reached, 100);
      const other = await run(fx.iso, ['echo', 'still starts']);
      assert.deepEqual([other.report.exitCode, other.stdout], [0, 'still starts\n']);
      assert.equal(spawnSync('true').status, 0);
    } finally {
      await bomb.kill();
      await ended;
    }
  });

  test('a fork bomb asking for the maximum is held at the host budget; the host forks, a new job is refused', async (t) => {
    const group = await dirWith(fx.iso, 'pids.current');
    const bomb = await launch(fx.iso, specFor(fx.iso, BOMB, { limits: { pidsMax: 400 } }));
    const ended = collect(bomb);
    try {
      const started = Date.now();
      const reached = await waitAtLeast(`${group}/pids.current`, 400, FILL_MS);
      t.diagnostic(
        `bomb at pids 400: the group reached ${reached} tasks in ${Date.now() - started} ms`,
      );
      assert.equal(reached, 400);
      const forked = Date.now();
      assert.equal(spawnSync('true').status, 0);
      t.diagnostic(`the test process forked in ${Date.now() - forked} ms`);
      const refused = Date.now();
      await assert.rejects(run(fx.iso, ['true']), {
        code: 'resource_exhausted',
        message: /^no task left to start the job: all jobs together hold the host budget of tasks/,
      });
      t.diagnostic(`a new job was refused in ${Date.now() - refused} ms`);
    } finally {
      await bomb.kill();
      await ended;
    }
  });

  test('two fork bombs are held together at the host budget, below their own limits', async (t) => {
    const group = await dirWith(fx.iso, 'pids.current');
    const ids = [newJobId(), newJobId()];
    const bombs: Sandbox[] = [];
    try {
      // One after the other: the first holds its 300, the second gets the 100 left.
      for (const [i, jobId] of ids.entries()) {
        bombs.push(
          await launch(fx.iso, specFor(fx.iso, BOMB, { jobId, limits: { pidsMax: 300 } })),
        );
        await waitAtLeast(`${group}/${jobId}/pids.current`, i === 0 ? 300 : 100, FILL_MS);
      }
      const reached = await waitAtLeast(`${group}/pids.current`, 400, FILL_MS);
      const each = await Promise.all(ids.map((id) => readNumber(`${group}/${id}/pids.current`)));
      t.diagnostic(`two bombs at pids 300 each: the group holds ${reached} (${each.join(' + ')})`);
      assert.equal(reached, 400);
      assert.equal(await waitAtLeast(`${group}/pids.current`, 401, 300), 400, 'never above');
      assert.equal(spawnSync('true').status, 0);
    } finally {
      await Promise.all(
        bombs.map(async (b) => {
          await b.kill();
          await collect(b);
        }),
      );
    }
  });
});

describe('host budget: memory', { skip }, () => {
  let fx: IsolationFixture;
  before(async () => {
    fx = await isolationFixture({ hostBudget: { memoryBytes: 64 * MiB } });
  });
  after(async () => {
    await fx.dispose();
    assert.deepEqual(fx.warnings, []);
  });

  test('the group carries the budget (v1 with memsw), and defaults are lowered to it', async () => {
    const group = await dirWith(fx.iso, 'memory.oom_control').catch(() =>
      dirWith(fx.iso, 'memory.max'),
    );
    const files = ['memory.limit_in_bytes', 'memory.memsw.limit_in_bytes', 'memory.max'];
    for (const file of files) {
      const value = await readFile(`${group}/${file}`, 'utf8').catch(() => null);
      if (value !== null) assert.equal(value.trim(), String(64 * MiB), file);
    }
    assert.equal(fx.iso.resolveLimits({}).memoryBytes, 64 * MiB);
  });

  test('a job OOM-killed because all jobs together reach the group budget reports it', async (t) => {
    // A holds 40 MB (tail buffers a line that never ends) under its own 48 MiB;
    // B then asks for 30 MB more: the group's 64 MiB is hit, not either job's
    // own limit, and the kernel kills the largest task of the group: A's tail.
    const holder = await launch(
      fx.iso,
      specFor(fx.iso, ['sh', '-c', '(head -c 40000000 /dev/zero; sleep 60) | tail > /dev/null'], {
        limits: { memoryBytes: 48 * MiB },
      }),
    );
    const held = collect(holder);
    try {
      // v1 memory.usage_in_bytes, v2 memory.current: the group's charge.
      const usage = (await dirWith(fx.iso, 'memory.current').catch(() => null))
        ? 'memory.current'
        : 'memory.usage_in_bytes';
      const memory = await dirWith(fx.iso, usage);
      const group = await waitAtLeast(`${memory}/${usage}`, 38_000_000, FILL_MS);
      assert.ok(group >= 38_000_000, `the holder reached ${group} bytes`);
      const grower = await run(
        fx.iso,
        ['sh', '-c', 'head -c 30000000 /dev/zero | tail > /dev/null'],
        {
          limits: { memoryBytes: 48 * MiB },
        },
      );
      assert.deepEqual([grower.report.exitCode, grower.report.oomKilled], [0, false]);
    } finally {
      await holder.kill();
    }
    const { report } = await held;
    t.diagnostic(`holder: peak ${report.usage.peakMemoryBytes} bytes, own limit ${48 * MiB}`);
    assert.equal(report.oomKilled, true);
    assert.ok(report.usage.peakMemoryBytes < 48 * MiB, 'its own limit was not reached');
  });
});

describe('host budget: defaults and the OOM order', { skip }, () => {
  const fx = suiteIsolation();

  test("by default the group holds half of the host's tasks and memory, and that is a job's maximum", async () => {
    const host = await readHostTotals();
    const pids = Math.floor(host.pidsMax / 2);
    const memory = Math.floor(host.memoryBytes / 2 / 4096) * 4096;
    const group = await dirWith(fx.iso, 'pids.max');
    assert.equal((await readFile(`${group}/pids.max`, 'utf8')).trim(), String(pids));
    assert.deepEqual(fx.iso.hostBudget, { memoryBytes: memory, pidsMax: pids });
    assert.equal(fx.iso.resolveLimits({ pidsMax: pids }).pidsMax, pids);
    assert.throws(() => fx.iso.resolveLimits({ pidsMax: host.pidsMax }), {
      code: 'invalid_argument',
    });
    assert.throws(() => fx.iso.resolveLimits({ memoryBytes: memory + 4096 }), {
      code: 'invalid_argument',
    });
  });

  test("jobs are the OOM killer's first candidates and cannot lower that; the helpers its last", async () => {
    const sandbox = await launch(
      fx.iso,
      specFor(fx.iso, [
        'sh',
        '-c',
        // The sleep keeps the helper for the test to read.
        'cat /proc/self/oom_score_adj; echo -1 > /proc/self/oom_score_adj || echo refused; sleep 1',
      ]),
    );
    const done = collect(sandbox);
    const own = Number((await readFile('/proc/self/oom_score_adj', 'utf8')).trim());
    const helper = Number((await readFile(`/proc/${sandbox.pid}/oom_score_adj`, 'utf8')).trim());
    // Lowering takes CAP_SYS_RESOURCE; without it the fork server keeps its parent's.
    assert.equal(helper, (await hasSysResource()) ? -900 : own);
    const { stdout } = await done;
    assert.deepEqual(stdout.trim().split('\n'), ['1000', 'refused']);
  });

  test('a group kept from a previous run with a smaller memory budget takes a larger one', async () => {
    const group = `jobworker-test-${process.pid}-regrow`;
    const first = await isolationFixture({
      cgroupGroup: group,
      hostBudget: { memoryBytes: 64 * MiB },
    });
    // Its group stays in place while the second starts on it, as after a server killed hard.
    const second = await isolationFixture({
      cgroupGroup: group,
      hostBudget: { memoryBytes: 128 * MiB },
    });
    try {
      const file = (await dirWith(second.iso, 'memory.max').catch(() => null))
        ? 'memory.max'
        : 'memory.limit_in_bytes';
      const limit = await readFile(`${await dirWith(second.iso, file)}/${file}`, 'utf8');
      assert.equal(limit.trim(), String(128 * MiB));
      const { report } = await run(second.iso, ['true']);
      assert.equal(report.exitCode, 0);
    } finally {
      await second.dispose();
      await first.iso.close(); // its group went with the second's
    }
  });
});
