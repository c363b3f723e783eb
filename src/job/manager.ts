/**
 * JobManager: the job library's implementation of {@link Jobs}. It owns the
 * map of jobs and the start/stop/shutdown sequences; each job owns its own
 * sandbox, log writer, grace timer and followers (job.ts), so nothing here is
 * held across a launch, a grace period or a follower's wait: a call on one
 * job never waits for another job.
 *
 * State survives restarts: each job's record is persisted (store.ts) when it
 * starts and when it finishes, {@link openJobManager} recovers the state
 * directory (recovery.ts), and finished jobs are removed by age and by disk
 * budget (retention.ts).
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, JobworkerError, toJobworkerError } from '../errors.js';
import type { ForwardedSignal, Isolation, Limits } from '../isolation/index.js';
import { checkAborted, linkSignals, raceAbort } from '../signals.js';
import { isValidJobId, newJobId } from './ids.js';
import { LiveJob, type JobRecord, startRecord } from './job.js';
import { JobIndex } from './job-index.js';
import { checkJobName, checkLabels, isValidJobName } from './labels.js';
import { followLog } from './log-reader.js';
import { DEFAULT_OUTPUT_CAP_BYTES, OutputLogWriter } from './log-writer.js';
import { Notifier } from './notifier.js';
import { defaultOwnerBudget, type OwnerBudget, OwnerBudgets } from './owner-budget.js';
import { openOwnerIds, type OwnerIds, type OwnerIdsOptions } from './owner-ids.js';
import { type FieldNames, quote, validateSpec } from './spec.js';
import { recover, type RecoveryLog, type RecoveryReport } from './recovery.js';
import {
  DEFAULT_DISK_BUDGET_BYTES,
  DEFAULT_MAX_FINISHED_JOBS,
  DEFAULT_MAX_FINISHED_JOBS_PER_OWNER,
  DEFAULT_RECORD_BUDGET_BYTES,
  DEFAULT_RETENTION_MS,
} from './retention.js';
import { removeJob, RetentionSweeper } from './retention-sweeper.js';
import { LOG_FILE, storageError, writeFinalRecord, writeStartRecord } from './store.js';
import type { StoredJob } from './stored-job.js';
import { WatchHub } from './watch-hub.js';
import { readerAttachment, refuseWriter } from './stdin.js';
import type {
  Attachment,
  AttachOptions,
  DeleteOptions,
  JobEvent,
  JobSpec,
  Jobs,
  JobStatus,
  ListFilter,
  OutputEvent,
  OutputOptions,
  StopOptions,
  WatchEvent,
  WatchOptions,
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
  /** Each owner's bounds (owner-budget.ts); an absent field takes its default (defaultOwnerBudget). */
  readonly ownerBudget?: Partial<OwnerBudget>;
  /** Where recovery, retention and persistence failures are reported; default: warnings via process.emitWarning. */
  readonly log?: RecoveryLog;
  /** Clock of the retention rules (tests inject one); default Date.now. */
  readonly now?: () => number;
  /** Age after which finished jobs are removed; 24 h by default. */
  readonly retentionMs?: number;
  /** Most output-log bytes of finished jobs kept; 10 GiB by default. */
  readonly diskBudgetBytes?: number;
  /** Most finished jobs kept; {@link DEFAULT_MAX_FINISHED_JOBS} by default. */
  readonly maxFinishedJobs?: number;
  /** Most finished jobs of one owner kept; {@link DEFAULT_MAX_FINISHED_JOBS_PER_OWNER} by default. */
  readonly maxFinishedJobsPerOwner?: number;
  /** Most bytes of argv and working directories of finished jobs kept; {@link DEFAULT_RECORD_BUDGET_BYTES} by default. */
  readonly recordBudgetBytes?: number;
  /** The owners' uid range and the host's passwd and group files (owner-ids.ts); defaults for a server. */
  readonly owners?: Omit<OwnerIdsOptions, 'stateDir'>;
  /**
   * Told of each {@link JobEvent} as it happens (metrics). Jobs a previous
   * run left running are in {@link JobManager.recovery}, not told here.
   * Must not throw.
   */
  readonly onEvent?: (event: JobEvent) => void;
}

/** The default {@link JobManagerOptions.log}: warnings only. */
const defaultLog: RecoveryLog = (level, message) => {
  if (level === 'warn') process.emitWarning(message, { code: 'JOBWORKER_STATE' });
};

