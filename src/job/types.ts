import type {
  ForwardedSignal,
  LaunchSpec,
  Limits,
  RequestedLimits,
  Usage,
} from '../isolation/index.js';
import type { LabelSelector, Labels } from './labels.js';
import type { FieldNames } from './spec.js';

/** Where a job is in its lifecycle (mirrors jobworker.v1.JobState). */
export type JobState = 'running' | 'stopping' | 'finished';

/** Why a job ended (mirrors jobworker.v1.EndReason). */
export type EndReason =
  'exited' | 'signaled' | 'oom_killed' | 'stopped' | 'stop_escalated' | 'lost' | 'timed_out';

/** One of a job's output streams. */
export type StreamName = 'stdout' | 'stderr';

/**
 * What a client asks to run: a {@link LaunchSpec} before the job layer has
 * validated and completed it (src/job/spec.ts), so without a job id, with
 * `cwd` "" meaning "/", with `env` that gets a default PATH when it has
 * none, and with limits as requested, not yet resolved.
 */
export interface JobSpec extends Omit<LaunchSpec, 'jobId' | 'limits' | 'uid' | 'gid' | 'tty'> {
  readonly limits: RequestedLimits;
  /**
   * Run the job on its own terminal (implies stdin); output is one merged
   * stream, 'stdout'. Its TERM becomes the job's (env must not set TERM then).
   */
  readonly tty?: TerminalSpec;
  /** Longest run time in ms, after which the job is stopped (end reason timed_out); 0 or absent: none. */
  readonly timeoutMs?: number;
  /** Optional name, unique among the owner's unfinished jobs (labels.ts); none when absent or "". */
  readonly name?: string;
  /** Labels (labels.ts); none when absent. */
  readonly labels?: Labels;
}

/** A job's terminal as a client asks for it (validated in spec.ts). */
export interface TerminalSpec {
  /** 1..MAX_TERMINAL_DIMENSION. */
  readonly rows: number;
  /** 1..MAX_TERMINAL_DIMENSION. */
  readonly cols: number;
  /** The client's TERM, set as the job's: printable ASCII without spaces, at most MAX_TERM_BYTES. */
  readonly term: string;
}

/** Per-stream output summary. */
export interface StreamSummary {
  readonly storedBytes: number;
  readonly droppedBytes: number;
  /** SHA-256 of the stored bytes, set once the job has finished. */
  readonly sha256: Buffer | null;
  /**
   * Offset in this stream from which output is missing because a write to
   * the output log failed (e.g. disk full); null or absent when complete.
   * Equal to `storedBytes` (nothing is stored after a failure).
   */
  readonly incompleteAt?: number | null;
}

/** A job's status: a snapshot, safe to hand out (never mutated afterwards). */
export interface JobStatus {
  readonly id: string;
  readonly owner: string;
  readonly argv: readonly string[];
  readonly cwd: string;
  readonly hostNetwork: boolean;
  readonly state: JobState;
  readonly endReason: EndReason | null;
  readonly exitCode: number | null;
  readonly signal: number | null;
  readonly oomKilled: boolean;
  readonly stoppedBy: string | null;
  readonly startedAt: Date;
  readonly finishedAt: Date | null;
  readonly limits: Limits;
  readonly usage: Usage | null;
  readonly stdout: StreamSummary;
  readonly stderr: StreamSummary;
  readonly outputTruncated: boolean;
  /**
   * A write to the output log failed (e.g. disk full): the output after the
   * stored bytes is missing. Optional so that producers of statuses written
   * before it existed still compile; the job library always sets it.
   */
  readonly outputIncomplete?: boolean;
  /** The job's maximum run time in ms; 0 when it has none. Optional as `outputIncomplete` is. */
  readonly timeoutMs?: number;
  /** The job's name; null when it has none. */
  readonly name: string | null;
  /** The job's labels. */
  readonly labels: Labels;
  /** Started with stdin open (also with a terminal). */
  readonly stdin: boolean;
  /** Started on a terminal of its own. */
  readonly tty: boolean;
}

