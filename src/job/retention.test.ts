/** The retention rules as table rows: age, budget, counts, oldest first, ties. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { selectForRemoval, type RetentionCandidate } from './retention.js';

const HOUR = 3_600_000;
const policy = {
  retentionMs: 24 * HOUR,
  diskBudgetBytes: 1000,
  maxJobs: 4,
  maxJobsPerOwner: 2,
  recordBudgetBytes: 300,
};
const now = 100 * HOUR;
const job = (
  id: string,
  hoursAgo: number,
  logBytes: number,
  owner = id,
  recordBytes = 10,
): RetentionCandidate => ({
  id,
  owner,
  finishedAtMs: now - hoursAgo * HOUR,
  logBytes,
  recordBytes,
});

const cases: { name: string; jobs: RetentionCandidate[]; want: [string, string][] }[] = [
  { name: 'nothing to remove', jobs: [job('a', 1, 400), job('b', 2, 600)], want: [] },
  {
    name: 'exactly at the period is removed',
    jobs: [job('a', 24, 1), job('b', 23, 1)],
    want: [['a', 'age']],
  },
  {
    name: 'over budget: oldest first until within',
    jobs: [job('new', 1, 500), job('old', 3, 500), job('mid', 2, 500)],
    want: [['old', 'disk_budget']],
  },
  {
    name: 'aged jobs do not count against the budget',
    jobs: [job('ancient', 30, 5000), job('a', 2, 600), job('b', 1, 400)],
    want: [['ancient', 'age']],
  },
  {
    name: 'one job alone over budget goes too',
    jobs: [job('huge', 1, 5000)],
    want: [['huge', 'disk_budget']],
  },
  {
    name: "jobs without output count: over an owner's count, its oldest go",
    jobs: [job('a1', 3, 0, 'a'), job('a2', 2, 0, 'a'), job('a3', 1, 0, 'a'), job('b1', 9, 0, 'b')],
    want: [['a1', 'owner_count']],
  },
  {
    name: 'over the total count, the oldest of anyone go',
    jobs: [1, 2, 3, 4, 5, 6].map((h) => job(`j${h}`, h, 0)),
    want: [
      ['j6', 'count'],
      ['j5', 'count'],
    ],
  },
  {
    name: 'jobs removed by age or budget do not count',
    jobs: [
      job('old', 30, 0, 'a'),
      job('big', 5, 2000, 'a'),
      job('a1', 2, 0, 'a'),
      job('a2', 1, 0, 'a'),
    ],
    want: [
      ['old', 'age'],
      ['big', 'disk_budget'],
    ],
  },
  {
    name: 'over the record budget (long argv), the oldest go',
    jobs: [job('a', 3, 0, 'a', 200), job('b', 2, 0, 'b', 200), job('c', 1, 0, 'c', 50)],
    want: [['a', 'record_budget']],
  },
  {
    name: 'ties broken by id',
    jobs: [job('b', 2, 600), job('a', 2, 600)],
    want: [['a', 'disk_budget']],
  },
];

for (const c of cases) {
  test(`retention: ${c.name}`, () => {
    assert.deepEqual([...selectForRemoval(c.jobs, now, policy)], c.want);
  });
}
