import assert from 'node:assert/strict';
import { test } from 'node:test';
import { JobworkerError } from '../../errors.js';
import { type CgroupFs, cgroupError, removeCgroup, writeControl } from './fs.js';

function errno(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: refused`), { code });
}

/** A cgroupfs whose every operation fails with `code`. */
function failing(code: string): CgroupFs {
  const fail = () => Promise.reject(errno(code));
  return { mkdir: fail, rmdir: fail, write: fail, read: fail, children: fail };
}

/** Whether `err` is the internal error naming `message`, with the system error as its cause. */
function isCgroupError(message: string, code: string) {
  return (err: unknown) =>
    err instanceof JobworkerError &&
    err.code === 'internal' &&
    err.message === message &&
    (err.cause as NodeJS.ErrnoException).code === code;
}

test('cgroupError names the operation, the path and the errno code', () => {
  assert.ok(
    isCgroupError(
      'cgroup mkdir /cg/a failed: EACCES',
      'EACCES',
    )(cgroupError('mkdir', '/cg/a', errno('EACCES'))),
  );
  assert.equal(cgroupError('read', '/cg/x', 'odd').message, 'cgroup read /cg/x failed: odd');
});

test('a failed control write is internal, naming the value and the file', async () => {
  await assert.rejects(
    writeControl(failing('EINVAL'), '/cg/a/cpu.max', '100 100000'),
    isCgroupError('cgroup write "100 100000" /cg/a/cpu.max failed: EINVAL', 'EINVAL'),
  );
});

test('a cgroup that cannot be removed is internal; a missing one counts as removed', async () => {
  await assert.rejects(
    removeCgroup(failing('EPERM'), '/cg/a'),
    isCgroupError('cgroup rmdir /cg/a failed: EPERM', 'EPERM'),
  );
  await removeCgroup(failing('ENOENT'), '/cg/a');
});
