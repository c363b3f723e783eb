import type { Readable, Writable } from 'node:stream';
import type { WindowSize } from './protocol.js';

export type { WindowSize } from './protocol.js';
import type { HostBudget } from './host-budget.js';
import type { LimitName } from './limits.js';

/**
 * Signals the sandbox forwards to a job: the ones its helper watches
 * (native/jobexec.c block_signals). SIGKILL is not forwarded: it would end
 * the helper itself, and ending a job is `kill()`'s business.
 */
export const FORWARDED_SIGNALS = [
  'SIGHUP',
  'SIGINT',
  'SIGQUIT',
  'SIGTERM',
  'SIGUSR1',
  'SIGUSR2',
] as const;

/** One of {@link FORWARDED_SIGNALS}. */
export type ForwardedSignal = (typeof FORWARDED_SIGNALS)[number];

/** Resource limits of one job, as applied (defaults filled in, each within the server's range). */
export interface Limits {
  /** CPU bandwidth in thousandths of a core. */
  readonly cpuMillis: number;
  /** Memory in bytes (no swap). */
  readonly memoryBytes: number;
  /** Read bandwidth in bytes per second on the state directory's block device. */
  readonly ioReadBps: number;
  /** Write bandwidth in bytes per second on that device. */
  readonly ioWriteBps: number;
  /** Most tasks (processes and threads) at once. */
  readonly pidsMax: number;
}

/** What a client may ask for: any subset; zero or absent means the default. */
export type RequestedLimits = Partial<Limits>;

/** Resources a job used, read from its cgroups after it ended. */
export interface Usage {
  /** CPU time of all the job's processes, user and system, in nanoseconds. */
  readonly cpuTimeNs: number;
  readonly peakMemoryBytes: number;
  readonly ioReadBytes: number;
  readonly ioWriteBytes: number;
}

/** Everything needed to start one sandboxed command. Validated by the job layer. */
export interface LaunchSpec {
  /** Job id, already validated (lowercase base32, 26 characters); used as hostname and cgroup name. */
  readonly jobId: string;
  /** Command and arguments; argv[0] is resolved on the PATH of `env` by the helper. */
  readonly argv: readonly string[];
  /** The job's complete environment as NAME=VALUE; nothing of the server's is added. */
  readonly env: readonly string[];
  /** Absolute working directory inside the job's mount namespace. */
  readonly cwd: string;
  /** Limits as resolved by {@link Isolation.resolveLimits}. */
  readonly limits: Limits;
  /** Share the host network namespace instead of a fresh one with only `lo`. */
  readonly hostNetwork: boolean;
  /** uid and gid the job runs as (no supplementary groups); default the isolation's. */
  readonly uid?: number;
  readonly gid?: number;
  /** Keep the job's stdin open for {@link Sandbox.stdin} (a pipe); /dev/null when false or absent. */
  readonly stdin?: boolean;
  /**
   * A terminal of this size, made inside the job's namespaces, as the job's
   * controlling terminal and fds 0-2 (implies stdin; the output is then
   * `stdout` alone). Validated by the job layer, which also puts TERM in `env`.
   */
  readonly tty?: WindowSize;
}

/**
 * The input side of a job launched with stdin. The stream is the only
 * queue: the helper reads it only as the job's pipe or terminal has room,
 * so a job that does not read makes writes wait (its 'drain' never comes),
 * with nothing held but the socket's kernel buffers and what the writer
 * has handed over. Owned by the sandbox: destroyed once the job has ended.
 */
export interface SandboxInput {
  /**
   * Bytes for the job. end() is the end of input: the pipe is closed, or
   * the terminal gets its VEOF character. A job that closed its stdin is one
   * that does not read it: writes wait until the job ends (the helper holds
   * the pipe's read end), when the sandbox destroys the stream.
   */
  readonly stream: Writable;
  /** Whether the job has a terminal (resize and interrupt act only then). */
  readonly tty: boolean;
  /** The terminal's new window size (the kernel sends SIGWINCH to its foreground group). */
  resize(size: WindowSize): void;
  /** SIGINT to the terminal's foreground process group, as a typed ^C (native/jobexec.c). */
  interrupt(): void;
}

