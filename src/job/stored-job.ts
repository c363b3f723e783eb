/**
 * A finished job restored from its record after a restart. It has no writer
 * and no sandbox: its output log is complete and closed, so the committed
 * length is the record's log length, and followers read it like the log of
 * any finished job.
 */
import {
  statusOfRecord,
  type JobRecord,
  removalController,
  removedError,
  type Remover,
} from './job.js';
import type { LogSource } from './log-reader.js';
import { Notifier } from './notifier.js';
import type { JobStatus } from './types.js';

/** A job loaded from disk, finished. Owned by the JobManager. */
export class StoredJob implements LogSource {
  readonly record: JobRecord;
  readonly dir: string;
  readonly path: string;
  /** Never notified: nothing changes any more. Present for followers' uniform code. */
  readonly notifier = new Notifier();
  /** Already finished. */
  readonly done: Promise<void> = Promise.resolve();
  readonly exitSeen = true;
  readonly #status: JobStatus;
  readonly #length: number;
  readonly #removed = removalController();
  #followers = 0;

  /** `record` must be finished, with its log length checked against the file. */
  constructor(record: JobRecord & { readonly logBytes: number }, dir: string, logPath: string) {
    this.record = record;
    this.dir = dir;
    this.path = logPath;
    this.#length = record.logBytes;
    this.#status = statusOfRecord(record);
  }

  /** Id of the job. */
  get jobId(): string {
    return this.record.id;
  }

  /** Number of open followers of this job's output. */
  get followers(): number {
    return this.#followers;
  }

  /** {@link LogSource.followerCount}. */
  followerCount(delta: 1 | -1): void {
    this.#followers += delta;
  }

  /** {@link LogSource.committedLength}: the whole log. */
  committedLength(): number {
    return this.#length;
  }

  /** {@link LogSource.lastSyncAt}. */
  lastSyncAt(): number | null {
    return this.record.lastSyncAt;
  }

  /** {@link LogSource.finishedStatus}. */
  finishedStatus(): JobStatus {
    return this.#status;
  }

  /** {@link LogSource.removed}. */
  get removed(): AbortSignal {
    return this.#removed.signal;
  }

  /** Ends every follower and waiter with not_found and closes their files (the job is removed). */
  markRemoved(by: Remover): void {
    this.#removed.abort(removedError(this.record.id, by));
  }

  /** Nothing to signal: it has finished. */
  signal(): boolean {
    return false;
  }

  /** The job's status (final). */
  status(): JobStatus {
    return this.#status;
  }

  /** Nothing to stop; present so that the manager treats every job alike. */
  stop(): Promise<void> {
    return this.done;
  }
}
