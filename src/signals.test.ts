import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { test } from 'node:test';
import { setImmediate } from 'node:timers/promises';
import { JobworkerError } from './errors.js';
import { cancelled, deadlineSignal, linkSignals, onAbort, raceAbort } from './signals.js';

const listeners = (signal: AbortSignal): number => getEventListeners(signal, 'abort').length;
const never = new Promise<never>(() => undefined);

test('cancelled: a coded reason passes through, anything else is cancelled naming the operation', () => {
  const coded = new JobworkerError('unavailable', 'server shutting down');
  assert.equal(cancelled(AbortSignal.abort(coded)), coded);
  const plain = new Error('gone');
  const err = cancelled(AbortSignal.abort(plain), 'launch');
  assert.deepEqual(
    [err.code, err.message, err.cause],
    ['cancelled', 'launch cancelled by the caller', plain],
  );
  assert.equal(cancelled(AbortSignal.abort()).message, 'cancelled by the caller');
});

test('no listener is left on a long-lived signal after many uses of every helper', async () => {
  const long = new AbortController().signal;
  for (let i = 0; i < 1000; i++) {
    assert.equal(await raceAbort(Promise.resolve(i), long), i);
    await assert.rejects(raceAbort(Promise.reject(new Error('x')), long), /x/);
    onAbort(long, () => undefined)();
    linkSignals(long, undefined).dispose();
    const link = linkSignals(long);
    link.controller.abort();
    link.dispose();
    deadlineSignal(60_000).dispose();
  }
  assert.equal(listeners(long), 0);
});

test('onAbort: runs once on abort, at once if already aborted, never after dispose', () => {
  const controller = new AbortController();
  let calls = 0;
  onAbort(controller.signal, () => calls++);
  const removed = onAbort(controller.signal, () => (calls += 100));
  removed();
  controller.abort();
  controller.abort();
  assert.equal(calls, 1);
  onAbort(controller.signal, () => calls++);
  assert.equal(calls, 2);
  assert.equal(listeners(controller.signal), 0);
});

test('raceAbort: already aborted, aborted during the wait, resolved first', async () => {
  const reason = new JobworkerError('deadline_exceeded', 'too slow');
  await assert.rejects(
    raceAbort(Promise.resolve(1), AbortSignal.abort(reason)),
    (e) => e === reason,
  );
  const controller = new AbortController();
  const waiting = raceAbort(never, controller.signal, 'wait');
  controller.abort(new Error('hung up'));
  await assert.rejects(waiting, { code: 'cancelled', message: 'wait cancelled by the caller' });
  assert.equal(listeners(controller.signal), 0);
  assert.equal(await raceAbort(Promise.resolve('first'), undefined), 'first');
});

test('raceAbort: a rejection of the work after the abort won is handled', async () => {
  const controller = new AbortController();
  let fail: (err: Error) => void = () => undefined;
  const work = new Promise<never>((_, reject) => (fail = reject));
  const waiting = raceAbort(work, controller.signal);
  controller.abort();
  await assert.rejects(waiting, { code: 'cancelled' });
  fail(new Error('late'));
  await setImmediate(); // an unhandled rejection would fail the test run here
});

test('linkSignals: follows any source with its reason, and lets go of the others', () => {
  const a = new AbortController();
  const b = new AbortController();
  const link = linkSignals(a.signal, undefined, b.signal);
  assert.deepEqual([listeners(a.signal), listeners(b.signal)], [1, 1]);
  b.abort('b went');
  assert.deepEqual([link.signal.aborted, link.signal.reason], [true, 'b went']);
  assert.deepEqual([listeners(a.signal), listeners(b.signal)], [0, 0]);
  link.dispose();

  const early = linkSignals(AbortSignal.abort('early'), a.signal);
  assert.deepEqual([early.signal.reason, listeners(a.signal)], ['early', 0]);

  const own = linkSignals(a.signal);
  own.controller.abort('own');
  own.dispose();
  a.abort();
  assert.deepEqual([own.signal.reason, listeners(a.signal)], ['own', 0]);
});

test('deadlineSignal: aborts with deadline_exceeded after its time, not once disposed', async () => {
  const bound = deadlineSignal(1, 'the test wait');
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.ok(bound.signal.reason instanceof JobworkerError);
  assert.deepEqual(
    [bound.signal.reason.code, bound.signal.reason.message],
    ['deadline_exceeded', 'the test wait did not end within 1 ms'],
  );
  const disposed = deadlineSignal(1);
  disposed.dispose();
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(disposed.signal.aborted, false);
});
