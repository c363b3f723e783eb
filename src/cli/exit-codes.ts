/**
 * jobctl's exit codes: the one place where an error or a job's end becomes
 * the process's exit status. The values follow sysexits(3) for jobctl's own
 * failures and the shell's conventions (124 timeout, 127 cannot run, 128+N
 * signal, 130 Ctrl-C) for the job's. `jobctl --help` prints
 * {@link exitCodeTable}; docs/errors.md repeats it.
 */
import { ErrorCode, JobworkerError } from '../errors.js';
import { ConfigError, UsageError } from './failures.js';

/** Every exit status jobctl itself chooses. */
export const ExitCode = {
  Ok: 0,
  Usage: 64,
  InvalidArgument: 65,
  NotFound: 66,
  AlreadyFinished: 67,
  Unavailable: 69,
  Internal: 70,
  ResourceExhausted: 75,
  PermissionDenied: 77,
  Config: 78,
  DeadlineExceeded: 124,
  StartFailed: 127,
  Interrupted: 130,
  BrokenPipe: 141,
} as const;

/** One of the values of {@link ExitCode}. */
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

const byErrorCode: Readonly<Record<ErrorCode, ExitCode>> = {
  [ErrorCode.InvalidArgument]: ExitCode.InvalidArgument,
  [ErrorCode.NotFound]: ExitCode.NotFound,
  [ErrorCode.AlreadyFinished]: ExitCode.AlreadyFinished,
  [ErrorCode.StartFailed]: ExitCode.StartFailed,
  [ErrorCode.ResourceExhausted]: ExitCode.ResourceExhausted,
  [ErrorCode.Unauthenticated]: ExitCode.PermissionDenied,
  [ErrorCode.PermissionDenied]: ExitCode.PermissionDenied,
  [ErrorCode.Unavailable]: ExitCode.Unavailable,
  [ErrorCode.Cancelled]: ExitCode.Interrupted,
  [ErrorCode.DeadlineExceeded]: ExitCode.DeadlineExceeded,
  [ErrorCode.Internal]: ExitCode.Internal,
};

/** The exit status for a failure of jobctl or of the call it made. */
export function exitCodeForError(err: unknown): ExitCode {
  if (err instanceof UsageError) return ExitCode.Usage;
  if (err instanceof ConfigError) return ExitCode.Config;
  if (err instanceof JobworkerError) return byErrorCode[err.code];
  return ExitCode.Internal;
}

/** The fields of a finished job that decide its exit status (a subset of jobworker.v1.Job). */
export interface JobEnd {
  readonly exitCode?: number | undefined;
  readonly signal?: number | undefined;
}

/**
 * The exit status that reports a finished job as a shell would: its exit
 * code; 128+N when signal N ended it (stopped, OOM-killed or killed from
 * inside); 70 when its status is unknown (the server lost it).
 */
export function exitCodeForJob(job: JobEnd): number {
  if (job.exitCode !== undefined) return job.exitCode;
  if (job.signal !== undefined) return 128 + job.signal;
  return ExitCode.Internal;
}

/** The table printed by `jobctl --help`: exit status and meaning, one per line. */
export const exitCodeTable: readonly (readonly [string, string])[] = [
  ['0', 'success (run, logs -f: the job exited with 0)'],
  ['1-125', "run, logs -f: the job exited with this code (it may equal one of jobctl's below)"],
  ['64', 'usage: unknown command or flag, bad flag value'],
  ['65', 'the server rejected an argument (invalid_argument)'],
  ['66', 'no such job, or not yours (not_found)'],
  ['67', 'the job has already finished (already_finished)'],
  ['69', 'server unreachable, TLS handshake refused, or shutting down (unavailable)'],
  ['70', 'internal error, or the job was lost by the server'],
  ['75', 'a server limit was reached; retry later (resource_exhausted)'],
  ['77', 'not allowed, or certificate expired (permission_denied, unauthenticated)'],
  ['78', 'certificate files missing or unreadable'],
  ['124', 'the server did not answer in time (deadline_exceeded)'],
  ['127', 'the command could not be started (start_failed)'],
  ['128+N', 'run, logs -f: the job was ended by signal N (143 = SIGTERM, 137 = SIGKILL)'],
  ['130', 'interrupted (Ctrl-C) or detached'],
  ['141', 'stdout was closed early (EPIPE), as for a program killed by SIGPIPE'],
];
