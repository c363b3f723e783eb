import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { totalmem } from 'node:os';
import { test } from 'node:test';
import { ErrorCode, JobworkerError } from '../errors.js';
import { readHostTotals, resolveHostBudget } from './host-budget.js';
import { hostMaxima } from './limits.js';

const GiB = 1024 ** 3;
const totals = { memoryBytes: 24 * GiB + 12345, pidsMax: 32768 };

test('the host totals are MemTotal and the smaller of pid_max and threads-max', async () => {
  const read = async (name: string) => Number(await readFile(`/proc/sys/kernel/${name}`, 'utf8'));
  const host = await readHostTotals();
  assert.deepEqual(host, {
    memoryBytes: totalmem(),
    pidsMax: Math.min(await read('pid_max'), await read('threads-max')),
  });
});

test('by default the budget is half of each total, memory in whole pages', () => {
  const budget = resolveHostBudget(totals);
  assert.equal(budget.pidsMax, 16384);
  assert.equal(budget.memoryBytes % 4096, 0);
  assert.ok(budget.memoryBytes <= totals.memoryBytes / 2);
  assert.ok(budget.memoryBytes > totals.memoryBytes / 2 - 4096);
});

test("the operator's values are kept up to the host's total", () => {
  assert.deepEqual(resolveHostBudget(totals, { memoryBytes: GiB, pidsMax: 32768 }), {
    memoryBytes: GiB,
    pidsMax: 32768,
  });
  assert.equal(resolveHostBudget(totals, { pidsMax: 500 }).memoryBytes, 12 * GiB + 4096);
});

const refused: [string, Parameters<typeof resolveHostBudget>[1], RegExp][] = [
  [
    'pids above the total',
    { pidsMax: 32769 },
    /^--host-pids: 32769 is not between 1 and the host's total 32768$/,
  ],
  ['memory above the total', { memoryBytes: 25 * GiB }, /^--host-memory: 26843545600 is not/],
  ['zero', { pidsMax: 0 }, /^--host-pids: 0 is not between 1/],
];

for (const [name, requested, message] of refused) {
  test(`refused: ${name}`, () => {
    assert.throws(
      () => resolveHostBudget(totals, requested),
      (err: unknown) =>
        err instanceof JobworkerError &&
        err.code === ErrorCode.InvalidArgument &&
        message.test(err.message),
    );
  });
}

test("a job's maxima are the host budget's memory and tasks", () => {
  const maxima = hostMaxima({ memoryBytes: GiB, pidsMax: 700 });
  assert.deepEqual([maxima.memoryBytes, maxima.pidsMax, maxima.ioReadBps], [GiB, 700, 0]);
});
