/**
 * JobManager: the job library's implementation of {@link Jobs}. It owns the
 * map of jobs and the start/stop/shutdown sequences; each job owns its own
 * sandbox, log writer, grace timer and followers (job.ts), so nothing here is
 * held across a launch, a grace period or a follower's wait: a call on one
 * job never waits for another job.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, JobworkerError, toJobworkerError } from '../errors.js';
import type { Isolation, Limits } from '../isolation/index.js';
import { isValidJobId, newJobId } from './ids.js';
import { Job } from './job.js';
import { followLog } from './log-reader.js';
import { DEFAULT_OUTPUT_CAP_BYTES, OutputLogWriter } from './log-writer.js';
import { abortError, Notifier } from './notifier.js';
import { quote, validateSpec } from './spec.js';
import type {
  JobSpec,
  Jobs,
  JobStatus,
  ListFilter,
  OutputEvent,
  OutputOptions,
  StopOptions,
} from './types.js';

/** Most jobs running (or starting) at once. TODO(configuration): make it a server option. */
export const DEFAULT_MAX_RUNNING_JOBS = 256;
/** Grace period between SIGTERM and killing everything, when the caller gives none. */
export const DEFAULT_GRACE_MS = 10_000;
/** Longest grace period a caller may ask for (5 minutes, as the API documents). */
export const MAX_GRACE_MS = 5 * 60_000;
/** Recorded as `stoppedBy` for jobs stopped by {@link JobManager.shutdown}. */
export const SHUTDOWN_STOPPER = 'jobworkerd shutdown';

/** Options of {@link JobManager}. */
export interface JobManagerOptions {
  /** Directory that holds `jobs/<id>/output.log`; created if missing. */
  readonly stateDir: string;
  /** Where jobs run. */
  readonly isolation: Isolation;
  /** Per-job output cap across both streams; 1 GiB by default. */
  readonly outputCapBytes?: number;
  /** Most jobs running at once; 256 by default. */
  readonly maxRunningJobs?: number;
}

/** Counters of a job's followers, to find leaks in tests and for metrics. */
export interface FollowerStats {
  /** Followers with an open file handle. */
  readonly open: number;
  /** Followers asleep, waiting for new output. */
  readonly waiting: number;
}

/** Ends the caller's wait on `promise` when `signal` aborts, without cancelling the work itself. */
async function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  if (signal.aborted) throw abortError(signal);
  let onAbort: (() => void) | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        onAbort = () => {
          reject(abortError(signal));
        };
        signal.addEventListener('abort', onAbort, { once: true });
      }),
    ]);
  } finally {
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort);
  }
}

function checkOffset(name: string, value: number | undefined): void {
  if (value !== undefined && !(Number.isSafeInteger(value) && value >= 0)) {
    throw new JobworkerError(
      ErrorCode.InvalidArgument,
      `${name} ${value} is not a non-negative integer`,
    );
  }
}

/** Starts, stops, lists and streams jobs. */
export class JobManager implements Jobs {
  readonly #jobsDir: string;
  readonly #isolation: Isolation;
  readonly #capBytes: number;
  readonly #maxRunning: number;
  /** In start order: list() walks it backwards for newest first. */
  readonly #jobs = new Map<string, Job>();
  /** Jobs starting or not yet finished; bounded by #maxRunning. */
  #active = 0;
  readonly #starting = new Set<Promise<unknown>>();
  #shutdown: Promise<void> | null = null;

  constructor(options: JobManagerOptions) {
    this.#jobsDir = join(options.stateDir, 'jobs');
    this.#isolation = options.isolation;
    this.#capBytes = options.outputCapBytes ?? DEFAULT_OUTPUT_CAP_BYTES;
    this.#maxRunning = options.maxRunningJobs ?? DEFAULT_MAX_RUNNING_JOBS;
  }

