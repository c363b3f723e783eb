/**
 * The host's cgroup layout is the one the run asked for: CI boots a VM per
 * layout (scripts/vm-test.sh sets JOBWORKER_VM_LAYOUT), and a VM that came up
 * with another (a mount that failed, a kernel without cgroup2) must fail the
 * run rather than test a layout twice and another never.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { detectLayout } from '../../src/isolation/cgroup/detect.js';
import { expectedCgroupLayout } from '../helpers/guards.js';

test(
  'the cgroup layout is the one the run asked for',
  { skip: expectedCgroupLayout === undefined ? 'JOBWORKER_VM_LAYOUT is not set' : false },
  async () => {
    const layout = await detectLayout();
    assert.equal(layout.kind, expectedCgroupLayout);
    if (layout.kind === 'v2') {
      // The controllers job limits need are there to delegate.
      const own = layout.unified ?? '';
      const controllers = (await readFile(`${own}/cgroup.controllers`, 'utf8')).split(/\s+/);
      for (const c of ['cpu', 'memory', 'io', 'pids']) assert.ok(controllers.includes(c), c);
    } else {
      for (const c of ['cpu', 'cpuacct', 'memory', 'blkio', 'pids', 'freezer']) {
        assert.ok(layout.v1.has(c), `v1 ${c} is mounted`);
      }
      assert.equal(layout.unified !== null, layout.kind === 'hybrid');
    }
  },
);
