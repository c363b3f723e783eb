import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { ErrorCode, JobworkerError } from '../errors.js';
import type { SandboxInput, WindowSize } from '../isolation/index.js';
import { JobInput, STDIN_PIECE_BYTES } from './stdin.js';

/** A job's input whose kernel takes a piece only when the test says so. */
function fakeInput(tty = true) {
  const pieces: Buffer[] = [];
  const taken: (() => void)[] = [];
  const controls: (WindowSize | 'interrupt')[] = [];
  let ended = false;
  const stream = new Writable({
    highWaterMark: 1,
    write(chunk: Buffer, _encoding, callback) {
      pieces.push(chunk);
      taken.push(() => {
        callback();
      });
    },
    final(callback) {
      ended = true;
      callback();
    },
  });
  const input: SandboxInput = {
    stream,
    tty,
    resize: (size) => controls.push(size),
    interrupt: () => controls.push('interrupt'),
  };
  return {
    input,
    pieces,
    controls,
    ended: () => ended,
    /** Lets the oldest piece through. */
    take: () => {
      taken.shift()?.();
    },
  };
}

const ID = 'aaaaaaaaaaaaaaaaaaaaaaaaaa';
const code = (c: string) => (err: unknown) => err instanceof JobworkerError && err.code === c;

test('a write goes in pieces, each handed over only once the previous one was taken', async () => {
  const fake = fakeInput();
  const input = new JobInput(ID, fake.input);
  const writer = input.attach({ write: true, signal: new AbortController().signal }, true);
  const data = Buffer.alloc(3 * STDIN_PIECE_BYTES + 5, 7);
  const write = writer.write(data);
  await new Promise(setImmediate);
  assert.equal(fake.pieces.length, 1, 'one piece in flight while the job does not read');
  assert.equal(writer.bytesIn, STDIN_PIECE_BYTES);
  await assert.rejects(writer.write(Buffer.from('x')), code(ErrorCode.Internal), 'one at a time');
  for (let i = 0; i < 4; i++) {
    fake.take();
    await new Promise(setImmediate);
  }
  await write;
  assert.deepEqual(Buffer.concat(fake.pieces), data);
  assert.equal(writer.bytesIn, data.length);
});

test('one writer seat: a second writer gets stdin_busy, and an abort frees the seat and discards the rest', async () => {
  const fake = fakeInput();
  const input = new JobInput(ID, fake.input);
  const first = new AbortController();
  const writer = input.attach({ write: true, signal: first.signal }, true);
  const other = new AbortController();
  assert.throws(
    () => input.attach({ write: true, signal: other.signal }, true),
    code('stdin_busy'),
  );
  const write = writer.write(Buffer.alloc(2 * STDIN_PIECE_BYTES));
  await new Promise(setImmediate);
  first.abort();
  await assert.rejects(write, code(ErrorCode.Cancelled));
  assert.throws(() => {
    writer.interrupt();
  }, code(ErrorCode.Cancelled));
  const second = input.attach({ write: true, signal: other.signal }, true);
  const next = second.write(Buffer.from('next'));
  fake.take(); // the first writer's piece in flight: handed over before the abort
  await new Promise(setImmediate);
  fake.take();
  await next;
  assert.deepEqual(
    fake.pieces.map((p) => p.length),
    [STDIN_PIECE_BYTES, 4],
    "the aborted write's second piece never went out",
  );
  assert.throws(
    () => input.attach({ write: true, signal: first.signal }, true),
    code('stdin_busy'),
  );
  other.abort();
  // The seat is free again, but an ended signal cannot take it.
  assert.throws(() => input.attach({ write: true, signal: first.signal }, true), code('cancelled'));
});

test('end, then no_stdin; finish rejects what waits with already_finished', async () => {
  const fake = fakeInput();
  const input = new JobInput(ID, fake.input);
  const writer = input.attach({ write: true, signal: new AbortController().signal }, true);
  await writer.end();
  assert.equal(fake.ended(), true);
  await assert.rejects(writer.write(Buffer.from('x')), code(ErrorCode.NoStdin));
  writer.resize(10, 20); // a terminal's size still changes after the end of input
  assert.deepEqual(fake.controls, [{ rows: 10, cols: 20 }]);
  const signal = new AbortController().signal;
  assert.throws(() => input.attach({ write: true, signal }, true), code(ErrorCode.NoStdin));

  const other = fakeInput();
  const running = new JobInput(ID, other.input);
  const w = running.attach({ write: true, signal }, true);
  const pending = w.write(Buffer.from('never read'));
  running.finish();
  await assert.rejects(pending, code(ErrorCode.AlreadyFinished));
  assert.throws(() => running.attach({ write: true, signal }, true), code('already_finished'));
  assert.throws(() => {
    w.interrupt();
  }, code(ErrorCode.AlreadyFinished));
});

test('resize and interrupt: validated, and only with a terminal', () => {
  const fake = fakeInput();
  const writer = new JobInput(ID, fake.input).attach(
    { write: true, signal: new AbortController().signal },
    true,
  );
  writer.interrupt();
  assert.throws(() => {
    writer.resize(0, 80);
  }, /rows: 0 is not in 1\.\.65535/);
  assert.throws(() => {
    writer.resize(24, 1.5);
  }, /cols: 1\.5 is not in/);
  assert.deepEqual(fake.controls, ['interrupt']);
  const pipe = new JobInput(ID, fakeInput(false).input).attach(
    { write: true, signal: new AbortController().signal },
    false,
  );
  assert.throws(() => {
    pipe.resize(24, 80);
  }, /^JobworkerError: tty: job a+ has no terminal$/);
});