  /** {@link Jobs.start}: validate, resolve limits, create the log, launch; a failed start leaves nothing. */
  async start(owner: string, spec: JobSpec, signal?: AbortSignal): Promise<JobStatus> {
    if (this.#shutdown !== null)
      throw new JobworkerError(ErrorCode.Unavailable, 'the server is shutting down');
    if (signal?.aborted === true) throw abortError(signal);
    const valid = validateSpec(spec);
    let limits: Limits;
    try {
      limits = this.#isolation.resolveLimits(spec.limits);
    } catch (err) {
      throw toJobworkerError(err, 'cannot resolve limits');
    }
    if (this.#active >= this.#maxRunning) {
      throw new JobworkerError(
        ErrorCode.ResourceExhausted,
        `${this.#active} jobs are running, the most allowed at once is ${this.#maxRunning}`,
      );
    }
    this.#active++;
    const starting = this.#launch(owner, valid, spec.hostNetwork, limits, signal);
    this.#starting.add(starting);
    try {
      const job = await starting;
      void job.done.then(() => {
        this.#active--;
      });
      return job.status();
    } catch (err) {
      this.#active--;
      throw toJobworkerError(err, 'cannot start the job');
    } finally {
      this.#starting.delete(starting);
    }
  }

  async #launch(
    owner: string,
    valid: ReturnType<typeof validateSpec>,
    hostNetwork: boolean,
    limits: Limits,
    signal: AbortSignal | undefined,
  ): Promise<Job> {
    const id = newJobId();
    const dir = join(this.#jobsDir, id);
    const logPath = join(dir, 'output.log');
    await mkdir(this.#jobsDir, { recursive: true, mode: 0o700 });
    await mkdir(dir, { mode: 0o700 });
    const notifier = new Notifier();
    let writer: OutputLogWriter | undefined;
    try {
      writer = await OutputLogWriter.create(logPath, { capBytes: this.#capBytes, notifier });
      const sandbox = await this.#isolation.launch(
        { jobId: id, argv: valid.argv, env: valid.env, cwd: valid.cwd, limits, hostNetwork },
        signal,
      );
      const job = new Job({
        record: {
          id,
          owner,
          argv: valid.argv,
          cwd: valid.cwd,
          hostNetwork,
          limits,
          startedAtMs: Date.now(),
          state: 'running',
          endReason: null,
          exitCode: null,
          signal: null,
          oomKilled: false,
          stoppedBy: null,
          finishedAtMs: null,
          usage: null,
          stdout: { storedBytes: 0, droppedBytes: 0, sha256Hex: null },
          stderr: { storedBytes: 0, droppedBytes: 0, sha256Hex: null },
          outputTruncated: false,
          outputIncomplete: false,
        },
        dir,
        logPath,
        writer,
        notifier,
        sandbox,
      });
      // Visible only now that it runs: a failed start never shows up in list().
      this.#jobs.set(id, job);
      return job;
    } catch (err) {
      // Clean up, but report the launch's error, not a cleanup's.
      await writer?.close();
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      throw err;
    }
  }

  #job(id: string): Job {
    // Checked before anything uses the id, e.g. to build a path.
    if (!isValidJobId(id))
      throw new JobworkerError(ErrorCode.InvalidArgument, `job id ${quote(id)} is malformed`);
    const job = this.#jobs.get(id);
    if (job === undefined) throw new JobworkerError(ErrorCode.NotFound, `job ${id} not found`);
    return job;
  }

  /** {@link Jobs.stop}. Concurrent stops of one job share one stop sequence. */
  async stop(id: string, by: string, options: StopOptions = {}): Promise<JobStatus> {
    const job = this.#job(id);
    const graceMs = options.graceMs ?? DEFAULT_GRACE_MS;
    if (!(Number.isSafeInteger(graceMs) && graceMs >= 0 && graceMs <= MAX_GRACE_MS)) {
      throw new JobworkerError(
        ErrorCode.InvalidArgument,
        `grace period ${graceMs} ms is not between 0 and ${MAX_GRACE_MS}`,
      );
    }
    const alreadyFinished = (): JobworkerError =>
      new JobworkerError(ErrorCode.AlreadyFinished, `job ${id} has already finished`);
    if (job.record.state === 'finished') throw alreadyFinished();
    if (job.exitSeen && job.record.state === 'running') {
      // It ended by itself and is only draining its output: nothing to stop.
      await abortable(job.done, options.signal);
      throw alreadyFinished();
    }
    await abortable(job.stop(by, graceMs), options.signal);
    return job.status();
  }

  /** {@link Jobs.get}. */
  get(id: string): JobStatus {
    return this.#job(id).status();
  }

  /** {@link Jobs.list}: newest first. */
  list(filter: ListFilter = {}): JobStatus[] {
    const out: JobStatus[] = [];
    for (const job of [...this.#jobs.values()].reverse()) {
      if (filter.owner !== undefined && job.record.owner !== filter.owner) continue;
      if (filter.state !== undefined && job.record.state !== filter.state) continue;
      out.push(job.status());
    }
    return out;
  }

  /** {@link Jobs.output}. Checks the id and offsets at once; the file is opened on first iteration. */
  output(id: string, options: OutputOptions): AsyncIterable<OutputEvent> {
    const job = this.#job(id);
    checkOffset('stdoutOffset', options.stdoutOffset);
    checkOffset('stderrOffset', options.stderrOffset);
    return followLog(job, options);
  }

  /** Follower counters of a job (tests, metrics). */
  followerStats(id: string): FollowerStats {
    const job = this.#job(id);
    return { open: job.followers, waiting: job.notifier.waiterCount };
  }

  /** {@link Jobs.shutdown}: refuses new starts, stops every job with the default grace, waits for all. */
  async shutdown(signal?: AbortSignal): Promise<void> {
    this.#shutdown ??= (async () => {
      // Starts already past the check finish first, so that their jobs are stopped too.
      await Promise.allSettled(this.#starting);
      const running = [...this.#jobs.values()].filter((job) => job.record.state !== 'finished');
      await Promise.all(
        running.map((job) =>
          job.exitSeen ? job.done : job.stop(SHUTDOWN_STOPPER, DEFAULT_GRACE_MS),
        ),
      );
    })();
    await abortable(this.#shutdown, signal);
  }
}

/** Creates a {@link JobManager}. */
export function createJobManager(options: JobManagerOptions): JobManager {
  return new JobManager(options);
}
