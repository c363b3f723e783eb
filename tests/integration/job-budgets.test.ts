/**
 * Per-owner budgets (owner-budget.ts) through the real job manager and
 * isolation, as root: running jobs and the sums of memory and pids limits,
 * refused with resource_exhausted for one owner while others go on, and
 * given back on every way a job ends.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { ErrorCode, JobworkerError } from '../../src/errors.js';
import type { JobManager } from '../../src/job/index.js';
import { requiresRoot } from '../helpers/guards.js';
import { type Fixture, newFixture, readAll, spec } from '../helpers/job-fixture.js';
import { type IsolationFactory, realIsolationFactory } from '../helpers/isolations.js';

const skip = requiresRoot();
const MiB = 1024 * 1024;

function real(): IsolationFactory {
  const factory = realIsolationFactory();
  assert.ok(factory, 'running as root, the real isolation is registered');
  return factory;
}

const refusedWith = (code: string, message: string) => (err: unknown) =>
  err instanceof JobworkerError && err.code === code && err.message === message;

const sleeper = (limits = {}) => ({ ...spec(['sleep', '60']), limits });

/** Waits (bounded) until `owner` holds nothing: the release runs once the job's end is recorded. */
async function released(jobs: JobManager, owner: string): Promise<void> {
  const none = { runningJobs: 0, memoryBytes: 0, pidsMax: 0 };
  for (let i = 0; i < 100 && jobs.ownerBudgetHeld(owner).runningJobs > 0; i++) await delay(10);
  assert.deepEqual(jobs.ownerBudgetHeld(owner), none);
}

async function withFixture(
  options: Parameters<typeof newFixture>[1],
  fn: (fx: Fixture) => Promise<void>,
): Promise<void> {
  const fx = await newFixture(real(), options);
  try {
    await fn(fx);
  } finally {
    await fx.close();
  }
}

test(
  'an owner at its running-jobs budget is refused while another owner starts; a stop gives the slot back',
  { skip },
  async (t) => {
    await withFixture({ ownerBudget: { runningJobs: 2 } }, async ({ jobs }) => {
      const first = await jobs.start('alice', sleeper());
      await jobs.start('alice', sleeper());
      const asked = process.hrtime.bigint();
      await assert.rejects(
        jobs.start('alice', sleeper()),
        refusedWith(
          ErrorCode.ResourceExhausted,
          'owner "alice" has 2 of 2 running jobs (max_running_jobs_per_owner)',
        ),
      );
      t.diagnostic(`refused in ${Number(process.hrtime.bigint() - asked) / 1e6} ms`);
      const bob = await jobs.start('bob', spec(['true']));
      assert.equal((await readAll(jobs, bob.id)).finished?.exitCode, 0);
      await jobs.stop(first.id, 'alice', { graceMs: 0 });
      assert.equal(jobs.ownerBudgetHeld('alice').runningJobs, 1);
      await jobs.start('alice', spec(['true']));
    });
  },
);

test(
  "the sums of an owner's memory and pids limits are bounded; one limit above a sum's bound is invalid",
  { skip },
  async () => {
    const ownerBudget = { memoryBytes: 256 * MiB, pidsMax: 2000 };
    await withFixture({ ownerBudget }, async ({ jobs }) => {
      await jobs.start('alice', sleeper({ memoryBytes: 200 * MiB, pidsMax: 1500 }));
      await assert.rejects(
        jobs.start('alice', sleeper({ memoryBytes: 100 * MiB, pidsMax: 100 })),
        refusedWith(
          ErrorCode.ResourceExhausted,
          `owner "alice" has ${200 * MiB} of ${256 * MiB} bytes of memory limits, and this asks for ${100 * MiB} more (max_memory_per_owner)`,
        ),
      );
      await assert.rejects(
        jobs.start('alice', sleeper({ memoryBytes: 10 * MiB, pidsMax: 600 })),
        refusedWith(
          ErrorCode.ResourceExhausted,
          'owner "alice" has 1500 of 2000 tasks of pids limits, and this asks for 600 more (max_pids_per_owner)',
        ),
      );
      await assert.rejects(
        jobs.start('bob', sleeper({ memoryBytes: 300 * MiB })),
        refusedWith(
          ErrorCode.InvalidArgument,
          `limits.memoryBytes: ${300 * MiB} is above the maximum ${256 * MiB} (max_memory_per_owner)`,
        ),
      );
      await jobs.start('bob', sleeper({ memoryBytes: 200 * MiB, pidsMax: 1500 }));
      assert.deepEqual(jobs.ownerBudgetHeld('alice'), {
        runningJobs: 1,
        memoryBytes: 200 * MiB,
        pidsMax: 1500,
      });
    });
  },
);

test(
  'the reservation is given back after a failed start, a cancelled start and an exit',
  { skip },
  async () => {
    await withFixture({ ownerBudget: { runningJobs: 1 } }, async ({ jobs }) => {
      await assert.rejects(jobs.start('alice', spec(['no-such-command-here'])), {
        code: ErrorCode.StartFailed,
      });
      await released(jobs, 'alice');
      const abort = new AbortController();
      const cancelled = jobs.start('alice', spec(['true']), abort.signal);
      abort.abort(new JobworkerError(ErrorCode.Cancelled, 'client went away'));
      await assert.rejects(cancelled, { code: ErrorCode.Cancelled });
      await released(jobs, 'alice');
      const job = await jobs.start('alice', spec(['true']));
      assert.equal((await readAll(jobs, job.id)).finished?.exitCode, 0);
      await released(jobs, 'alice');
      const next = await jobs.start('alice', spec(['true']));
      assert.equal((await readAll(jobs, next.id)).finished?.exitCode, 0);
    });
  },
);