/** Options of {@link Jobs.attach}. */
export interface AttachOptions {
  /** Ask to be the job's one stdin writer. */
  readonly write: boolean;
  /** Ends the attachment (releases the writer seat); never ends the job. */
  readonly signal: AbortSignal;
}

/**
 * One attachment to a job. A writer holds the job's one seat until its
 * signal aborts. Input goes to the job in pieces of at most
 * STDIN_PIECE_BYTES, each handed over only once the previous one reached
 * the kernel: what the server holds for a job that does not read is one
 * piece (and the caller's own buffer). Output is read with {@link Jobs.output}.
 */
export interface Attachment {
  readonly writer: boolean;
  /**
   * Resolves once all of `data` is handed to the job's stdin path
   * (backpressure: awaits room). One write at a time (a second before the
   * first settled rejects with internal). Rejects with a JobworkerError:
   * already_finished when the job has ended, no_stdin when its input was
   * ended or closed by the job, cancelled when the attachment ended (the
   * pieces already handed over still reach the job; the rest never do),
   * invalid_argument on a reader.
   */
  write(data: Uint8Array): Promise<void>;
  /**
   * End of input, after what was written: closes the pipe, or (tty) sends
   * the terminal's VEOF character (^D: an EOF only at the start of a line,
   * as typed). Resolves once handed over; later writes and writers get no_stdin.
   */
  end(): Promise<void>;
  /** tty only: new window size (validated like TerminalSpec); SIGWINCH follows from the kernel. Writer only. */
  resize(rows: number, cols: number): void;
  /** tty only: SIGINT to the terminal's foreground process group (what Ctrl-C does). Writer only. */
  interrupt(): void;
  /** Bytes handed to the job so far (for the audit line); never stored. */
  readonly bytesIn: number;
}

/** Options of a follower of a job's output. */
export interface OutputOptions {
  /** Only this stream; both when absent. */
  readonly stream?: StreamName;
  /** Skip stdout bytes before this offset. */
  readonly stdoutOffset?: number;
  /** Skip stderr bytes before this offset. */
  readonly stderrOffset?: number;
  /**
   * Only the last this many lines (as `tail -n`, of the wanted streams
   * together) of the output stored when the follower starts; then, with
   * follow, everything new. At most MAX_TAIL_LINES (log-seek.ts).
   */
  readonly tailLines?: number;
  /** Only output stored at or after this time (ms since the epoch); undated output counts as recent. */
  readonly sinceMs?: number;
  /** Keep following live output until the job ends. */
  readonly follow: boolean;
  /** Ends the follower at once, freeing its file handle, listeners and timers. */
  readonly signal?: AbortSignal;
}

/** One event of an output stream. */
export type OutputEvent =
  | {
      readonly type: 'chunk';
      readonly stream: StreamName;
      readonly offset: number;
      readonly data: Buffer;
      /** When the server stored these bytes (ms since the epoch); null in a log written before times were kept. */
      readonly storedAtMs: number | null;
    }
  | { readonly type: 'truncated'; readonly capBytes: number }
  | { readonly type: 'finished'; readonly job: JobStatus };

/** Options of a stop. */
export interface StopOptions {
  /** Time between SIGTERM and killing the whole cgroup; 10 s when absent. */
  readonly graceMs?: number;
  /** Ends the caller's wait (not the stop itself, which always completes). */
  readonly signal?: AbortSignal;
}

/** Options of {@link Jobs.delete}. */
export interface DeleteOptions {
  /** Stop a job that still runs (default grace period), then remove it; without it job_running. */
  readonly force?: boolean;
  /** Ends the caller's wait for a forced stop (the stop itself completes). */
  readonly signal?: AbortSignal;
}

/** A place in a listing: the job that started at `startedAtMs` with this id. */
export interface ListCursor {
  readonly startedAtMs: number;
  readonly id: string;
}

