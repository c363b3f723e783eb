import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type * as grpc from '@grpc/grpc-js';
import { ErrorCode, JobworkerError } from '../errors.js';
import { callSignal, sender } from './call.js';

/** The one method sender() uses, recording each write's completion callback. */
function fakeCall(): { call: grpc.ServerWritableStream<unknown, string>; done: (() => void)[] } {
  const done: (() => void)[] = [];
  const call = {
    write: (_message: string, callback: () => void): boolean => {
      done.push(callback);
      return true;
    },
  };
  return { call: call as unknown as grpc.ServerWritableStream<unknown, string>, done };
}

/** Whether `promise` has settled after the microtasks and one turn have run. */
async function settled(promise: Promise<void>): Promise<boolean> {
  let over = false;
  void promise.then(
    () => (over = true),
    () => (over = true),
  );
  await nextTurn();
  return over;
}

test('a send returns while one message is in grpc-js and waits while two are', async () => {
  const { call, done } = fakeCall();
  const send = sender(call, new AbortController().signal);
  assert.equal(await settled(send('a')), true);
  const second = send('b');
  assert.equal(await settled(second), false, 'two in flight: the handler waits');
  done.shift()?.();
  assert.equal(await settled(second), true, 'the first written: room for the next');
  const third = send('c');
  assert.equal(await settled(third), false);
  done.shift()?.();
  await third;
  assert.equal(done.length, 1);
});

test('a send waiting for room ends with the abort reason (after a cancel grpc-js may complete no write)', async () => {
  const { call } = fakeCall();
  const controller = new AbortController();
  const send = sender(call, controller.signal);
  await send('a');
  const waiting = send('b');
  controller.abort(new JobworkerError(ErrorCode.Cancelled, 'call cancelled by the client'));
  await assert.rejects(waiting, { code: ErrorCode.Cancelled });
  await assert.rejects(send('c'), { code: ErrorCode.Cancelled });
});

test('a send still waiting when the call has ended is ended with it', async () => {
  const { call, done } = fakeCall();
  // What callSignal() uses of a call besides its 'cancelled' event.
  const emitter = Object.assign(new EventEmitter(), { getDeadline: () => Infinity });
  const { signal, dispose } = callSignal(
    emitter as unknown as grpc.ServerWritableStream<unknown, string>,
    new AbortController().signal,
    undefined,
  );
  const send = sender(call, signal);
  await send('a');
  const waiting = send('b');
  assert.equal(await settled(waiting), false);
  dispose();
  await assert.rejects(waiting, { code: ErrorCode.Cancelled, message: 'the call has ended' });
  assert.equal(done.length, 2, 'neither write completed: only the end of the call ended the wait');
  assert.equal(emitter.listenerCount('cancelled'), 0);
});
