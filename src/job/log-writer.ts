/**
 * Appends a job's stdout and stderr to its output log (see log-format.ts) in
 * the order the server reads them, enforces the per-job output cap and keeps
 * per-stream counts and SHA-256 digests of what was stored.
 *
 * Chunks are queued as (header, payload) pairs and written with one writev
 * per batch: the payload Buffer read from the pipe goes to the kernel as is,
 * with no copy. The committed length grows only after a write completed, and
 * then followers are notified: a follower never sees a byte that is not in
 * the file. Each batch dates its records with SYNC records (log-format.ts). Writes never wait on readers. If the disk is slower than the job,
 * the queue is bounded by pausing the pipes (HIGH_WATER_BYTES); on a write
 * error the log is marked incomplete and the pipes keep being drained, so the
 * job is never blocked.
 */
import { createHash, type Hash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { finished, type Readable } from 'node:stream';
import {
  dataHeader,
  HEADER_BYTES,
  SYNC_INTERVAL_BYTES,
  syncRecord,
  truncatedHeader,
} from './log-format.js';
import type { Notifier } from './notifier.js';
import type { OutputDropReason, StreamName } from './types.js';

/** Default per-job output cap across both streams. TODO(configuration): make it a server option. */
export const DEFAULT_OUTPUT_CAP_BYTES = 1024 * 1024 * 1024;

/** Queued bytes (not counting the batch being written) above which the pipes are paused until the disk catches up. */
const HIGH_WATER_BYTES = 4 * 1024 * 1024;
/** Queued bytes at or below which paused pipes resume. */
const LOW_WATER_BYTES = 1024 * 1024;
/**
 * Records per writev: two iovecs each, plus the SYNC records of the batch
 * (one per SYNC_INTERVAL_BYTES of pipe-sized chunks), within Linux's IOV_MAX of 1024.
 */
const MAX_BATCH_RECORDS = 480;

/** The part of a FileHandle the writer uses; tests substitute a failing one. */
export interface LogFile {
  writev(buffers: Buffer[]): Promise<{ bytesWritten: number }>;
  /** fsync; optional so that test doubles need not have it. */
  sync?(): Promise<void>;
  /** ftruncate; optional like sync. */
  truncate?(length: number): Promise<void>;
  close(): Promise<void>;
}

interface QueuedRecord {
  readonly stream: StreamName | null;
  readonly header: Buffer;
  readonly payload: Buffer | null;
}

/** Per-stream counters. */
interface StreamState {
  /** Bytes accepted for storage (queued or written). */
  accepted: number;
  /** Bytes written to the log; offsets of followers run up to this. */
  stored: number;
  dropped: number;
  readonly hash: Hash;
  digest: Buffer | null;
}

function newStreamState(): StreamState {
  return { accepted: 0, stored: 0, dropped: 0, hash: createHash('sha256'), digest: null };
}

/** Writes every buffer completely; writev may write less than asked (e.g. a signal, a full disk). */
async function writeAll(file: LogFile, buffers: Buffer[]): Promise<void> {
  let rest = buffers;
  while (rest.length > 0) {
    let { bytesWritten } = await file.writev(rest);
    if (bytesWritten === 0) throw new Error('writev wrote 0 bytes');
    let i = 0;
    while (i < rest.length && bytesWritten >= (rest[i]?.length ?? 0)) {
      bytesWritten -= rest[i]?.length ?? 0;
      i++;
    }
    rest = rest.slice(i);
    const first = rest[0];
    if (first !== undefined && bytesWritten > 0) rest[0] = first.subarray(bytesWritten);
  }
}

/** Options of {@link OutputLogWriter}. */
export interface LogWriterOptions {
  /** Most payload bytes stored across both streams. */
  readonly capBytes: number;
  /** Notified after each completed write, so that followers wake up. */
  readonly notifier: Notifier;
  /** Wall clock in ms that dates the records (Date.now when absent; tests pass their own). */
  readonly clock?: () => number;
  /** Told of bytes not stored, as they are dropped (for metrics). */
  readonly onDropped?: (reason: OutputDropReason, bytes: number) => void;
}

/** The last SYNC record written: where it is, its time, and the log bytes after it. */
interface SyncPoint {
  readonly at: number;
  readonly timeMs: number;
  readonly after: number;
}

/** The single writer of one job's output log. */
export class OutputLogWriter {
  readonly #file: LogFile;
  readonly #capBytes: number;
  readonly #notifier: Notifier;
  readonly #clock: () => number;
  readonly #onDropped: (reason: OutputDropReason, bytes: number) => void;
  #sync: SyncPoint | null = null;
  readonly #streams: Record<StreamName, StreamState> = {
    stdout: newStreamState(),
    stderr: newStreamState(),
  };
  #queue: QueuedRecord[] = [];
  #queuedBytes = 0;
  #committedLength = 0;
  #truncated = false;
  #writeError: Error | null = null;
  #flushing: Promise<void> | null = null;
  #closed = false;
  readonly #sources = new Set<Readable>();
  #paused = false;
  #onTruncated: (() => void) | null = null;

  /** Creates the log file (it must not exist) and a writer for it. */
  static async create(path: string, options: LogWriterOptions): Promise<OutputLogWriter> {
    // 'ax': O_APPEND|O_CREAT|O_EXCL, so a stale file is never reused.
    return new OutputLogWriter(await open(path, 'ax', 0o600), options);
  }

  /** A writer over an already open file; use {@link OutputLogWriter.create} outside tests. */
  constructor(file: LogFile, options: LogWriterOptions) {
    this.#file = file;
    this.#capBytes = options.capBytes;
    this.#notifier = options.notifier;
    this.#clock = options.clock ?? Date.now;
    this.#onDropped = options.onDropped ?? (() => undefined);
  }

  /** Position of the last SYNC record in the committed log, or null before the first write. */
  get lastSyncAt(): number | null {
    return this.#sync?.at ?? null;
  }

  /** Bytes of the log file that are completely written; followers read up to here. */
  get committedLength(): number {
    return this.#committedLength;
  }

  /** Whether the cap was reached (the TRUNCATED record is queued or written). */
  get truncated(): boolean {
    return this.#truncated;
  }

  /** The write error that made the log incomplete, or null. */
  get writeError(): Error | null {
    return this.#writeError;
  }

  /** The output cap in bytes. */
  get capBytes(): number {
    return this.#capBytes;
  }

  /** Stored and dropped bytes of `stream`, and its digest once closed. */
  summary(stream: StreamName): {
    storedBytes: number;
    droppedBytes: number;
    sha256: Buffer | null;
  } {
    const s = this.#streams[stream];
    return { storedBytes: s.stored, droppedBytes: s.dropped, sha256: s.digest };
  }

  /**
   * Bytes past the cap that the sandbox discarded without handing them over
   * (its count at the job's end, minus what reached the log): reported as
   * dropped at the cap, as the bytes the log itself dropped are.
   */
  noteDiscarded(bytes: number): void {
    if (bytes > 0) this.#onDropped('cap', bytes);
  }

  /**
   * Queues one chunk read from `stream`. Returns false when the queue is
   * above its high-water mark: the producer should pause until resumed.
   */
  append(stream: StreamName, chunk: Buffer): boolean {
    if (this.#closed) throw new Error('append after close');
    const s = this.#streams[stream];
    if (this.#writeError !== null) {
      s.dropped += chunk.length;
      this.#onDropped('write_error', chunk.length);
      return true;
    }
    const room = this.#capBytes - this.#streams.stdout.accepted - this.#streams.stderr.accepted;
    const keep = Math.min(chunk.length, room);
    if (keep > 0) {
      const payload = keep === chunk.length ? chunk : chunk.subarray(0, keep);
      this.#enqueue({ stream, header: dataHeader(stream, keep, s.accepted), payload });
      s.accepted += keep;
    }
    if (keep < chunk.length) {
      s.dropped += chunk.length - keep;
      this.#onDropped('cap', chunk.length - keep);
      if (!this.#truncated) {
        this.#truncated = true;
        this.#enqueue({ stream: null, header: truncatedHeader(this.#capBytes), payload: null });
        this.#onTruncated?.();
      }
    }
    return this.#queuedBytes < HIGH_WATER_BYTES;
  }

  /**
   * Calls `listener` once when the cap is reached (at once if it was), so
   * that the producer can stop sending what would only be counted.
   */
  onTruncated(listener: () => void): void {
    if (this.#truncated) listener();
    else this.#onTruncated = listener;
  }

  /**
   * Drains `readable` into the log as `stream` until it ends (or fails),
   * pausing it while the write queue is full. Resolves when it has ended.
   */
  consume(stream: StreamName, readable: Readable): Promise<void> {
    this.#sources.add(readable);
    return new Promise<void>((resolve) => {
      const onData = (chunk: unknown): void => {
        const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
        if (buf.length > 0 && !this.append(stream, buf)) this.#pauseSources();
      };
      readable.on('data', onData);
      // An error on a pipe ends that stream's output; the job's exit report tells the rest.
      // A permanent listener: `cleanup()` below removes finished()'s own, and an 'error'
      // emitted after that with nobody listening would crash the server.
      readable.on('error', () => undefined);
      const cleanup = finished(readable, () => {
        cleanup();
        readable.off('data', onData);
        this.#sources.delete(readable);
        resolve();
      });
      if (this.#paused) readable.pause();
    });
  }

  /**
   * Waits until everything queued is written, then closes the file and
   * finalizes the digests. Call after the sources have ended.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    while (this.#flushing !== null) await this.#flushing;
    for (const s of Object.values(this.#streams)) s.digest = s.hash.digest();
    // On disk before the job's final record says how long the log is: after
    // a crash, the record never promises bytes the file lost. A failed fsync
    // means written bytes may be lost: the output is then incomplete.
    const fail = (err: unknown): void => {
      this.#writeError ??= err instanceof Error ? err : new Error(String(err));
    };
    if (this.#writeError === null) await this.#file.sync?.().catch(fail);
    await this.#file.close().catch(fail);
    this.#notifier.notify();
  }

  #enqueue(record: QueuedRecord): void {
    this.#queue.push(record);
    this.#queuedBytes += HEADER_BYTES + (record.payload?.length ?? 0);
    this.#flushing ??= this.#flush();
  }

  /** The one write loop: batches of queued records, one writev each. Never rejects. */
  async #flush(): Promise<void> {
    try {
      while (this.#queue.length > 0 && this.#writeError === null) {
        const batch = this.#queue.splice(0, MAX_BATCH_RECORDS);
        const buffers: Buffer[] = [];
        let bytes = 0;
        let queued = 0;
        const timeMs = this.#clock();
        let sync = this.#sync;
        for (const r of batch) {
          // A new time, or a long stretch since the last SYNC: date what follows.
          if (sync === null || sync.timeMs !== timeMs || sync.after >= SYNC_INTERVAL_BYTES) {
            const at = this.#committedLength + bytes;
            const record = syncRecord(at, timeMs, sync?.at ?? null);
            buffers.push(record);
            bytes += record.length;
            sync = { at, timeMs, after: 0 };
          }
          buffers.push(r.header);
          let size = r.header.length;
          if (r.payload !== null) {
            buffers.push(r.payload);
            size += r.payload.length;
          }
          bytes += size;
          queued += size;
          sync = { ...sync, after: sync.after + size };
        }
        // The batch is in flight: the pipes may fill the queue again meanwhile,
        // so reading overlaps writing; memory stays within two high-water marks.
        this.#queuedBytes -= queued;
        if (this.#queuedBytes <= LOW_WATER_BYTES) this.#resumeSources();
        try {
          await writeAll(this.#file, buffers);
        } catch (err) {
          this.#fail(err, batch);
          // Part of the batch may be in the file: cut it back to the committed
          // length, so that the file holds whole records only (a restarted
          // server checks the length) and the partial bytes' space is freed.
          await this.#file.truncate?.(this.#committedLength).catch(() => undefined);
          break;
        }
        for (const r of batch) {
          if (r.stream === null || r.payload === null) continue;
          const s = this.#streams[r.stream];
          s.hash.update(r.payload);
          s.stored += r.payload.length;
        }
        this.#committedLength += bytes;
        this.#sync = sync;
        this.#notifier.notify();
      }
    } finally {
      this.#flushing = null;
    }
  }

  /** Marks the log incomplete: what was not written is counted as dropped, and the pipes keep flowing. */
  #fail(err: unknown, batch: QueuedRecord[]): void {
    this.#writeError = err instanceof Error ? err : new Error(String(err));
    let lost = 0;
    for (const r of [...batch, ...this.#queue]) {
      if (r.stream !== null && r.payload !== null) {
        this.#streams[r.stream].dropped += r.payload.length;
        lost += r.payload.length;
      }
    }
    this.#onDropped('write_error', lost);
    this.#queue = [];
    this.#queuedBytes = 0;
    this.#resumeSources();
    this.#notifier.notify();
  }

  #pauseSources(): void {
    if (this.#paused) return;
    this.#paused = true;
    for (const r of this.#sources) r.pause();
  }

  #resumeSources(): void {
    if (!this.#paused) return;
    this.#paused = false;
    for (const r of this.#sources) r.resume();
  }
}
