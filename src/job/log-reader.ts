/**
 * Followers of a job's output log. Each follower opens the log read-only and
 * reads it with positioned reads of at most READ_BUFFER_BYTES, only up to
 * the writer's committed length, so it never sees a half-written record and
 * never holds more than one read buffer. Caught up, it sleeps on the job's
 * notifier (no timer, no CPU) until the writer commits more or the job
 * finishes. A slow follower therefore only falls behind on disk; it never
 * holds back the writer or the other followers.
 *
 * Each read goes into a fresh Buffer, and the chunks yielded are views of
 * it (or, where consecutive pieces of one stream are joined, a fresh copy)
 * that are never written again: the consumer may keep them without copying.
 * Followers of a live job may be given the same block and the same chunk
 * Buffers (shared-blocks.ts): no consumer writes into them.
 */
import { open } from 'node:fs/promises';
import { ErrorCode, JobworkerError, toJobworkerError } from '../errors.js';
import { decodeHeader, HEADER_BYTES } from './log-format.js';
import { seekLog, type LogStart } from './log-seek.js';
import { checkAborted } from '../signals.js';
import type { Notifier } from './notifier.js';
import type { SharedBlocks } from './shared-blocks.js';
import type { JobStatus, OutputEvent, OutputOptions, StreamName } from './types.js';

/**
 * Size of a follower's read buffer: the most it reads (and holds) at once,
 * and the largest chunk it yields: larger buffers stream one follower
 * faster but multiply fan-out memory; 64 KiB keeps it flat
 * (docs/benchmarks.md).
 */
export const READ_BUFFER_BYTES = 64 * 1024;

/** What a follower needs from a job. */
export interface LogSource {
  readonly jobId: string;
  /** Path of the output log. */
  readonly path: string;
  /** Bytes of the log that are completely written. Grows; only at record boundaries. */
  committedLength(): number;
  /** Position of the last SYNC record within the committed length; null if it has none. */
  lastSyncAt(): number | null;
  /** The final status once the job has finished and its log is closed (committed length final); null before. */
  finishedStatus(): JobStatus | null;
  /** Notified when the committed length grows or the job finishes. */
  readonly notifier: Notifier;
  /** Called when a follower opens and when it ends (counting them finds leaks). */
  followerCount(delta: 1 | -1): void;
  /**
   * Aborts (with a not_found reason) when the job is removed by retention:
   * every follower then closes its file at once, even one whose consumer is
   * not reading, and ends with that reason.
   */
  readonly removed?: AbortSignal;
  /** Blocks shared between the followers of a live job; null (or absent): each reads alone. */
  sharedBlocks?(): SharedBlocks | null;
}

interface OpenRecord {
  readonly stream: StreamName;
  offset: number;
  remaining: number;
}

/**
 * Yields the job's output from the requested offsets; see
 * {@link OutputOptions}. Ends early with the abort reason (cancelled) if
 * `options.signal` aborts; the file handle and listeners are released on
 * every exit, including when the consumer stops iterating.
 */
