/**
 * Applies retention (retention.ts) to the manager's jobs: one sweep at a
 * time, a request made during a sweep runs another after it, and an hourly
 * unref'd timer for the age rule (time passing has no notification; the
 * budget rule is requested whenever a job finishes). Removing a job takes it
 * out of the map first (no new follower), then ends its followers with
 * not_found (their files close), then deletes its directory.
 */
import { rm } from 'node:fs/promises';
import type { JobRecord, Remover } from './job.js';
import type { RecoveryLog } from './recovery.js';
import {
  type RemovalReason,
  RETENTION_SWEEP_INTERVAL_MS,
  selectForRemoval,
  type RetentionCandidate,
  type RetentionPolicy,
} from './retention.js';
import type { JobStatus } from './types.js';

/** What the sweeper needs of a job. */
export interface RetainedJob {
  readonly record: JobRecord;
  readonly dir: string;
  status(): JobStatus;
  markRemoved(by: Remover): void;
}

/** The manager's jobs as the sweeper sees them. */
export interface RetainedJobs {
  values(): Iterable<RetainedJob>;
  get(id: string): RetainedJob | undefined;
  delete(id: string): boolean;
}

/** Options of {@link RetentionSweeper}. */
export interface SweeperOptions {
  /** The manager's jobs; the sweeper deletes removed ones from it. */
  readonly jobs: RetainedJobs;
  readonly policy: RetentionPolicy;
  readonly now: () => number;
  readonly log: RecoveryLog;
  /** Told of each job removed, with the rule that removed it (for metrics). */
  readonly onRemoved?: (reason: RemovalReason) => void;
}

/** What a record holds beyond its fixed fields: its argv and working directory, in UTF-8 bytes. */
function recordBytes(record: JobRecord): number {
  let bytes = Buffer.byteLength(record.cwd);
  for (const arg of record.argv) bytes += Buffer.byteLength(arg);
  return bytes;
}

/** Owns the retention timer and the sweeps; {@link RetentionSweeper.close} ends both. */
export class RetentionSweeper {
  readonly #options: SweeperOptions;
  readonly #timer: NodeJS.Timeout;
  #running: Promise<void> | null = null;
  /** Requests so far: a sweep that sees a newer one when it ends runs again. */
  #requests = 0;
  #closed = false;

  constructor(options: SweeperOptions) {
    this.#options = options;
    // unref'd: retention never keeps the process alive.
    this.#timer = setInterval(() => {
      this.request();
    }, RETENTION_SWEEP_INTERVAL_MS).unref();
  }

  /** Asks for a sweep; returns at once. Sweeps never reject (failures are logged). */
  request(): void {
    if (this.#closed) return;
    this.#requests++;
    if (this.#running !== null) return;
    this.#running = (async () => {
      let seen: number;
      do {
        seen = this.#requests;
        await this.#sweep();
      } while (seen !== this.#requests && !this.#closed);
    })().finally(() => {
      this.#running = null;
    });
  }

  /** Resolves when no sweep is running. */
  async idle(): Promise<void> {
    while (this.#running !== null) await this.#running;
  }

  /** Stops the timer and refuses further requests; await {@link idle} for a sweep in progress. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
  }

  async #sweep(): Promise<void> {
    const { jobs, policy, now, log } = this.#options;
    const candidates: RetentionCandidate[] = [];
    for (const job of jobs.values()) {
      const r = job.record;
      // Finished jobs whose final record is on disk (logBytes set) only; running jobs never.
      if (r.state !== 'finished' || r.finishedAtMs === null || r.logBytes === null) continue;
      candidates.push({
        id: r.id,
        owner: r.owner,
        finishedAtMs: r.finishedAtMs,
        logBytes: r.logBytes,
        recordBytes: recordBytes(r),
      });
    }
    for (const [id, reason] of selectForRemoval(candidates, now(), policy)) {
      const job = jobs.get(id);
      if (job === undefined) continue;
      await removeJob(jobs, job, 'retention', log, { reason });
      this.#options.onRemoved?.(reason);
    }
  }
}

/**
 * Removes `job`: out of `jobs` first (no new follower), then its followers
 * and waiters end with not_found (their files close), then its directory
 * goes. Never rejects: a directory that cannot be removed is logged.
 */
export async function removeJob(
  jobs: RetainedJobs,
  job: RetainedJob,
  by: Remover,
  log: RecoveryLog,
  fields: Readonly<Record<string, unknown>> = {},
): Promise<void> {
  const id = job.record.id;
  jobs.delete(id);
  job.markRemoved(by);
  log('info', `removed job ${id} (${by})`, { jobId: id, by, ...fields });
  await rm(job.dir, { recursive: true, force: true }).catch((err: unknown) => {
    log('warn', `cannot remove the directory of job ${id}: ${String(err)}`, { jobId: id });
  });
}
