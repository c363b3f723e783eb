import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { JobStatus, ListFilter } from '../job/index.js';
import { listPage, MAX_PAGE_BYTES } from './paging.js';

const stream = { storedBytes: 0, droppedBytes: 0, sha256: null };
const job = (id: string, startedAtMs: number, argv = ['true']): JobStatus => ({
  id,
  owner: 'alice',
  argv,
  cwd: '/',
  hostNetwork: false,
  stdin: false,
  tty: false,
  state: 'finished',
  endReason: 'exited',
  exitCode: 0,
  signal: null,
  oomKilled: false,
  stoppedBy: null,
  startedAt: new Date(startedAtMs),
  finishedAt: new Date(startedAtMs + 1),
  limits: { cpuMillis: 0, memoryBytes: 0, ioReadBps: 0, ioWriteBps: 0, pidsMax: 0 },
  usage: null,
  stdout: stream,
  stderr: stream,
  outputTruncated: false,
  name: null,
  labels: {},
});

/** The job library's list() over `all`: newest first, after the cursor, at most the limit. */
const listOf =
  (all: readonly JobStatus[], calls: ListFilter[] = []) =>
  (filter: ListFilter): JobStatus[] => {
    calls.push(filter);
    const key = (j: JobStatus) => [j.startedAt.getTime(), j.id] as const;
    const before = (a: readonly [number, string], b: readonly [number, string]) =>
      a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);
    return [...all]
      .sort((a, b) => (before(key(a), key(b)) ? 1 : -1))
      .filter((j) => !filter.after || before(key(j), [filter.after.startedAtMs, filter.after.id]))
      .slice(0, filter.limit);
  };

const ids = (jobs: readonly { id: string }[]) => jobs.map((j) => j.id);
const id = (n: number) => `${'a'.repeat(25)}${'abcdefgh'[n] ?? 'z'}`;

test('pages list newest first, by start time then id, without gap or repeat', () => {
  // Two jobs share a start time: the id orders them.
  const all = [job(id(0), 10), job(id(1), 30), job(id(2), 20), job(id(3), 30), job(id(4), 5)];
  const calls: ListFilter[] = [];
  const first = listPage(listOf(all, calls), {}, 2, '');
  assert.deepEqual(ids(first.jobs), [id(3), id(1)]);
  assert.notEqual(first.next, '');
  // The library is asked for one more than a page, not for every job.
  assert.equal(calls[0]?.limit, 3);
  // A job removed and one started between pages change nothing of the rest.
  const changed = [...all.filter((j) => j.id !== id(2)), job(id(5), 99)];
  const second = listPage(listOf(changed), {}, 2, first.next);
  assert.deepEqual(ids(second.jobs), [id(0), id(4)]);
  assert.equal(second.next, '');
  assert.deepEqual(listPage(listOf(all), {}, 0, '').jobs.length, 5);
});

test('a page ends early, with a token, rather than exceed the bytes a client receives', () => {
  const big = ['x'.repeat(128 * 1024)];
  const all = Array.from({ length: 40 }, (_, i) =>
    job(`${'b'.repeat(24)}${id(i % 8).slice(-1)}${'abcde'[i % 5] ?? 'z'}`, 1000 + i, big),
  );
  const seen: string[] = [];
  let token = '';
  let pages = 0;
  do {
    const page = listPage(listOf(all), {}, 0, token);
    const bytes = page.jobs.reduce((n, j) => n + j.command.join('').length, 0);
    assert.ok(bytes <= MAX_PAGE_BYTES, `page of ${bytes} bytes`);
    seen.push(...ids(page.jobs));
    token = page.next;
    pages++;
  } while (token !== '');
  assert.equal(pages, 2);
  assert.deepEqual(seen, ids(all).reverse());
});

test('bad page sizes and tokens are invalid_argument naming the field', () => {
  assert.throws(() => listPage(listOf([]), {}, 1001, ''), {
    code: 'invalid_argument',
    message: /^page_size 1001/,
  });
  assert.throws(() => listPage(listOf([]), {}, 0, 'not-a-token'), {
    code: 'invalid_argument',
    message: /^page_token "not-a-token"/,
  });
  const forged = Buffer.from('12.../../etc/passwd').toString('base64url');
  assert.throws(() => listPage(listOf([]), {}, 0, forged), { code: 'invalid_argument' });
});