/** Counters of a job's followers, to find leaks in tests and for metrics. */
export interface FollowerStats {
  /** Followers with an open file handle. */
  readonly open: number;
  /** Followers asleep, waiting for new output. */
  readonly waiting: number;
}

function checkOffset(name: string, value: number | undefined): void {
  if (value !== undefined && !(Number.isSafeInteger(value) && value >= 0)) {
    throw new JobworkerError(
      ErrorCode.InvalidArgument,
      `${name} ${value} is not a non-negative integer`,
    );
  }
}

/** A live job, or a finished one restored from disk. */
type AnyJob = LiveJob | StoredJob;

/** Starts, stops, lists and streams jobs. */
export class JobManager implements Jobs {
  readonly #jobsDir: string;
  readonly #isolation: Isolation;
  readonly #capBytes: number;
  readonly #maxRunning: number;
  /** Each owner's running jobs and limit sums, taken at start and given back at the end. */
  readonly #ownerBudgets: OwnerBudgets;
  readonly #log: RecoveryLog;
  readonly #onEvent: (event: JobEvent) => void;
  /** Each owner's uid; a rejection (a colliding host entry) fails every start. */
  readonly #owners: Promise<OwnerIds>;
  /** Owns the retention sweeps and their hourly timer; closed at shutdown. */
  readonly #retention: RetentionSweeper;
  /** By id and in listing order (job-index.ts). */
  readonly #jobs = new JobIndex<AnyJob>();
  /** Jobs starting or not yet finished; bounded by #maxRunning. */
  #active = 0;
  /** `owner/name` of each starting or unfinished job with a name: names are unique among them. */
  readonly #namesInUse = new Set<string>();
  /** Watchers of state changes. */
  readonly #watchers = new WatchHub((filter) => this.list(filter));
  readonly #starting = new Set<Promise<unknown>>();
  #shutdown: Promise<void> | null = null;

  /** What start-up recovery found (all zeros for a manager made by createJobManager). */
  readonly recovery: RecoveryReport;

