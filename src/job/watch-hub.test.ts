import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { JobRecord } from './job.js';
import type { JobStatus, ListFilter, WatchEvent } from './types.js';
import { WATCH_QUEUE_EVENTS, WatchHub } from './watch-hub.js';

const record = (id: string, owner: string, labels: Record<string, string> = {}): JobRecord =>
  ({ id, owner, labels, name: null, state: 'running', startedAtMs: 1 }) as unknown as JobRecord;
const status = (r: JobRecord) => (): JobStatus =>
  ({ id: r.id, owner: r.owner, startedAt: new Date(r.startedAtMs) }) as JobStatus;

/** Takes the next `n` events of a watch. */
async function take(events: AsyncIterator<WatchEvent>, n: number): Promise<string[]> {
  const out: string[] = [];
  while (out.length < n) {
    const result = await events.next();
    if (result.done === true) assert.fail('the watch ended');
    const value: WatchEvent = result.value;
    out.push('job' in value ? `${value.type} ${value.job.id}` : value.type);
  }
  return out;
}

test('a watcher gets the changes of the jobs its filter matches, in order', async () => {
  const listed: ListFilter[] = [];
  const hub = new WatchHub((filter) => {
    listed.push(filter);
    return filter.after === undefined ? [status(record('old', 'alice'))()] : [];
  });
  const abort = new AbortController();
  const events = hub
    .watch({ filter: { owner: 'alice' }, initial: true, signal: abort.signal })
    [Symbol.asyncIterator]();
  assert.deepEqual(await take(events, 2), ['existing old', 'synced']);
  assert.deepEqual(listed, [{ owner: 'alice', limit: 100 }]);
  const a = record('a', 'alice');
  hub.publish('started', a, status(a));
  hub.publish('started', record('b', 'bob'), status(record('b', 'bob')));
  hub.publish('finished', a, status(a));
  assert.deepEqual(await take(events, 2), ['started a', 'finished a']);
  assert.equal(hub.size, 1);
  const pending = events.next();
  abort.abort(new Error('done'));
  await assert.rejects(pending);
  assert.equal(hub.size, 0);
});

test('a watcher that falls behind loses its queue and gets resync, then the jobs anew', async () => {
  const hub = new WatchHub((filter) =>
    filter.after === undefined ? [status(record('now', 'alice'))()] : [],
  );
  const abort = new AbortController();
  const events = hub
    .watch({ filter: {}, initial: false, signal: abort.signal })
    [Symbol.asyncIterator]();
  // The watch is registered once its first event is asked for.
  const first = events.next();
  const r = record('x', 'alice');
  for (let i = 0; i <= WATCH_QUEUE_EVENTS + 10; i++) hub.publish('started', r, status(r));
  // More than the queue holds arrived before the watcher read one.
  assert.deepEqual((await first).value, { type: 'resync' });
  assert.deepEqual(await take(events, 2), ['existing now', 'synced']);
  hub.publish('stopping', r, status(r));
  assert.deepEqual(await take(events, 1), ['stopping x']);
  await events.return(undefined);
  assert.equal(hub.size, 0);
});
