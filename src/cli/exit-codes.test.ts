import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCode, JobworkerError } from '../errors.js';
import { ExitCode, exitCodeForError, exitCodeForJob, exitCodeTable } from './exit-codes.js';
import { ConfigError, UsageError } from './failures.js';

test('each error class has its documented exit status', () => {
  const expected: Record<ErrorCode, number> = {
    invalid_argument: 65,
    not_found: 66,
    already_finished: 67,
    start_failed: 127,
    resource_exhausted: 75,
    unauthenticated: 77,
    permission_denied: 77,
    unavailable: 69,
    cancelled: 130,
    deadline_exceeded: 124,
    internal: 70,
  };
  for (const code of Object.values(ErrorCode)) {
    assert.equal(exitCodeForError(new JobworkerError(code, 'x')), expected[code], code);
  }
  assert.equal(exitCodeForError(new UsageError('x')), 64);
  assert.equal(exitCodeForError(new ConfigError('x')), 78);
  assert.equal(exitCodeForError(new Error('x')), 70);
});

test('a job ends as a shell reports it: exit code, 128+signal, 70 when unknown', () => {
  assert.equal(exitCodeForJob({ exitCode: 0 }), 0);
  assert.equal(exitCodeForJob({ exitCode: 3 }), 3);
  assert.equal(exitCodeForJob({ signal: 9 }), 137);
  assert.equal(exitCodeForJob({ signal: 15 }), 143);
  assert.equal(exitCodeForJob({}), 70);
});

test('the help table documents every exit status jobctl chooses', () => {
  const documented = new Set(exitCodeTable.map(([code]) => code));
  for (const code of Object.values(ExitCode))
    assert.ok(documented.has(String(code)), `exit ${code} is documented`);
});
