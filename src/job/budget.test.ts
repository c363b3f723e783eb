import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCode, JobworkerError } from '../errors.js';
import { Budget } from './budget.js';
import { OwnerBudgets } from './owner-budget.js';

const rules = {
  jobs: { name: 'max_jobs', max: 2, noun: 'running jobs' },
  bytes: { name: 'max_bytes', max: 100, noun: 'bytes' },
};

const exhausted = (message: string) => (err: unknown) =>
  err instanceof JobworkerError &&
  err.code === ErrorCode.ResourceExhausted &&
  err.message === message;

test('a reservation that fits is taken; one that does not names the rule, the holding and the maximum', () => {
  const budget = new Budget('owner', rules);
  budget.reserve('alice', { jobs: 1, bytes: 60 });
  assert.throws(
    () => budget.reserve('alice', { jobs: 1, bytes: 50 }),
    exhausted('owner "alice" has 60 of 100 bytes, and this asks for 50 more (max_bytes)'),
  );
  budget.reserve('alice', { jobs: 1, bytes: 40 });
  assert.throws(
    () => budget.reserve('alice', { jobs: 1, bytes: 0 }),
    exhausted('owner "alice" has 2 of 2 running jobs (max_jobs)'),
  );
  assert.deepEqual(budget.held('alice'), { jobs: 2, bytes: 100 });
});

test('a refused reservation takes nothing, and other keys are not affected', () => {
  const budget = new Budget('owner', rules);
  budget.reserve('alice', { jobs: 1, bytes: 90 });
  assert.throws(() => budget.reserve('alice', { jobs: 1, bytes: 20 }));
  assert.deepEqual(budget.held('alice'), { jobs: 1, bytes: 90 });
  budget.reserve('bob', { jobs: 2, bytes: 100 });
  assert.deepEqual(budget.held('bob'), { jobs: 2, bytes: 100 });
});

test('release gives back exactly what was taken, once; an empty key leaves the table', () => {
  const budget = new Budget('owner', rules);
  const first = budget.reserve('alice', { jobs: 1, bytes: 30 });
  budget.reserve('alice', { jobs: 1, bytes: 20 });
  first();
  first();
  assert.deepEqual(budget.held('alice'), { jobs: 1, bytes: 20 });
  const zero = new Budget('owner', rules);
  zero.reserve('bob', { jobs: 1, bytes: 1 })();
  assert.deepEqual(zero.held('bob'), { jobs: 0, bytes: 0 });
});

test('a maximum of 0 is unbounded', () => {
  const budget = new Budget('identity', { streams: { name: 's', max: 0, noun: 'streams' } });
  for (let i = 0; i < 1000; i++) budget.reserve('alice', { streams: 1 });
  assert.equal(budget.held('alice').streams, 1000);
});

test("owner budgets: a limit that alone exceeds its sum's bound is invalid_argument", () => {
  const owners = new OwnerBudgets({ runningJobs: 4, memoryBytes: 1000, pidsMax: 100 });
  const limits = { cpuMillis: 1000, memoryBytes: 1001, ioReadBps: 0, ioWriteBps: 0, pidsMax: 10 };
  assert.throws(
    () => owners.reserve('alice', limits, (field) => `limits.${field}`),
    (err: unknown) =>
      err instanceof JobworkerError &&
      err.code === ErrorCode.InvalidArgument &&
      err.message === 'limits.memoryBytes: 1001 is above the maximum 1000 (max_memory_per_owner)',
  );
  const release = owners.reserve('alice', { ...limits, memoryBytes: 600 }, String);
  assert.throws(
    () => owners.reserve('alice', { ...limits, memoryBytes: 600 }, String),
    exhausted(
      'owner "alice" has 600 of 1000 bytes of memory limits, and this asks for 600 more (max_memory_per_owner)',
    ),
  );
  release();
  assert.deepEqual(owners.held('alice'), { runningJobs: 0, memoryBytes: 0, pidsMax: 0 });
});
