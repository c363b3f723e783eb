/**
 * The cgroup v2 code path against the fake cgroupfs: exact file names and
 * values, subtree_control delegation and the no-internal-processes rule.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { JobworkerError } from '../../src/errors.js';
import { createManager } from '../../src/isolation/cgroup/manager.js';
import type { Limits } from '../../src/isolation/types.js';
import { FakeCgroupFs } from '../helpers/fake-cgroupfs.js';

const SERVER_PID = 4242;
const OWN = 'system.slice/jobworkerd.service';
const JOB = 'abcdefghijklmnopqrstuvwxyz';
const limits: Limits = {
  cpuMillis: 1500,
  memoryBytes: 256 * 1024 * 1024,
  ioReadBps: 1048576,
  ioWriteBps: 0,
  pidsMax: 64,
};

async function withFake(
  fn: (fake: FakeCgroupFs, own: string) => Promise<void>,
  controllers?: readonly string[],
): Promise<void> {
  const fake = await FakeCgroupFs.create({
    own: OWN,
    pids: [SERVER_PID],
    ...(controllers ? { controllers } : {}),
  });
  try {
    await fn(fake, join(fake.root, OWN));
  } finally {
    await fake.destroy();
  }
}

const manager = (fake: FakeCgroupFs, own: string, ioDevice: string | null = '8:0') =>
  createManager(
    { kind: 'v2', v1: new Map(), unified: own },
    { fs: fake, group: 'jobworker', context: { ioDevice }, selfPid: SERVER_PID },
  );

const errnoCode = (err: unknown) => (err as NodeJS.ErrnoException).code;

test('the fake refuses what the kernel refuses', async () => {
  await withFake(async (fake, own) => {
    // No internal processes: own has the server in it.
    await assert.rejects(
      fake.write(`${own}/cgroup.subtree_control`, '+memory'),
      (e) => errnoCode(e) === 'EBUSY',
    );
    // A controller file of a controller not enabled in the parent does not exist.
    await fake.mkdir(`${own}/child`);
    await assert.rejects(
      fake.write(`${own}/child/memory.max`, '1'),
      (e) => errnoCode(e) === 'ENOENT',
    );
    await assert.rejects(
      fake.write(`${own}/cgroup.subtree_control`, '+rdma'),
      (e) => errnoCode(e) === 'ENOENT',
    );
    await assert.rejects(
      fake.write(`${own}/cgroup.events`, 'populated 0'),
      (e) => errnoCode(e) === 'EACCES',
    );
    await assert.rejects(fake.rmdir(own), (e) => errnoCode(e) === 'EBUSY');
  });
});

test('v2: the server moves into a leaf, then controllers are delegated to the job cgroups', async () => {
  await withFake(async (fake, own) => {
    const m = await manager(fake, own);
    assert.equal(m.kind, 'v2');
    assert.deepEqual(m.groupDirs, [`${own}/jobworker`]);
    assert.equal(
      (await fake.read(`${own}/jobworker.server/cgroup.procs`)).trim(),
      String(SERVER_PID),
    );
    assert.equal((await fake.read(`${own}/cgroup.procs`)).trim(), '');
    for (const dir of [own, `${own}/jobworker`]) {
      assert.deepEqual(
        (await fake.read(`${dir}/cgroup.subtree_control`)).trim().split(' ').sort(),
        ['cpu', 'io', 'memory', 'pids'],
      );
    }
  });
});

test('v2: a server sharing its cgroup with other processes refuses to start, naming the fix', async () => {
  const fake = await FakeCgroupFs.create({ own: OWN, pids: [SERVER_PID, 4343] });
  try {
    await assert.rejects(
      manager(fake, join(fake.root, OWN)),
      (e) =>
        e instanceof JobworkerError &&
        e.message.includes('holds processes other than jobworkerd') &&
        e.message.includes('a cgroup of its own'),
    );
  } finally {
    await fake.destroy();
  }
});

test('v2: limits are written to the kernel files with the kernel syntax', async () => {
  await withFake(async (fake, own) => {
    const job = await (await manager(fake, own)).create(JOB, limits);
    const dir = `${own}/jobworker/${JOB}`;
    assert.equal(job.cgroup2Dir, dir);
    assert.deepEqual(job.cgroup1Dirs, []);
    const read = async (file: string) => (await fake.read(`${dir}/${file}`)).trim();
    assert.equal(await read('cpu.max'), '150000 100000');
    assert.equal(await read('memory.max'), String(256 * 1024 * 1024));
    assert.equal(await read('memory.swap.max'), '0');
    assert.equal(await read('memory.oom.group'), '1');
    assert.equal(await read('io.max'), '8:0 rbps=1048576 wbps=max riops=max wiops=max');
    assert.equal(await read('pids.max'), '64');
    await job.remove();
  });
});

test('v2: the host budget is written on the group, without memory.oom.group, and again on a recreated group', async () => {
  await withFake(async (fake, own) => {
    const budget = { memoryBytes: 512 * 1024 * 1024, pidsMax: 300 };
    const cgroups = await createManager(
      { kind: 'v2', v1: new Map(), unified: own },
      { fs: fake, group: 'jobworker', context: { ioDevice: '8:0' }, selfPid: SERVER_PID, budget },
    );
    const read = async (file: string) => (await fake.read(`${own}/jobworker/${file}`)).trim();
    const expected = [String(budget.memoryBytes), '300', '0'];
    assert.deepEqual(
      [await read('memory.max'), await read('pids.max'), await read('memory.oom.group')],
      expected,
    );
    await fake.rmdir(`${own}/jobworker`);
    const job = await cgroups.create(JOB, limits);
    assert.deepEqual(
      [await read('memory.max'), await read('pids.max'), await read('memory.oom.group')],
      expected,
    );
    await job.remove();
  });
});

test('v2: a group removed under the server is made again, with delegation, at the next create', async () => {
  await withFake(async (fake, own) => {
    const cgroups = await manager(fake, own);
    await fake.rmdir(`${own}/jobworker`);
    const job = await cgroups.create(JOB, limits);
    // The limit files exist only if the recreated group delegates the controllers again.
    assert.equal(
      (await fake.read(`${own}/jobworker/${JOB}/memory.max`)).trim(),
      String(limits.memoryBytes),
    );
    await job.remove();
  });
});

test('v2: no io.max line when IO is unlimited', async () => {
  await withFake(async (fake, own) => {
    const job = await (await manager(fake, own)).create(JOB, { ...limits, ioReadBps: 0 });
    assert.equal((await fake.read(`${own}/jobworker/${JOB}/io.max`)).trim(), '');
    await job.remove();
  });
});

test('v2: a missing controller refuses start-up, naming it', async () => {
  await withFake(
    async (fake, own) => {
      await assert.rejects(manager(fake, own), (err: unknown) => {
        assert.ok(err instanceof JobworkerError);
        assert.equal(err.code, 'internal');
        assert.match(err.message, /controllers missing .*: io/);
        return true;
      });
    },
    ['cpu', 'memory', 'pids'],
  );
});

test('v2: a refused limit write fails closed and removes the job cgroup', async () => {
  await withFake(async (fake, own) => {
    const m = await manager(fake, own);
    // Quota below the kernel's 1 ms minimum: EINVAL from the fake, as from the kernel.
    await assert.rejects(m.create(JOB, { ...limits, cpuMillis: 5 }), (err: unknown) => {
      assert.ok(err instanceof JobworkerError);
      assert.equal(err.code, 'internal');
      assert.match(err.message, /cpu\.max.*EINVAL/);
      return true;
    });
    assert.deepEqual(await fake.children(`${own}/jobworker`), []);
  });
});

test('v2: OOM kills and usage are read from memory.events, cpu.stat, memory.peak, io.stat', async () => {
  await withFake(async (fake, own) => {
    const job = await (await manager(fake, own)).create(JOB, limits);
    const dir = `${own}/jobworker/${JOB}`;
    await fake.setKernelFile(`${dir}/memory.events`, 'low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n');
    await fake.setKernelFile(
      `${dir}/cpu.stat`,
      'usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n',
    );
    await fake.setKernelFile(`${dir}/memory.peak`, '123456\n');
    await fake.setKernelFile(
      `${dir}/io.stat`,
      '8:0 rbytes=10 wbytes=20 rios=1 wios=2\n8:16 rbytes=1 wbytes=2\n',
    );
    assert.deepEqual(await job.report(), {
      oomKilled: true,
      usage: { cpuTimeNs: 1_500_000, peakMemoryBytes: 123456, ioReadBytes: 11, ioWriteBytes: 22 },
    });
    await job.remove();
  });
});

test('v2: kill writes cgroup.kill; waitEmpty resolves on the populated 0 event; remove then succeeds', async () => {
  await withFake(async (fake, own) => {
    const job = await (await manager(fake, own)).create(JOB, limits);
    const dir = `${own}/jobworker/${JOB}`;
    await fake.addProcess(dir, 777);
    await assert.rejects(fake.rmdir(dir), (e) => errnoCode(e) === 'EBUSY');
    const empty = job.waitEmpty(AbortSignal.timeout(30_000));
    let resolved = false;
    void empty.then(() => (resolved = true));
    await new Promise((r) => setImmediate(r));
    assert.equal(resolved, false);
    await job.kill();
    await empty;
    assert.equal((await fake.read(`${dir}/cgroup.events`)).split('\n')[0], 'populated 0');
    await job.remove();
    assert.equal(await fake.exists(dir), false);
  });
});
