/** The job index: listing order whatever the order of adds, cursors, filters, removal. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { JobRecord } from './job.js';
import { JobIndex, type IndexedJob } from './job-index.js';
import type { JobState } from './types.js';

const never = new Promise<void>(() => undefined);
const job = (id: string, startedAtMs: number, owner = 'alice', state: JobState = 'finished') =>
  ({
    record: { id, startedAtMs, owner, state } as JobRecord,
    done: state === 'finished' ? Promise.resolve() : never,
  }) satisfies IndexedJob;

const ids = (jobs: readonly IndexedJob[]) => jobs.map((j) => j.record.id);

test('newest first by start time then id, whatever the order of adds; cursors resume', () => {
  const index = new JobIndex();
  for (const j of [job('c', 20), job('a', 10), job('e', 30), job('b', 20), job('d', 5)])
    index.add(j);
  assert.deepEqual(ids(index.list()), ['e', 'c', 'b', 'a', 'd']);
  assert.deepEqual(ids(index.list({ limit: 2 })), ['e', 'c']);
  assert.deepEqual(ids(index.list({ after: { startedAtMs: 20, id: 'c' }, limit: 2 })), ['b', 'a']);
  // A cursor whose job is gone still resumes at its place.
  assert.ok(index.delete('b'));
  assert.ok(!index.delete('b'));
  assert.deepEqual(ids(index.list({ after: { startedAtMs: 20, id: 'c' } })), ['a', 'd']);
  assert.deepEqual(ids([...index.values()]), ['d', 'a', 'c', 'e']);
  assert.equal(index.size, 4);
  assert.deepEqual(ids(index.list({ limit: 0 })), []);
});

test('owner and state filters, alone and together', async () => {
  const index = new JobIndex();
  index.add(job('a1', 1, 'alice'));
  index.add(job('b1', 2, 'bob'));
  index.add(job('a2', 3, 'alice', 'running'));
  index.add(job('b2', 4, 'bob', 'stopping'));
  index.add(job('a3', 5, 'alice'));
  assert.deepEqual(ids(index.list({ owner: 'alice' })), ['a3', 'a2', 'a1']);
  assert.deepEqual(ids(index.list({ owner: 'carol' })), []);
  assert.deepEqual(ids(index.list({ state: 'finished' })), ['a3', 'b1', 'a1']);
  assert.deepEqual(ids(index.list({ state: 'running' })), ['a2']);
  assert.deepEqual(ids(index.list({ state: 'stopping', owner: 'alice' })), []);
  assert.deepEqual(ids(index.list({ owner: 'bob', state: 'finished', limit: 1 })), ['b1']);
  index.delete('b1');
  index.delete('b2');
  assert.deepEqual(ids(index.list({ owner: 'bob' })), []);
  await Promise.resolve();
  assert.equal(index.get('a2')?.record.id, 'a2');
});
