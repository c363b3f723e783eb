import assert from 'node:assert/strict';
import { test } from 'node:test';
import { JobworkerError } from '../../errors.js';
import { layoutFrom } from './detect.js';

// Taken from this project's machine kind (hybrid), trimmed.
const hybridMountinfo = `27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw`;
const hybridCgroup = `9:name=systemd:/
8:pids:/
7:blkio:/
4:memory:/process_api/abc
2:cpuacct:/
1:cpu:/
0::/`;

test('hybrid: v1 controllers where mounted, plus the cgroup2 mount', () => {
  const layout = layoutFrom(hybridMountinfo, hybridCgroup);
  assert.equal(layout.kind, 'hybrid');
  assert.equal(layout.unified, '/sys/fs/cgroup/unified');
  assert.equal(layout.v1.get('memory'), '/sys/fs/cgroup/memory/process_api/abc');
  assert.equal(layout.v1.get('cpu'), '/sys/fs/cgroup/cpu');
  assert.equal(layout.v1.has('name=systemd'), true);
});

test('v1 with co-mounted cpu,cpuacct maps both to one directory', () => {
  const layout = layoutFrom(
    '30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct',
    '3:cpu,cpuacct:/system.slice/jw.service',
  );
  assert.equal(layout.kind, 'v1');
  assert.equal(layout.v1.get('cpu'), '/sys/fs/cgroup/cpu,cpuacct/system.slice/jw.service');
  assert.equal(layout.v1.get('cpuacct'), layout.v1.get('cpu'));
});

test('pure v2, with a mount root inside a container (cgroup namespace view)', () => {
  const layout = layoutFrom(
    '30 25 0:26 /kubepods/pod1 /sys/fs/cgroup rw - cgroup2 cgroup2 rw',
    '0::/kubepods/pod1/ctr',
  );
  assert.deepEqual(layout, { kind: 'v2', v1: new Map(), unified: '/sys/fs/cgroup/ctr' });
});

test('escaped mount points are decoded', () => {
  const layout = layoutFrom('30 25 0:26 / /sys/fs/my\\040cgroup rw - cgroup2 cgroup2 rw', '0::/a');
  assert.equal(layout.unified, '/sys/fs/my cgroup/a');
});

test('no cgroup mount is refused', () => {
  assert.throws(() => layoutFrom('27 1 254:0 / / rw - ext4 /dev/vda rw', '0::/'), JobworkerError);
});
