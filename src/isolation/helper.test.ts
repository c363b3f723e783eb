import assert from 'node:assert/strict';
import { test } from 'node:test';
import { helperError, launchRequest } from './helper.js';
import { DEFAULT_LIMITS } from './limits.js';

const spec = { argv: ['frob', '-x'], cwd: '/srv/x' };
const cases: [string, number, string, string][] = [
  ['exec', 2, 'start_failed', 'command not found: frob'],
  ['exec', 13, 'start_failed', 'not executable: frob (EACCES)'],
  ['cwd', 2, 'start_failed', 'working directory /srv/x: ENOENT'],
  ['cgroup', 28, 'internal', 'sandbox helper failed at cgroup: write: ENOSPC'],
  ['exec', 36, 'start_failed', 'command not found: frob (ENAMETOOLONG)'],
  [
    'exec',
    7,
    'invalid_argument',
    'the command and environment together are more than execve accepts on this host (E2BIG)',
  ],
  ['clone', 7, 'internal', 'sandbox helper failed at clone: write: E2BIG'],
];
for (const [stage, errno, code, message] of cases) {
  test(`helper error ${stage} errno ${errno} -> ${code}`, () => {
    const err = helperError({ type: 'error', stage, syscall: 'write', errno }, spec);
    assert.deepEqual([err.code, err.message], [code, message]);
  });
}

test('a launch request carries the spec and the cgroups, the job argv verbatim', () => {
  const spec = {
    jobId: 'abcdefghijklmnopqrstuvwxyz',
    argv: ['--cwd', '/etc', '--'],
    env: ['A=1'],
    cwd: '/tmp',
    limits: DEFAULT_LIMITS,
    hostNetwork: true,
  };
  const cgroups = {
    cgroup1Dirs: ['/a', '/b'],
    cgroup2Dir: '/u',
    privateDirs: ['/tmp'],
    uid: 65534,
    gid: 65534,
  };
  assert.deepEqual(launchRequest(spec, cgroups), {
    ...cgroups,
    hostname: 'abcdefghijklmnopqrstuvwxyz',
    cwd: '/tmp',
    hostNetwork: true,
    stdin: false,
    tty: null,
    argv: ['--cwd', '/etc', '--'],
    env: ['A=1'],
  });
  // A terminal implies stdin on the wire.
  const tty = launchRequest({ ...spec, tty: { rows: 2, cols: 3 } }, cgroups);
  assert.deepEqual([tty.stdin, tty.tty], [true, { rows: 2, cols: 3 }]);
});
