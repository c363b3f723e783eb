import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeEnv, helperArgv, helperError, parseHelperLine } from './helper.js';
import { DEFAULT_LIMITS } from './limits.js';

test('status lines parse; anything else is ignored', () => {
  assert.deepEqual(parseHelperLine('started 123'), { type: 'started', pid: 123 });
  assert.deepEqual(parseHelperLine('exit 125'), { type: 'exit', code: 125 });
  assert.deepEqual(parseHelperLine('signal 9'), { type: 'signal', signal: 9 });
  assert.deepEqual(parseHelperLine('error cgroup write 28'), {
    type: 'error',
    stage: 'cgroup',
    syscall: 'write',
    errno: 28,
  });
  for (const junk of ['', 'exit', 'exit -1', 'started x', 'error a b', 'hello 1']) {
    assert.equal(parseHelperLine(junk), null, junk);
  }
});

const spec = { argv: ['frob', '-x'], cwd: '/srv/x' };
const cases: [string, number, string, string][] = [
  ['exec', 2, 'start_failed', 'command not found: frob'],
  ['exec', 13, 'start_failed', 'not executable: frob (EACCES)'],
  ['cwd', 2, 'start_failed', 'working directory /srv/x: ENOENT'],
  ['cgroup', 28, 'internal', 'sandbox helper failed at cgroup: write: ENOSPC'],
  ['exec', 7, 'internal', 'sandbox helper failed at exec: write: E2BIG'],
];
for (const [stage, errno, code, message] of cases) {
  test(`helper error ${stage} errno ${errno} -> ${code}`, () => {
    const err = helperError({ type: 'error', stage, syscall: 'write', errno }, spec);
    assert.deepEqual([err.code, err.message], [code, message]);
  });
}

test('the helper argv carries the spec as options, then -- and the job argv verbatim', () => {
  const argv = helperArgv(
    {
      jobId: 'abcdefghijklmnopqrstuvwxyz',
      argv: ['--cwd', '/etc', '--'],
      env: [],
      cwd: '/tmp',
      limits: DEFAULT_LIMITS,
      hostNetwork: true,
    },
    { cgroup1Dirs: ['/a', '/b'], cgroup2Dir: '/u', uid: 65534, gid: 65534 },
  );
  assert.deepEqual(argv, [
    ...['--cgroup1-dir', '/a', '--cgroup1-dir', '/b', '--cgroup2-dir', '/u'],
    ...['--hostname', 'abcdefghijklmnopqrstuvwxyz', '--uid', '65534', '--gid', '65534'],
    ...['--cwd', '/tmp', '--parent-pid', String(process.pid), '--host-network'],
    ...['--', '--cwd', '/etc', '--'],
  ]);
});

test('env entries become an object; values may contain "="', () => {
  assert.deepEqual(encodeEnv(['A=1', 'B=x=y', 'C=']), Buffer.from('A=1\0B=x=y\0C=\0'));
});
