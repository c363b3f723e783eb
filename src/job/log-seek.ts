/**
 * Where a follower starts when it asks for the last lines of the output or
 * for the output stored since a time. The log is walked from its last SYNC
 * record backwards (log-format.ts): a time needs one 24-byte read per SYNC
 * record after it, and the last N lines read only the stretches between SYNC
 * records that hold them, not the log from byte 0. A log with no SYNC
 * records (written before they existed) is one undated stretch: it is read
 * from byte 0 for a tail, and its output counts as recent for a time.
 */
import { ErrorCode, JobworkerError } from '../errors.js';
import { decodeHeader, decodeSync, HEADER_BYTES, SYNC_BYTES } from './log-format.js';
import type { StreamName } from './types.js';

/**
 * Most lines a tail may ask for: the seek holds the place of each of them
 * (two numbers a line) before it sends the first byte.
 */
export const MAX_TAIL_LINES = 100_000;

/** Bytes read at once while counting lines. */
const SEEK_READ_BYTES = 64 * 1024;

const NEWLINE = 0x0a;

/** Reads exactly `length` bytes of the log at `at`; rejects otherwise. */
export type ReadAt = (at: number, length: number) => Promise<Buffer>;

/** What a follower skips to. */
export interface SeekRequest {
  /** The streams the follower sends; only their lines count. */
  readonly want: Readonly<Record<StreamName, boolean>>;
  /** Only the last this many lines of the wanted streams (as `tail -n`). */
  readonly tailLines?: number | undefined;
  /** Only output stored at or after this time (ms since the epoch). */
  readonly sinceMs?: number | undefined;
}

/** Where to start: a record boundary, the time of the records there, and per-stream offsets to skip to. */
export interface LogStart {
  readonly pos: number;
  readonly timeMs: number | null;
  readonly from: Readonly<Record<StreamName, number>>;
}

/** A stretch of the log whose records share one time (null: undated). */
interface Stretch {
  readonly start: number;
  readonly end: number;
  readonly timeMs: number | null;
}

function damaged(jobId: string, at: number, what: string): JobworkerError {
  return new JobworkerError(
    ErrorCode.Internal,
    `output log of job ${jobId} is damaged at byte ${at}: ${what}`,
  );
}

/** The log's stretches from the last backwards. */
async function* stretchesBack(
  jobId: string,
  readAt: ReadAt,
  end: number,
  lastSyncAt: number | null,
): AsyncGenerator<Stretch, void, undefined> {
  let stretchEnd = end;
  let at = lastSyncAt;
  while (at !== null) {
    const sync = decodeSync(await readAt(at, SYNC_BYTES), at);
    if (typeof sync === 'string') throw damaged(jobId, at, sync);
    yield { start: at, end: stretchEnd, timeMs: sync.timeMs };
    stretchEnd = at;
    at = sync.previous;
  }
  if (stretchEnd > 0) yield { start: 0, end: stretchEnd, timeMs: null };
}

/** The payload bytes of the wanted streams in `[start, end)`, in log order. */
async function* payloads(
  jobId: string,
  readAt: ReadAt,
  stretch: Stretch,
  want: Readonly<Record<StreamName, boolean>>,
): AsyncGenerator<{ stream: StreamName; offset: number; data: Buffer }, void, undefined> {
  let pos = stretch.start;
  let rec: { stream: StreamName; offset: number; remaining: number; wanted: boolean } | null = null;
  while (pos < stretch.end) {
    const buf = await readAt(pos, Math.min(SEEK_READ_BYTES, stretch.end - pos));
    let i = 0;
    while (i < buf.length) {
      if (rec === null) {
        // A header cut by the buffer's end is read again at the start of the next one.
        if (buf.length - i < HEADER_BYTES) {
          if (i === 0) throw damaged(jobId, pos, 'torn record header');
          break;
        }
        const header = decodeHeader(buf, i);
        if (typeof header === 'string') throw damaged(jobId, pos + i, header);
        i += HEADER_BYTES;
        if (header.type === 'data') {
          rec = { ...header, remaining: header.length, wanted: want[header.stream] };
        } else {
          i += header.length;
        }
        continue;
      }
      const take = Math.min(rec.remaining, buf.length - i);
      if (rec.wanted)
        yield { stream: rec.stream, offset: rec.offset, data: buf.subarray(i, i + take) };
      rec.offset += take;
      rec.remaining -= take;
      i += take;
      if (rec.remaining === 0) rec = null;
    }
    pos += i;
  }
}