/** How a sandboxed job ended, with the data for its exit report. */
export interface ExitReport {
  /** Exit code of the command when it exited by itself, else null. */
  readonly exitCode: number | null;
  /** Signal number that ended the command, else null. */
  readonly signal: number | null;
  /** Whether the kernel OOM-killed any process of the job (from the cgroup's oom_kill counter). */
  readonly oomKilled: boolean;
  readonly usage: Usage;
}

/**
 * A running sandboxed job. Its owner (the job layer) must consume `stdout`
 * and `stderr` to their end and await `exited`; `exited` resolves only after
 * every process of the job is gone and its cgroups are removed, and never
 * rejects (a failure to read usage is reported as zeros and logged).
 */
export interface Sandbox {
  /** Host pid of the helper process that owns the job. */
  readonly pid: number;
  /** The job's standard output (a real pipe inside the job). */
  readonly stdout: Readable;
  /** The job's standard error (ends at once with a terminal: its output is stdout). */
  readonly stderr: Readable;
  /** The job's input when launched with stdin or a terminal, else null. */
  readonly stdin: SandboxInput | null;
  /**
   * Resolves as soon as the job's process has ended, before its usage is read
   * and its cgroups removed (which `exited` waits for): from then on a stop
   * would signal nothing, so the job ended by itself. Never rejects.
   */
  readonly ended: Promise<void>;
  /** Resolves once the job and all its processes have ended and its cgroups are removed. */
  readonly exited: Promise<ExitReport>;
  /** Sends SIGTERM to the job's process group (forwarded by the sandbox's init). Idempotent. */
  terminate(): void;
  /**
   * Sends `signal` to the job's main process, or with `all` to every
   * process of the job; nothing once the job has ended.
   */
  signal(signal: ForwardedSignal, all: boolean): void;
  /** Kills every process in the job's cgroups; resolves when none is left. Idempotent. */
  kill(): Promise<void>;
}

/**
 * A sandbox made but not started: the job's cgroups exist and its helper is
 * forked and connected, but nothing of the job runs until {@link start}. Its
 * owner calls exactly one of `start` or `cancel` (either again is safe).
 */
export interface PreparedSandbox {
  /**
   * Lets the job run; resolves once the command has been exec'd inside the
   * sandbox. Rejects with a JobworkerError (`start_failed` for a missing or
   * non-executable command or a bad working directory, `internal` for a host
   * failure, `cancelled` once the prepare's signal has aborted or after
   * cancel()) and then leaves nothing behind. Later calls return the same promise.
   */
  start(): Promise<Sandbox>;
  /**
   * Undoes the preparation: kills the helper and removes the cgroups;
   * resolves when nothing is left. Idempotent. Once start() has been called
   * it only waits for it to settle: a failed start has undone itself, and a
   * started sandbox is its owner's to stop.
   */
  cancel(): Promise<void>;
}

/** The one seam between the job library and the kernel. */
export interface Isolation {
  /**
   * What all jobs together may hold, enforced by the kernel on their common
   * cgroup; absent when nothing bounds the sum (test isolations).
   */
  readonly hostBudget?: HostBudget;
  /**
   * Fills in defaults for a request already validated by the job layer;
   * throws invalid_argument naming (through `name`, default `limits.FIELD`)
   * a field outside the server's range.
   */
  resolveLimits(requested: RequestedLimits, name?: LimitName): Limits;
  /**
   * Creates the job's cgroups and forks its helper, connected, without
   * running anything of the job: what the caller does before start()
   * (persisting the job) overlaps this work. Rejects with a JobworkerError
   * (`permission_denied` for a host network this server does not allow,
   * `internal` for a host failure, `cancelled` when `signal` aborts) and
   * then leaves nothing behind. `signal` covers start() too.
   */
  prepare(spec: LaunchSpec, signal?: AbortSignal): Promise<PreparedSandbox>;
  /**
   * Kills and removes job cgroups (and helper socket directories) left by a
   * previous run; returns how many cgroups (optional: test isolations have none).
   */
  sweepLeftovers?(): Promise<number>;
  /** Releases what the isolation holds on the host (its cgroup group directories) once every job has ended. */
  close?(): Promise<void>;
}
