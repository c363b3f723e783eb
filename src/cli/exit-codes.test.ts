import assert from 'node:assert/strict';
import { test } from 'node:test';
import { docsTableRows } from '../../tests/helpers/docs.js';
import { errorRows, JobworkerError } from '../errors.js';
import { ExitCode, exitCodeForError, exitCodeForJob, exitCodeTable } from './exit-codes.js';
import { ConfigError, UsageError } from './failures.js';

test("each error exits with its row's status; jobctl's own failures with theirs", () => {
  for (const row of errorRows) {
    assert.equal(exitCodeForError(new JobworkerError(row.code, 'x')), row.exitCode, row.code);
  }
  assert.equal(exitCodeForError(new UsageError('x')), 64);
  assert.equal(exitCodeForError(new ConfigError('x')), 78);
  assert.equal(exitCodeForError(new Error('x')), 70);
  // As thrown by another copy of src/errors.ts.
  const foreign = Object.assign(new Error('x'), { name: 'JobworkerError', code: 'not_found' });
  assert.equal(exitCodeForError(foreign), 66);
});

test('a job ends as a shell reports it: exit code, 128+signal, 70 when unknown', () => {
  assert.equal(exitCodeForJob({ exitCode: 0 }), 0);
  assert.equal(exitCodeForJob({ exitCode: 3 }), 3);
  assert.equal(exitCodeForJob({ signal: 9 }), 137);
  assert.equal(exitCodeForJob({ signal: 15 }), 143);
  assert.equal(exitCodeForJob({}), 70);
});

test('the help table documents every exit status jobctl chooses, in order', () => {
  const statuses = exitCodeTable.map(([status]) => status);
  const numbers = statuses.map((status) => Number.parseInt(status, 10));
  assert.deepEqual(
    numbers,
    numbers.toSorted((a, b) => a - b),
  );
  for (const status of Object.values(ExitCode))
    assert.ok(statuses.includes(String(status)), `exit ${status} is documented`);
  for (const row of errorRows) {
    assert.ok(
      exitCodeTable.some(
        ([status, meaning]) =>
          status === String(row.exitCode) && meaning === `${row.code}: ${row.meaning}`,
      ),
      row.code,
    );
  }
});

test("docs/errors.md documents every exit status of jobctl's help", async () => {
  // Any cell: the exit table's first column or the code table's third.
  const cells = (await docsTableRows('errors.md')).flat();
  for (const [status] of exitCodeTable) assert.ok(cells.includes(status), `exit ${status}`);
});