/**
 * Newline places of one stretch, the last `capacity` of them: for each, the
 * per-stream offsets a follower starting at the stretch skips to so that it
 * sends what comes after that newline. A ring of numbers, so that a stretch
 * full of short lines costs no allocation per line.
 */
class NewlineRing {
  readonly #from: Float64Array;
  readonly #capacity: number;
  count = 0;
  lastByte: number | null = null;

  constructor(capacity: number) {
    this.#capacity = capacity;
    this.#from = new Float64Array(2 * capacity);
  }

  /** Forgets the previous stretch. */
  reset(): void {
    this.count = 0;
    this.lastByte = null;
  }

  /** Records the newlines of `data` (stream `stream` at `offset`); `ends` holds the other stream's end so far. */
  add(stream: StreamName, offset: number, data: Buffer, ends: Record<StreamName, number>): void {
    for (let j = data.indexOf(NEWLINE); j !== -1; j = data.indexOf(NEWLINE, j + 1)) {
      const slot = 2 * (this.count % this.#capacity);
      this.#from[slot] = stream === 'stdout' ? offset + j + 1 : ends.stdout;
      this.#from[slot + 1] = stream === 'stderr' ? offset + j + 1 : ends.stderr;
      this.count++;
    }
    if (data.length > 0) this.lastByte = data[data.length - 1] ?? null;
  }

  /** The offsets after the `n`-th newline from the stretch's end (1 = the last); n <= count and <= capacity. */
  fromAfter(n: number): Record<StreamName, number> {
    const slot = 2 * ((this.count - n) % this.#capacity);
    return { stdout: this.#from[slot] ?? 0, stderr: this.#from[slot + 1] ?? 0 };
  }
}

/**
 * Finds where a follower of `request` starts in the first `end` bytes of the
 * log of job `jobId`, whose last SYNC record is at `lastSyncAt`. Both bounds
 * hold: the start is the later of the two.
 */
export async function seekLog(
  jobId: string,
  readAt: ReadAt,
  end: number,
  lastSyncAt: number | null,
  request: SeekRequest,
): Promise<LogStart> {
  const { tailLines, sinceMs, want } = request;
  const none = { stdout: 0, stderr: 0 };
  // Newlines still to pass going back; one more when the output ends with one (it ends a line, as in tail -n).
  let need = tailLines;
  let seenOutput = false;
  let ring: NewlineRing | null = null;
  for await (const stretch of stretchesBack(jobId, readAt, end, lastSyncAt)) {
    if (sinceMs !== undefined && stretch.timeMs !== null && stretch.timeMs < sinceMs) {
      return { pos: stretch.end, timeMs: stretch.timeMs, from: none };
    }
    if (need === 0) return { pos: stretch.end, timeMs: stretch.timeMs, from: none };
    if (need === undefined) continue;
    ring ??= new NewlineRing(need + 1);
    ring.reset();
    const ends = { stdout: 0, stderr: 0 };
    for await (const { stream, offset, data } of payloads(jobId, readAt, stretch, want)) {
      ring.add(stream, offset, data, ends);
      ends[stream] = offset + data.length;
    }
    if (!seenOutput && ring.lastByte !== null) {
      seenOutput = true;
      if (ring.lastByte === NEWLINE) need++;
    }
    if (ring.count >= need) {
      return { pos: stretch.start, timeMs: stretch.timeMs, from: ring.fromAfter(need) };
    }
    need -= ring.count;
  }
  return { pos: 0, timeMs: null, from: none };
}
