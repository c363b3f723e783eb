import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCode, JobworkerError } from '../errors.js';
import { readHostTotals } from '../isolation/index.js';
import { readBudgets } from './budget-flags.js';

test('budget flags are read into the host and owner budgets; absent ones are left out', async () => {
  assert.deepEqual(
    await readBudgets({
      'host-memory': '2G',
      'max-running-jobs-per-owner': '4',
      'max-pids-per-owner': '100',
    }),
    {
      hostBudget: { memoryBytes: 2 * 1024 ** 3 },
      ownerBudget: { runningJobs: 4, pidsMax: 100 },
    },
  );
  assert.deepEqual(await readBudgets({}), { hostBudget: {}, ownerBudget: {} });
});

test('malformed values, values above the host total and owner sums above the host budget are refused', async () => {
  const host = await readHostTotals();
  const cases: [Record<string, string>, RegExp][] = [
    [{ 'host-memory': '512' }, /^--host-memory "512" has no unit; say 512M/],
    [{ 'host-pids': 'many' }, /^--host-pids "many" is not a whole number of at least 1$/],
    [{ 'max-running-jobs-per-owner': '0' }, /^--max-running-jobs-per-owner "0" is not/],
    [
      { 'host-pids': String(host.pidsMax + 1) },
      new RegExp(`^--host-pids: ${host.pidsMax + 1} is not between 1 and the host's total`),
    ],
    [
      { 'host-pids': '100', 'max-pids-per-owner': '101' },
      /^--max-pids-per-owner: 101 is above the host budget 100 \(--host-pids\)$/,
    ],
  ];
  for (const [values, message] of cases) {
    await assert.rejects(
      readBudgets(values),
      (err: unknown) =>
        err instanceof JobworkerError &&
        err.code === ErrorCode.InvalidArgument &&
        message.test(err.message),
      JSON.stringify(values),
    );
  }
});
