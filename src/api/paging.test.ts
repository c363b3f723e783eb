import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { JobStatus } from '../job/index.js';
import { pageOf } from './paging.js';

const job = (id: string, startedAtMs: number) =>
  ({ id, startedAt: new Date(startedAtMs) }) as unknown as JobStatus;

const ids = (jobs: readonly JobStatus[]) => jobs.map((j) => j.id);
const id = (n: number) => `${'a'.repeat(25)}${'abcdefgh'[n] ?? 'z'}`;

test('pages list newest first, by start time then id, without gap or repeat', () => {
  // Two jobs share a start time: the id orders them.
  const all = [job(id(0), 10), job(id(1), 30), job(id(2), 20), job(id(3), 30), job(id(4), 5)];
  const first = pageOf(all, 2, '');
  assert.deepEqual(ids(first.page), [id(3), id(1)]);
  assert.notEqual(first.next, '');
  // A job removed and one started between pages change nothing of the rest.
  const changed = [...all.filter((j) => j.id !== id(2)), job(id(5), 99)];
  const second = pageOf(changed, 2, first.next);
  assert.deepEqual(ids(second.page), [id(0), id(4)]);
  assert.equal(second.next, '');
  assert.deepEqual(pageOf(all, 0, '').page.length, 5);
});

test('bad page sizes and tokens are invalid_argument naming the field', () => {
  assert.throws(() => pageOf([], 1001, ''), {
    code: 'invalid_argument',
    message: /^page_size 1001/,
  });
  assert.throws(() => pageOf([], 0, 'not-a-token'), {
    code: 'invalid_argument',
    message: /^page_token "not-a-token"/,
  });
  const forged = Buffer.from('12.../../etc/passwd').toString('base64url');
  assert.throws(() => pageOf([], 0, forged), { code: 'invalid_argument' });
});
