/**
 * The contract every CgroupManager implementation keeps, run against the fake
 * cgroup v2 file system and against the host's real cgroups
 * (cgroup-manager.test.ts). Implementation-specific file names and values are
 * tested separately (cgroup-v2-fake.test.ts, tests/integration).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CgroupFs } from '../../src/isolation/cgroup/fs.js';
import type { CgroupManager } from '../../src/isolation/cgroup/manager.js';
import { JobworkerError } from '../../src/errors.js';
import type { Limits } from '../../src/isolation/types.js';

/** One implementation under test. */
export interface ManagerFixture {
  readonly name: string;
  /** Skip reason, or false. */
  readonly skip: () => string | false;
  setup(ioDevice: string | null): Promise<{
    manager: CgroupManager;
    fs: CgroupFs;
    cleanup: () => Promise<void>;
  }>;
}

const limits: Limits = {
  cpuMillis: 500,
  memoryBytes: 64 * 1024 * 1024,
  ioReadBps: 0,
  ioWriteBps: 10 * 1024 * 1024,
  pidsMax: 100,
};

const exists = (fs: CgroupFs, dir: string) =>
  fs.children(dir).then(
    () => true,
    () => false,
  );

let serial = 0;
const jobId = () => `contract${process.pid}x${++serial}`.padEnd(26, 'a').slice(0, 26);

/** Registers the contract's tests for `fixture`. */
export function cgroupManagerContract(fixture: ManagerFixture, ioDevice: string): void {
  const name = (what: string) => `${fixture.name}: ${what}`;

  test(name('create writes the limits, and they read back'), { skip: fixture.skip() }, async () => {
    const { manager, fs, cleanup } = await fixture.setup(ioDevice);
    try {
      const job = await manager.create(jobId(), limits);
      assert.deepEqual(await job.readLimits(), limits);
      for (const dir of job.dirs) assert.ok(await exists(fs, dir), dir);
      assert.ok(job.cgroup1Dirs.length > 0 || job.cgroup2Dir !== null);
      await job.remove();
      for (const dir of job.dirs) assert.equal(await exists(fs, dir), false, dir);
    } finally {
      await cleanup();
    }
  });

  test(
    name('a fresh cgroup reports zero usage and no OOM kill'),
    { skip: fixture.skip() },
    async () => {
      const { manager, cleanup } = await fixture.setup(ioDevice);
      try {
        const job = await manager.create(jobId(), limits);
        const report = await job.report();
        assert.equal(report.oomKilled, false);
        assert.equal(report.usage.peakMemoryBytes, 0);
        assert.equal(report.usage.ioWriteBytes, 0);
        await job.kill(); // nothing to kill: resolves
        await job.waitEmpty(AbortSignal.timeout(30_000));
        await job.remove();
      } finally {
        await cleanup();
      }
    },
  );

  test(
    name('an IO limit without a block device is refused and leaves nothing'),
    { skip: fixture.skip() },
    async () => {
      const { manager, fs, cleanup } = await fixture.setup(null);
      try {
        const id = jobId();
        await assert.rejects(manager.create(id, limits), (err: unknown) => {
          assert.ok(err instanceof JobworkerError);
          assert.equal(err.code, 'invalid_argument');
          assert.match(err.message, /ioReadBps\/ioWriteBps/);
          return true;
        });
        for (const group of manager.groupDirs) assert.deepEqual(await fs.children(group), []);
      } finally {
        await cleanup();
      }
    },
  );

  test(name('sweep kills and removes leftover job cgroups'), { skip: fixture.skip() }, async () => {
    const { manager, fs, cleanup } = await fixture.setup(ioDevice);
    try {
      await manager.create(jobId(), limits);
      await manager.create(jobId(), { ...limits, ioWriteBps: 0 });
      assert.equal(await manager.sweep(), 2);
      for (const group of manager.groupDirs) assert.deepEqual(await fs.children(group), []);
      assert.equal(await manager.sweep(), 0);
    } finally {
      await cleanup();
    }
  });
}
