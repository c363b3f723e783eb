/** Runs the CgroupManager contract against the fake cgroup v2 fs and the host's real cgroups. */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blockDeviceOf } from '../../src/isolation/cgroup/block-device.js';
import { detectLayout } from '../../src/isolation/cgroup/detect.js';
import { nodeCgroupFs, removeCgroup } from '../../src/isolation/cgroup/fs.js';
import { createManager } from '../../src/isolation/cgroup/manager.js';
import { FakeCgroupFs } from '../helpers/fake-cgroupfs.js';
import { requiresRoot } from '../helpers/guards.js';
import { cgroupManagerContract, type ManagerFixture } from './cgroup-manager.contract.js';

const SERVER_PID = 4242;

const fakeV2: ManagerFixture = {
  name: 'fake cgroup v2',
  skip: () => false,
  async setup(ioDevice) {
    const own = 'system.slice/jobworkerd.service';
    const fake = await FakeCgroupFs.create({ own, pids: [SERVER_PID] });
    const manager = await createManager(
      { kind: 'v2', v1: new Map(), unified: join(fake.root, own) },
      { fs: fake, group: 'jobworker', context: { ioDevice }, selfPid: SERVER_PID },
    );
    return { manager, fs: fake, cleanup: () => fake.destroy() };
  },
};

let serial = 0;
const realHost: ManagerFixture = {
  name: 'host cgroups',
  skip: requiresRoot,
  async setup(ioDevice) {
    const manager = await createManager(await detectLayout(), {
      fs: nodeCgroupFs,
      group: `jobworker-contract-${process.pid}-${++serial}`,
      context: { ioDevice },
      selfPid: process.pid,
    });
    return {
      manager,
      fs: nodeCgroupFs,
      cleanup: async () => {
        for (const dir of manager.groupDirs) await removeCgroup(nodeCgroupFs, dir);
      },
    };
  },
};

// The host's real device when the temp dir has one; the fake accepts any.
const device = (await blockDeviceOf(tmpdir())) ?? '254:0';
for (const fixture of [fakeV2, realHost]) cgroupManagerContract(fixture, device);