  /** Prefer {@link openJobManager}, which recovers the state directory first. */
  constructor(
    options: JobManagerOptions,
    restored: readonly StoredJob[] = [],
    recovery?: RecoveryReport,
    owners?: OwnerIds,
  ) {
    this.#jobsDir = join(options.stateDir, 'jobs');
    this.#owners = owners
      ? Promise.resolve(owners)
      : openOwnerIds({ ...options.owners, stateDir: options.stateDir });
    // Reported by the start that awaits it, not as an unhandled rejection.
    this.#owners.catch(() => undefined);
    this.#isolation = options.isolation;
    this.#capBytes = options.outputCapBytes ?? DEFAULT_OUTPUT_CAP_BYTES;
    this.#maxRunning = options.maxRunningJobs ?? DEFAULT_MAX_RUNNING_JOBS;
    this.#ownerBudgets = new OwnerBudgets({
      ...defaultOwnerBudget(options.isolation.hostBudget),
      ...options.ownerBudget,
    });
    this.#log = options.log ?? defaultLog;
    this.#onEvent = options.onEvent ?? (() => undefined);
    for (const job of restored) this.#jobs.add(job);
    this.recovery = recovery ?? {
      restored: 0,
      lost: 0,
      damaged: [],
      halfMadeRemoved: 0,
      leftoverCgroups: null,
    };
    this.#retention = new RetentionSweeper({
      jobs: this.#jobs,
      policy: {
        retentionMs: options.retentionMs ?? DEFAULT_RETENTION_MS,
        diskBudgetBytes: options.diskBudgetBytes ?? DEFAULT_DISK_BUDGET_BYTES,
        maxJobs: options.maxFinishedJobs ?? DEFAULT_MAX_FINISHED_JOBS,
        maxJobsPerOwner: options.maxFinishedJobsPerOwner ?? DEFAULT_MAX_FINISHED_JOBS_PER_OWNER,
        recordBudgetBytes: options.recordBudgetBytes ?? DEFAULT_RECORD_BUDGET_BYTES,
      },
      now: options.now ?? Date.now,
      log: this.#log,
      onRemoved: (reason) => {
        this.#onEvent({ type: 'removed', reason });
      },
    });
  }

  /** {@link Jobs.start}: validate, resolve limits, create the log, launch; a failed start leaves nothing. */
  async start(
    owner: string,
    spec: JobSpec,
    signal?: AbortSignal,
    names?: FieldNames,
  ): Promise<JobStatus> {
    if (this.#shutdown !== null)
      throw new JobworkerError(ErrorCode.Unavailable, 'the server is shutting down');
    checkAborted(signal);
    const valid = validateSpec(spec, names);
    const name = spec.name ?? '';
    checkJobName(name, names ? names('name') : 'name');
    const labels = { ...spec.labels };
    checkLabels(labels, names ? names('labels') : 'labels');
    const limitName = (field: keyof Limits) =>
      names ? names(`limits.${field}`) : `limits.${field}`;
    let limits: Limits;
    try {
      limits = this.#isolation.resolveLimits(spec.limits, limitName);
    } catch (err) {
      throw toJobworkerError(err, 'cannot resolve limits');
    }
    if (this.#active >= this.#maxRunning) {
      throw new JobworkerError(
        ErrorCode.ResourceExhausted,
        `${this.#active} jobs are running, the most allowed at once is ${this.#maxRunning}`,
      );
    }
    // Checked and taken with no await in between: concurrent starts of one
    // owner cannot both pass the check.
    const nameKey = `${owner}/${name}`;
    if (name !== '' && this.#namesInUse.has(nameKey)) {
      throw new JobworkerError(
        ErrorCode.AlreadyExists,
        `${owner} has a job named ${quote(name)} that has not finished`,
      );
    }
    const releaseBudget = this.#ownerBudgets.reserve(owner, limits, limitName);
    if (name !== '') this.#namesInUse.add(nameKey);
    const release = (): void => {
      releaseBudget();
      if (name !== '') this.#namesInUse.delete(nameKey);
    };
    this.#active++;
    const starting = this.#launch(
      owner,
      { ...valid, name: name === '' ? null : name, labels },
      spec.hostNetwork,
      limits,
      signal,
    );
    this.#starting.add(starting);
    try {
      const job = await starting;
      this.#onEvent({ type: 'started' });
      void job.done.then(() => {
        this.#active--;
        release();
        const { endReason } = job.record;
        if (endReason !== null) this.#onEvent({ type: 'finished', reason: endReason });
        // A finished job adds to the output kept: the budget rule may apply now.
        this.sweepRetention();
      });
      return job.status();
    } catch (err) {
      this.#active--;
      release();
      throw toJobworkerError(err, 'cannot start the job');
    } finally {
      this.#starting.delete(starting);
    }
  }

  async #launch(
    owner: string,
    valid: ReturnType<typeof validateSpec> & Pick<JobRecord, 'name' | 'labels'>,
    hostNetwork: boolean,
    limits: Limits,
    signal: AbortSignal | undefined,
  ): Promise<LiveJob> {
    const uid = await (await this.#owners).uidOf(owner);
    const id = newJobId();
    const dir = join(this.#jobsDir, id);
    const logPath = join(dir, LOG_FILE);
    try {
      await mkdir(this.#jobsDir, { recursive: true, mode: 0o700 });
      await mkdir(dir, { mode: 0o700 });
    } catch (err) {
      throw storageError(err, `cannot create the directory of job ${id}`);
    }
    const notifier = new Notifier();
    let writer: OutputLogWriter | undefined;
    try {
      const record = startRecord({
        id,
        owner,
        uid,
        argv: valid.argv,
        cwd: valid.cwd,
        hostNetwork,
        stdin: valid.stdin,
        tty: valid.tty !== null,
        limits,
        startedAtMs: Date.now(),
        timeoutMs: valid.timeoutMs,
        name: valid.name,
        labels: valid.labels,
      });
      // Persisted (with room reserved for the final record) before anything
      // runs: a start on a full disk fails before a process exists, and a job
      // a client knows of is found after a restart. The output log is created
      // and the isolation makes the cgroups, the helper and the namespaces
      // meanwhile, and runs nothing before start(). A crash in between leaves
      // a record of a job that never ran: it is reported lost.
      // Called first, and made async: a prepare that throws at once still leaves
      // the two writes below to be awaited before the cleanup removes `dir`.
      const preparing = (async () =>
        this.#isolation.prepare(
          {
            jobId: id,
            argv: valid.argv,
            env: valid.env,
            cwd: valid.cwd,
            limits,
            hostNetwork,
            uid,
            gid: uid,
            ...(valid.stdin && { stdin: true }),
            ...(valid.tty && { tty: { rows: valid.tty.rows, cols: valid.tty.cols } }),
          },
          signal,
        ))();
      const created = OutputLogWriter.create(logPath, {
        capBytes: this.#capBytes,
        notifier,
        onDropped: (reason, bytes) => {
          this.#onEvent({ type: 'output_dropped', reason, bytes });
        },
      }).catch((err: unknown) => {
        throw storageError(err, `cannot create the output log of job ${id}`);
      });
      const [prepared, made, persisted] = await Promise.allSettled([
        preparing,
        created,
        writeStartRecord(this.#jobsDir, dir, record, created),
      ]);
      // All three have settled: the cleanup below may close the log and remove `dir`.
      if (made.status === 'fulfilled') writer = made.value;
      if (prepared.status === 'rejected') throw prepared.reason;
      if (made.status === 'rejected') {
        await prepared.value.cancel();
        throw made.reason;
      }
      if (persisted.status === 'rejected') {
        await prepared.value.cancel();
        throw persisted.reason;
      }
      const sandbox = await prepared.value.start();
      const job = new LiveJob({
        record,
        dir,
        logPath,
        writer: made.value,
        notifier,
        sandbox,
        timeoutGraceMs: DEFAULT_GRACE_MS,
        persist: (final) =>
          writeFinalRecord(dir, final).catch((err: unknown) => {
            // Finished in memory all the same; after a restart it shows up as lost.
            this.#log('warn', `cannot persist the final record of job ${id}: ${String(err)}`, {
              jobId: id,
            });
          }),
        onChange: (change) => {
          this.#watchers.publish(change, job.record, () => job.status());
        },
      });
      // Visible only now that it runs: a failed start never shows up in list().
      this.#jobs.add(job);
      this.#watchers.publish('started', record, () => job.status());
      return job;
    } catch (err) {
      // Clean up, but report the launch's error, not a cleanup's.
      await writer?.close();
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      throw err;
    }
  }

  #job(id: string): AnyJob {
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
      await raceAbort(job.done, options.signal);
      throw alreadyFinished();
    }
    await raceAbort(job.stop(by, graceMs), options.signal);
    return job.status();
  }

  /** {@link Jobs.signal}. */
  signal(id: string, signal: ForwardedSignal, all: boolean): JobStatus {
    const job = this.#job(id);
    if (!job.signal(signal, all))
      throw new JobworkerError(ErrorCode.AlreadyFinished, `job ${id} has already finished`);
    return job.status();
  }

  /** {@link Jobs.wait}: the job's end (or its removal, or the abort) wakes it. */
  async wait(id: string, signal?: AbortSignal): Promise<JobStatus> {
    const job = this.#job(id);
    const link = linkSignals(job.removed, signal);
    try {
      await raceAbort(job.done, link.signal);
    } finally {
      link.dispose();
    }
    return job.status();
  }

  /** {@link Jobs.delete}. */
  async delete(id: string, by: string, options: DeleteOptions = {}): Promise<void> {
    const job = this.#job(id);
    if (job.record.state !== 'finished') {
      if (options.force !== true) {
        throw new JobworkerError(
          ErrorCode.JobRunning,
          `job ${id} is ${job.record.state}; stop it first, or force its removal`,
        );
      }
      if (!job.exitSeen) void job.stop(by, DEFAULT_GRACE_MS);
      await raceAbort(job.done, options.signal);
    }
    // Removed meanwhile (a concurrent delete, retention): as if it never existed.
    if (this.#jobs.get(id) !== job)
      throw new JobworkerError(ErrorCode.NotFound, `job ${id} not found`);
    await removeJob(this.#jobs, job, 'request', this.#log);
  }

  /** {@link Jobs.get}. */
  get(id: string): JobStatus {
    return this.#job(id).status();
  }

  /** {@link Jobs.list}. */
  list(filter: ListFilter = {}): JobStatus[] {
    return this.#jobs.list(filter).map((job) => job.status());
  }

  /** {@link Jobs.count}. */
  count(filter: ListFilter = {}): number {
    return this.#jobs.count(filter);
  }

  /** {@link Jobs.idOfName}. */
  idOfName(owner: string, name: string): string {
    if (!isValidJobName(name))
      throw new JobworkerError(ErrorCode.InvalidArgument, `job name ${quote(name)} is malformed`);
    const job = this.#jobs.newestNamed(owner, name);
    if (job === undefined) throw new JobworkerError(ErrorCode.NotFound, `job ${name} not found`);
    return job.record.id;
  }

  /** {@link Jobs.watch}. */
  watch(options: WatchOptions): AsyncIterable<WatchEvent> {
    return this.#watchers.watch(options);
  }

  /** Open watchers (tests, metrics). */
  get watcherCount(): number {
    return this.#watchers.size;
  }

  /** {@link Jobs.attach}. A finished job restored from disk has no input: readers only. */
  attach(id: string, options: AttachOptions): Attachment {
    const job = this.#job(id);
    if (job instanceof LiveJob) return job.attach(options);
    const facts = { id, tty: job.record.tty, ended: () => true };
    if (options.write) refuseWriter(facts);
    return readerAttachment(facts);
  }

  /** {@link Jobs.output}. Checks the id and offsets at once; the file is opened on first iteration. */
  output(id: string, options: OutputOptions): AsyncIterable<OutputEvent> {
    const job = this.#job(id);
    checkOffset('stdoutOffset', options.stdoutOffset);
    checkOffset('stderrOffset', options.stderrOffset);
    return followLog(job, options);
  }

  /** What `owner`'s jobs hold of its budget now (tests, diagnostics). */
  ownerBudgetHeld(owner: string): OwnerBudget {
    return this.#ownerBudgets.held(owner);
  }

  /** Follower counters of a job (tests, metrics). */
  followerStats(id: string): FollowerStats {
    const job = this.#job(id);
    return { open: job.followers, waiting: job.notifier.waiterCount };
  }

  /**
   * Asks for a retention sweep: finished jobs past the retention period go,
   * then, oldest first, those over the disk budget and over the counts. Runs at open, after each
   * job finishes and hourly; returns at once (see {@link retentionIdle}).
   */
  sweepRetention(): void {
    this.#retention.request();
  }

  /** Resolves when no retention sweep is running (tests; open; shutdown). */
  retentionIdle(): Promise<void> {
    return this.#retention.idle();
  }

  /** {@link Jobs.shutdown}: refuses new starts, stops every job with the default grace, waits for all. */
  async shutdown(signal?: AbortSignal): Promise<void> {
    this.#shutdown ??= (async () => {
      this.#retention.close();
      // Starts already past the check finish first, so that their jobs are stopped too.
      await Promise.allSettled(this.#starting);
      const running = [...this.#jobs.values()].filter((job) => job.record.state !== 'finished');
      await Promise.all(
        running.map((job) =>
          job.exitSeen ? job.done : job.stop(SHUTDOWN_STOPPER, DEFAULT_GRACE_MS),
        ),
      );
      await this.retentionIdle();
    })();
    await raceAbort(this.#shutdown, signal);
  }
}

/**
 * Creates a {@link JobManager} over a state directory without recovering it:
 * for a fresh directory (tests). Jobs it runs are persisted all the same.
 */
export function createJobManager(options: JobManagerOptions): JobManager {
  return new JobManager(options);
}

/**
 * Opens the state directory and returns a manager over it: sweeps leftover
 * job cgroups, restores finished jobs, finishes jobs that were running when
 * the previous server ended as `lost`, removes half-made job directories,
 * then applies retention. Damaged records and logs are logged, skipped and
 * listed in {@link JobManager.recovery}; only an unusable state directory
 * rejects.
 */
export async function openJobManager(options: JobManagerOptions): Promise<JobManager> {
  const jobsDir = join(options.stateDir, 'jobs');
  await mkdir(jobsDir, { recursive: true, mode: 0o700 }).catch((err: unknown) => {
    throw storageError(err, `cannot create ${jobsDir}`);
  });
  // Before anything runs: a uid range that collides with a host entry refuses the start.
  const owners = await openOwnerIds({ ...options.owners, stateDir: options.stateDir });
  const now = options.now ?? Date.now;
  const { jobs, report } = await recover(
    jobsDir,
    options.isolation,
    now(),
    options.log ?? defaultLog,
  );
  const manager = new JobManager(options, jobs, report, owners);
  manager.sweepRetention();
  await manager.retentionIdle();
  return manager;
}
