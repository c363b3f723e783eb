import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { Job, OutputStream, type StreamOutputResponse } from '../gen/jobworker/v1/job_service.js';
import { copyOutput, SinkClosedError, write } from './output.js';

/**
 * A sink that records bytes; with `hold` it keeps every write pending until
 * released, so that its buffer (one byte) is full after each write.
 */
class SlowSink extends Writable {
  readonly chunks: Buffer[] = [];
  readonly #pending: (() => void)[] = [];
  readonly #hold: boolean;
  constructor(hold = true) {
    super({ highWaterMark: 1 });
    this.#hold = hold;
  }
  override _write(
    chunk: Buffer,
    _encoding: BufferEncoding,
    done: (error?: Error | null) => void,
  ): void {
    this.chunks.push(chunk);
    if (this.#hold) this.#pending.push(done);
    else done();
  }
  /** Completes the held writes. */
  release(): void {
    for (const done of this.#pending.splice(0)) done();
  }
  get held(): number {
    return this.#pending.length;
  }
}

function chunk(stream: OutputStream, text: string, offset = 0): StreamOutputResponse {
  return { event: { $case: 'chunk', value: { stream, offset, data: Buffer.from(text) } } };
}

async function* fromArray<T>(items: readonly T[]): AsyncGenerator<T> {
  for (const item of items) {
    await Promise.resolve();
    yield item;
  }
}

test('copyOutput sends each stream to its sink and returns the finished job', async () => {
  const stdout = new SlowSink(false);
  const stderr = new SlowSink(false);
  const truncations: number[] = [];
  const job = Job.fromPartial({ id: 'j', exitCode: 3 });
  const messages: StreamOutputResponse[] = [
    chunk(OutputStream.OUTPUT_STREAM_STDOUT, 'out'),
    chunk(OutputStream.OUTPUT_STREAM_STDERR, 'err'),
    chunk(OutputStream.OUTPUT_STREAM_STDOUT, '!'),
    { event: { $case: 'truncated', value: { capBytes: 10 } } },
    { event: { $case: 'finished', value: job } },
    chunk(OutputStream.OUTPUT_STREAM_STDOUT, 'never read'),
  ];
  const end = await copyOutput(fromArray(messages), { stdout, stderr }, (cap) => {
    truncations.push(cap);
  });
  assert.equal(end?.exitCode, 3);
  assert.equal(Buffer.concat(stdout.chunks).toString(), 'out!');
  assert.equal(Buffer.concat(stderr.chunks).toString(), 'err');
  assert.deepEqual(truncations, [10]);
  assert.equal(
    await copyOutput(
      fromArray([chunk(OutputStream.OUTPUT_STREAM_STDOUT, 'x')]),
      { stdout, stderr },
      () => undefined,
    ),
    undefined,
  );
});

test('copyOutput reads the next message only after the sink has drained (backpressure)', async () => {
  const stdout = new SlowSink();
  let pulled = 0;
  async function* source(): AsyncGenerator<StreamOutputResponse> {
    for (let i = 0; i < 3; i++) {
      await Promise.resolve();
      pulled++;
      yield chunk(OutputStream.OUTPUT_STREAM_STDOUT, `chunk${i}`);
    }
  }
  const copying = copyOutput(source(), { stdout, stderr: new SlowSink() }, () => undefined);
  // The first write fills the sink; the copy waits for 'drain' and does not pull message 2.
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(pulled, 1);
  assert.equal(stdout.held, 1);
  while (
    (await Promise.race([
      copying.then(() => 'done'),
      new Promise((r) => {
        setImmediate(() => {
          r('wait');
        });
      }),
    ])) !== 'done'
  ) {
    assert.ok(pulled <= stdout.chunks.length, 'never more than one message ahead of the sink');
    stdout.release();
  }
  assert.equal(Buffer.concat(stdout.chunks).toString(), 'chunk0chunk1chunk2');
});

test('write rejects with SinkClosedError when the sink fails while full', async () => {
  const sink = new SlowSink();
  const writing = write(sink, Buffer.from('x'));
  sink.destroy(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
  await assert.rejects(writing, SinkClosedError);
  assert.equal(sink.listenerCount('error'), 0);
});