export async function* followLog(
  source: LogSource,
  options: OutputOptions,
): AsyncGenerator<OutputEvent, void, undefined> {
  const { signal } = options;
  checkAborted(signal);
  const want: Record<StreamName, boolean> = {
    stdout: options.stream !== 'stderr',
    stderr: options.stream !== 'stdout',
  };
  const from: Record<StreamName, number> = {
    stdout: options.stdoutOffset ?? 0,
    stderr: options.stderrOffset ?? 0,
  };
  const seeks = options.tailLines !== undefined || options.sinceMs !== undefined;
  const file = await open(source.path, 'r').catch((err: unknown) => {
    // Removed by retention between output() and the first read: not_found, as for a follower
    // already reading. The message must not carry the server's paths.
    checkAborted(source.removed);
    throw toJobworkerError(err, `cannot open the output log of job ${source.jobId}`);
  });
  source.followerCount(1);
  const { removed } = source;
  // Closes the file under a follower whose consumer is stalled, so that the
  // removed log's disk space is freed now; the follower ends at its next step.
  const onRemoved = (): void => {
    void file.close().catch(() => undefined);
  };
  removed?.addEventListener('abort', onRemoved, { once: true });
  try {
    // Without follow, the stream ends after what is stored now; a tail or a time is of that, too.
    const stored = source.committedLength();
    const lastSyncAt = source.lastSyncAt();
    const end = options.follow ? Number.POSITIVE_INFINITY : stored;
    let rec: OpenRecord | null = null;
    // After skipping past the end of a buffer, read just the next header: a
    // follower of one stream, or from a far offset, then reads 16 bytes per
    // unwanted record instead of a full buffer.
    let skipping = false;
    // A header cut by the end of an aligned block is read on its own, from where it starts.
    let headerCut = false;
    const readAt = async (at: number, length: number): Promise<Buffer> => {
      // A seek through a long log without SYNC records reads many buffers before it yields.
      checkAborted(signal);
      const buf = Buffer.allocUnsafe(length);
      const { bytesRead } = await file.read(buf, 0, length, at).catch((err: unknown) => {
        // A read that raced the removal fails on the closed file: report the removal.
        checkAborted(removed);
        throw toJobworkerError(err, `cannot read the output log of job ${source.jobId}`);
      });
      if (bytesRead !== length) {
        throw new JobworkerError(
          ErrorCode.Internal,
          `output log of job ${source.jobId} is shorter (${at + bytesRead} bytes) than written (${at + length})`,
        );
      }
      return buf;
    };
    // The start of a tail or a time, found before the first byte is read; both bounds hold.
    let start: LogStart = { pos: 0, timeMs: null, from };
    if (seeks) {
      start = await seekLog(source.jobId, readAt, stored, lastSyncAt, {
        want,
        tailLines: options.tailLines,
        sinceMs: options.sinceMs,
      });
      from.stdout = Math.max(from.stdout, start.from.stdout);
      from.stderr = Math.max(from.stderr, start.from.stderr);
    }
    let pos = start.pos;
    // When the records at `pos` were written, as the SYNC record before them says.
    let timeMs = start.timeMs;
    for (;;) {
      checkAborted(signal);
      checkAborted(removed);
      // Read, compare and wait in one tick: a commit cannot slip in between.
      const committed = Math.min(source.committedLength(), end);
      if (pos >= committed) {
        if (!options.follow) return;
        const status = source.finishedStatus();
        if (status !== null) {
          yield { type: 'finished', job: status };
          return;
        }
        await source.notifier.wait(signal);
        continue;
      }
      // `buf` holds the log from `base`; parsing starts at `pos`.
      let base = pos;
      let buf: Buffer;
      const blocks = skipping || headerCut ? null : (source.sharedBlocks?.() ?? null);
      // Set once `buf` is a shared block: its chunks are then shared too.
      let shared: SharedBlocks | null = null;
      if (blocks !== null) {
        // From the aligned block start (shared with followers anywhere in the block) unless
        // that re-reads more than is new: a follower at the tail of a job that commits
        // small pieces would read the block again at every commit. Then from `pos`
        // (shared with followers at the same place: all of them, caught up).
        const aligned = pos - (pos % READ_BUFFER_BYTES);
        base = pos - aligned <= committed - pos ? aligned : pos;
        const blockEnd = Math.min(base + READ_BUFFER_BYTES, committed);
        const blockStart = base;
        // A shared read that failed (say, on the file of a follower that has gone) is
        // done again on this follower's own file; that failure is the real one.
        try {
          buf = await blocks.read(blockStart, blockEnd, () =>
            readAt(blockStart, blockEnd - blockStart),
          );
          shared = blocks;
        } catch {
          buf = await readAt(blockStart, blockEnd - blockStart);
        }
      } else {
        buf = await readAt(
          pos,
          Math.min(skipping ? HEADER_BYTES : READ_BUFFER_BYTES, committed - pos),
        );
      }
      skipping = false;
      headerCut = false;
      const size = buf.length;
      // Consecutive pieces of one stream within this buffer leave as one
      // chunk: a job's pipe reads are often a few KiB, and per-message cost,
      // not bytes, bounds a gRPC stream. The run never outlives this buffer.
      // A run is cut where a SYNC record changes the time: each chunk has one.
      let run: {
        stream: StreamName;
        offset: number;
        parts: Buffer[];
        bytes: number;
        storedAtMs: number | null;
      } | null = null;
      // A plain function, not a delegated generator: `yield*` would add
      // promise ticks between a consumer's next() and the follower's wait.
      const takeRun = (): OutputEvent | null => {
        if (run === null) return null;
        const { stream, offset, parts, bytes, storedAtMs } = run;
        run = null;
        const join = (): Buffer =>
          parts.length === 1 && parts[0] ? parts[0] : Buffer.concat(parts, bytes);
        const data =
          shared === null ? join() : shared.chunk(buf, base, stream, offset, bytes, join);
        return { type: 'chunk', stream, offset, data, storedAtMs };
      };
      let i = pos - base;
      while (i < size) {
        if (rec === null) {
          // A header cut by the end of the buffer is read again with the next buffer.
          if (size - i < HEADER_BYTES) {
            headerCut = true;
            break;
          }
          const header = decodeHeader(buf, i);
          if (typeof header === 'string') {
            throw new JobworkerError(
              ErrorCode.Internal,
              `output log of job ${source.jobId} is damaged at byte ${base + i}: ${header}`,
            );
          }
          i += HEADER_BYTES;
          if (header.type === 'sync') {
            i += header.length;
            if (header.timeMs !== timeMs) {
              const before = takeRun();
              timeMs = header.timeMs;
              if (before !== null) {
                yield before;
                checkAborted(signal);
                checkAborted(removed);
              }
            }
            continue;
          }
          if (header.type === 'truncated') {
            i += header.length;
            const before = takeRun();
            if (before !== null) yield before;
            yield { type: 'truncated', capBytes: header.capBytes };
            checkAborted(signal);
            checkAborted(removed);
            continue;
          }
          if (!want[header.stream] || header.offset + header.length <= from[header.stream]) {
            // Nothing of this record is wanted: skip it without reading it (i may pass the buffer).
            i += header.length;
            continue;
          }
          rec = { stream: header.stream, offset: header.offset, remaining: header.length };
          continue;
        }
        const take = Math.min(rec.remaining, size - i);
        // The requested offset may fall inside a record: split it there.
        const skip = Math.max(0, Math.min(take, from[rec.stream] - rec.offset));
        const stream = rec.stream;
        const offset = rec.offset + skip;
        const data = buf.subarray(i + skip, i + take);
        rec.offset += take;
        rec.remaining -= take;
        i += take;
        if (rec.remaining === 0) rec = null;
        if (take > skip) {
          if (run !== null && run.stream === stream && run.offset + run.bytes === offset) {
            run.parts.push(data);
            run.bytes += data.length;
          } else {
            const done = takeRun();
            run = { stream, offset, parts: [data], bytes: data.length, storedAtMs: timeMs };
            if (done !== null) {
              yield done;
              checkAborted(signal);
              checkAborted(removed);
            }
          }
        }
      }
      const last = takeRun();
      if (last !== null) {
        yield last;
        checkAborted(signal);
        checkAborted(removed);
      }
      skipping = i > size;
      pos = base + i;
    }
  } finally {
    removed?.removeEventListener('abort', onRemoved);
    source.followerCount(-1);
    // Closing twice (after a removal) is harmless: a FileHandle closes once.
    await file.close();
  }
}
