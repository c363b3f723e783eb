/**
 * jobctl's exit codes: the one place where an error or a job's end becomes
 * the process's exit status. An error's status is its row's in the error
 * table (src/errors.ts); jobctl's own failures follow sysexits(3) and the
 * job's the shell's conventions (128+N signal). `jobctl --help` prints
 * {@link exitCodeTable}; docs/errors.md repeats it.
 */
import { errorRow, errorRows, errorTable, EXIT_USAGE, JobworkerError } from '../errors.js';
import { ConfigError, UsageError } from './failures.js';

/** The exit statuses jobctl names in its code; the other errors' come from their rows. */
export const ExitCode = {
  Ok: 0,
  Usage: EXIT_USAGE,
  Internal: errorTable.Internal.exitCode,
  /** Ctrl-C, as for a cancelled call. */
  Interrupted: errorTable.Cancelled.exitCode,
  /** sysexits(3) EX_CONFIG. */
  Config: 78,
  /** 128 + SIGPIPE. */
  BrokenPipe: 141,
} as const;

/** The exit status for a failure of jobctl or of the call it made. */
export function exitCodeForError(err: unknown): number {
  if (err instanceof UsageError) return ExitCode.Usage;
  if (err instanceof ConfigError) return ExitCode.Config;
  if (err instanceof JobworkerError) return errorRow(err.code).exitCode;
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
 * inside); `internal` when its status is unknown (the server lost it).
 */
export function exitCodeForJob(job: JobEnd): number {
  if (job.exitCode !== undefined) return job.exitCode;
  if (job.signal !== undefined) return 128 + job.signal;
  return ExitCode.Internal;
}

/** What jobctl's own exits mean, and what it adds to an error's exit status. */
const ownMeanings: readonly (readonly [string, string])[] = [
  [String(ExitCode.Ok), 'success (run, logs -f: the job exited with 0)'],
  ['1-125', "run, logs -f: the job exited with this code (it may equal one of jobctl's below)"],
  [String(ExitCode.Usage), 'usage: unknown command or flag, bad flag value'],
  [String(ExitCode.Internal), 'also: the job was lost by the server'],
  [String(ExitCode.Config), 'certificate files missing or unreadable'],
  ['128+N', 'run, logs -f: the job was ended by signal N (143 = SIGTERM, 137 = SIGKILL)'],
  [String(ExitCode.Interrupted), 'also: interrupted (Ctrl-C), or run detached'],
  [
    String(ExitCode.BrokenPipe),
    'stdout was closed early (EPIPE), as for a program killed by SIGPIPE',
  ],
];

/**
 * The table printed by `jobctl --help`: exit status and meaning, in
 * ascending order of status; a status shared by several codes has a line
 * for each.
 */
export const exitCodeTable: readonly (readonly [string, string])[] = [
  ...errorRows.map((row) => [String(row.exitCode), `${row.code}: ${row.meaning}`] as const),
  ...ownMeanings,
].sort(([a], [b]) => Number.parseInt(a, 10) - Number.parseInt(b, 10));
