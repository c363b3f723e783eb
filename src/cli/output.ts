/**
 * Copies a job's output stream to jobctl's own stdout and stderr, byte for
 * byte, with backpressure: the next message is read from the server only
 * after the terminal or pipe has taken the previous one. Shared by `run` and
 * `logs`.
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import {
  OutputStream,
  type Job,
  type StreamOutputResponse,
} from '../gen/jobworker/v1/job_service.js';

/** Where the two streams of a job go. */
export interface Sinks {
  readonly stdout: Writable;
  readonly stderr: Writable;
}

/** Raised when a sink fails, most often EPIPE: the reader of `jobctl logs ID | head` went away. */
export class SinkClosedError extends Error {
  override readonly name = 'SinkClosedError';
}

/**
 * Writes every chunk of `messages` to its sink and returns the job of the
 * closing `finished` message, or undefined when the stream ended without one
 * (a stream that does not follow). A `truncated` marker is reported on
 * stderr by `onTruncated`.
 */
export async function copyOutput(
  messages: AsyncIterable<StreamOutputResponse>,
  sinks: Sinks,
  onTruncated: (capBytes: number) => void,
): Promise<Job | undefined> {
  return forEachChunk(
    messages,
    (stream, data) =>
      write(stream === OutputStream.OUTPUT_STREAM_STDERR ? sinks.stderr : sinks.stdout, data),
    onTruncated,
  );
}

/**
 * Hands every chunk of `messages` to `onChunk`, the next message read only
 * once it has settled, and returns the job of the closing `finished`
 * message, as {@link copyOutput} (which writes the chunks as they are).
 */
export async function forEachChunk(
  messages: AsyncIterable<StreamOutputResponse>,
  onChunk: (stream: OutputStream, data: Uint8Array) => Promise<void>,
  onTruncated: (capBytes: number) => void,
): Promise<Job | undefined> {
  for await (const { event } of messages) {
    if (event === undefined) continue;
    switch (event.$case) {
      case 'chunk':
        await onChunk(event.value.stream, event.value.data);
        break;
      case 'truncated':
        onTruncated(event.value.capBytes);
        break;
      case 'finished':
        return event.value;
    }
  }
  return undefined;
}

/** Writes `data` and waits for 'drain' when the sink's buffer is full; rejects on a sink error. */
export async function write(sink: Writable, data: Uint8Array): Promise<void> {
  if (data.length === 0) return;
  // The common case: accepted at once. A sink error is emitted later, never
  // inside write(), so it is caught by whoever writes or waits next.
  if (sink.write(data)) return;
  const failed = new AbortController();
  const onError = (err: Error): void => {
    failed.abort(new SinkClosedError(err.message, { cause: err }));
  };
  sink.once('error', onError);
  try {
    // 'drain' never comes after an error: the abort ends the wait.
    await once(sink, 'drain', { signal: failed.signal });
  } catch (err) {
    throw failed.signal.aborted ? (failed.signal.reason as Error) : err;
  } finally {
    sink.off('error', onError);
  }
}