/** Filter of {@link Jobs.list}. */
export interface ListFilter {
  readonly owner?: string;
  readonly state?: JobState;
  /** Only jobs listed after this one (older, or as old with a smaller id), to resume a listing. */
  readonly after?: ListCursor;
  /** At most this many jobs; all when absent. */
  readonly limit?: number;
  /** Only jobs with this name. */
  readonly name?: string;
  /** Only jobs whose labels match (labels.ts). */
  readonly selector?: LabelSelector;
}

/** A change of a watched job's state (mirrors jobworker.v1.WatchEventType). */
export type WatchChange = 'started' | 'stopping' | 'finished';

/**
 * One event of {@link Jobs.watch}: a job's status after a change; `existing`
 * for the jobs that matched when the watch (or a resync) began, then
 * `synced`; `resync` when the watcher fell behind and changes were dropped.
 */
export type WatchEvent =
  | { readonly type: WatchChange | 'existing'; readonly job: JobStatus }
  | { readonly type: 'synced' | 'resync' };

/** Options of {@link Jobs.watch}. */
export interface WatchOptions {
  /** Which jobs, as in a listing (without cursor and limit). */
  readonly filter: Omit<ListFilter, 'after' | 'limit'>;
  /** First send the jobs that match now, then `synced`. */
  readonly initial: boolean;
  /** Ends the watch. */
  readonly signal: AbortSignal;
}

/**
 * The job library's API, implemented by JobManager. Every method throws only
 * JobworkerError. Authorization is the caller's business (the API layer);
 * `owner`/`by` are recorded, not checked.
 */
export interface Jobs {
  /** Validates `spec`, starts the job in its sandbox and returns its status (running). */
  /** `names` spells fields in error messages (default: the job layer's own names). */
  start(owner: string, spec: JobSpec, signal?: AbortSignal, names?: FieldNames): Promise<JobStatus>;
  /** Stops a job (SIGTERM, grace, kill the cgroup) and returns its final status; already_finished if it had ended. */
  stop(id: string, by: string, options?: StopOptions): Promise<JobStatus>;
  /**
   * Sends `signal` to the job's main process, or with `all` to every process
   * of the job; already_finished once its process has ended. Returns its status.
   */
  signal(id: string, signal: ForwardedSignal, all: boolean): JobStatus;
  /**
   * Resolves with the job's final status once it has finished (at once if it
   * has); not_found if it is removed meanwhile; rejects with the abort
   * reason when `signal` aborts. No polling: the job's end wakes it.
   */
  wait(id: string, signal?: AbortSignal): Promise<JobStatus>;
  /**
   * Removes a finished job's record and output at once; its followers and
   * waiters end with not_found. A job not finished is refused with
   * job_running unless `force` (then stopped first, as by `by`).
   */
  delete(id: string, by: string, options?: DeleteOptions): Promise<void>;
  /** The job's current status; not_found if no such job. */
  get(id: string): JobStatus;
  /**
   * Jobs matching `filter`, newest first (by start time, then id). Costs the
   * jobs it returns and skips, not a sort of every job held.
   */
  list(filter?: ListFilter): JobStatus[];
  /** How many jobs match `filter` in all (its cursor and limit ignored). */
  count(filter?: ListFilter): number;
  /** The id of `owner`'s newest job named `name`; not_found if it has none. */
  idOfName(owner: string, name: string): string;
  /** The state changes of the jobs matching the filter, as they happen; see {@link WatchOptions}. */
  watch(options: WatchOptions): AsyncIterable<WatchEvent>;
  /**
   * Attaches to a job: as its one stdin writer (`write`), or as a reader.
   * Throws not_found, stdin_busy (another writer holds the seat), no_stdin
   * (started without stdin, or its input ended), already_finished (a writer
   * to a job that has ended); see {@link Attachment}.
   */
  attach(id: string, options: AttachOptions): Attachment;
  /** The job's output from the requested offsets; see {@link OutputOptions}. not_found if no such job. */
  output(id: string, options: OutputOptions): AsyncIterable<OutputEvent>;
  /** Stops every running job with its grace period and waits until all have ended. */
  shutdown(signal?: AbortSignal): Promise<void>;
}
