/**
 * The closed set of jobworker error codes, one row each in {@link errorTable}:
 * its gRPC status and its jobctl exit status live here and nowhere else.
 * Every error that crosses a layer boundary is a {@link JobworkerError} with
 * one of these codes; each edge translates it exactly once: the API to a gRPC
 * status (src/api/status-map.ts), jobctl back from one ({@link decodeErrorCode})
 * and to an exit code (src/cli/exit-codes.ts). docs/errors.md lists the rows,
 * and a test keeps that page complete. This module imports nothing: jobctl
 * loads it before it knows whether it will dial, and grpc-js is most of its
 * start-up time, so gRPC statuses are numbers here.
 */

/** One row of the error table. */
export interface ErrorRow {
  /** The code in {@link JobworkerError.code} and in the trailer {@link ERROR_CODE_KEY}. */
  readonly code: string;
  /** The gRPC status the server answers with (grpc-js `status` numbering). */
  readonly grpcStatus: number;
  /** jobctl's exit status: sysexits(3), or the shell's (124 timeout, 127, 130). */
  readonly exitCode: number;
  /** What it means, in one line (`jobctl --help` prints it). */
  readonly meaning: string;
}

/** The error table, by the name of each code in {@link ErrorCode}. */
export const errorTable = {
  InvalidArgument: {
    code: 'invalid_argument',
    grpcStatus: 3, // INVALID_ARGUMENT
    exitCode: 65, // EX_DATAERR
    meaning: 'a request field is malformed or out of range',
  },
  NotFound: {
    code: 'not_found',
    grpcStatus: 5, // NOT_FOUND
    exitCode: 66, // EX_NOINPUT
    meaning: 'no such job, or not yours (the same answer, on purpose)',
  },
  AlreadyFinished: {
    code: 'already_finished',
    grpcStatus: 9, // FAILED_PRECONDITION
    exitCode: 67,
    meaning: 'the job has already finished',
  },
  JobRunning: {
    code: 'job_running',
    grpcStatus: 9, // FAILED_PRECONDITION
    exitCode: 68,
    meaning: 'the job still runs; stop it first or ask to force',
  },
  AlreadyExists: {
    code: 'already_exists',
    grpcStatus: 6, // ALREADY_EXISTS
    exitCode: 73, // EX_CANTCREAT
    meaning: 'the name is taken by another of your jobs that has not finished',
  },
  StdinBusy: {
    code: 'stdin_busy',
    grpcStatus: 9, // FAILED_PRECONDITION
    exitCode: 79,
    meaning: "another attachment is already the job's stdin writer",
  },
  NoStdin: {
    code: 'no_stdin',
    grpcStatus: 9, // FAILED_PRECONDITION
    exitCode: 80,
    meaning: 'the job was started without stdin, or its input has ended',
  },
  StartFailed: {
    code: 'start_failed',
    grpcStatus: 9, // FAILED_PRECONDITION
    exitCode: 127, // the shell's "command not found"
    meaning: 'the command could not be started (not found, not executable)',
  },
  ResourceExhausted: {
    code: 'resource_exhausted',
    grpcStatus: 8, // RESOURCE_EXHAUSTED
    exitCode: 75, // EX_TEMPFAIL
    meaning: 'a server limit was reached; retry later',
  },
  Unauthenticated: {
    code: 'unauthenticated',
    grpcStatus: 16, // UNAUTHENTICATED
    exitCode: 77, // EX_NOPERM
    meaning: 'no usable identity, or the certificate is expired',
  },
  PermissionDenied: {
    code: 'permission_denied',
    grpcStatus: 7, // PERMISSION_DENIED
    exitCode: 77, // EX_NOPERM
    meaning: "not allowed for the caller's role",
  },
  Unavailable: {
    code: 'unavailable',
    grpcStatus: 14, // UNAVAILABLE
    exitCode: 69, // EX_UNAVAILABLE
    meaning: 'server unreachable, TLS handshake refused, or shutting down',
  },
  Cancelled: {
    code: 'cancelled',
    grpcStatus: 1, // CANCELLED
    exitCode: 130, // 128 + SIGINT
    meaning: 'the operation was cancelled by its caller',
  },
  DeadlineExceeded: {
    code: 'deadline_exceeded',
    grpcStatus: 4, // DEADLINE_EXCEEDED
    exitCode: 124, // timeout(1)
    meaning: 'the deadline passed before the call completed',
  },
  Internal: {
    code: 'internal',
    grpcStatus: 13, // INTERNAL
    exitCode: 70, // EX_SOFTWARE
    meaning: 'a bug or an unexpected host failure',
  },
} as const satisfies Record<string, ErrorRow>;

type Table = typeof errorTable;

/** The codes by name: `ErrorCode.NotFound` is `'not_found'`. */
export const ErrorCode = Object.fromEntries(
  Object.entries(errorTable).map(([name, row]) => [name, row.code]),
) as { readonly [Name in keyof Table]: Table[Name]['code'] };

/** One of the values of {@link ErrorCode}. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** The rows of {@link errorTable} in its order, each with its code's type. */
export const errorRows: readonly (ErrorRow & { readonly code: ErrorCode })[] =
  Object.values(errorTable);

const rowOf = Object.fromEntries(errorRows.map((row) => [row.code, row])) as Readonly<
  Record<ErrorCode, ErrorRow>
>;

/** Whether `value` is one of the closed set of codes (for decoding from the wire). */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(rowOf, value);
}

/** The table's row for `code`. */
export function errorRow(code: ErrorCode): ErrorRow {
  return rowOf[code];
}

/** The gRPC trailing metadata key carrying an error's code, so clients need not parse messages. */
export const ERROR_CODE_KEY = 'jobworker-error-code';

/** sysexits(3) EX_USAGE: both programs' exit status for a bad command line. */
export const EXIT_USAGE = 64;

// A bare status (no trailer: the call never reached jobworkerd) decodes to
// the first code of the table with that status; INTERNAL for any other.
const codeOfStatus = new Map(
  errorRows.toReversed().map((row) => [row.grpcStatus, row.code] as const),
);

/**
 * The code of a failed call: the trailer {@link ERROR_CODE_KEY} when it holds
 * a known code, else the first code of the table with gRPC status `status`,
 * else `internal`.
 */
export function decodeErrorCode(status: number, trailer: unknown): ErrorCode {
  if (isErrorCode(trailer)) return trailer;
  return codeOfStatus.get(status) ?? ErrorCode.Internal;
}

const NAME = 'JobworkerError';

/** An error with a stable code, a message naming the offending value, and an optional cause. */
export class JobworkerError extends Error {
  override readonly name = NAME;
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }

  /**
   * `instanceof JobworkerError` also holds for an Error named
   * 'JobworkerError' with a known code, as connect-es's ConnectError does, so
   * that it survives a second copy of this module. A subclass keeps the
   * ordinary prototype check.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    const ordinary = Function.prototype[Symbol.hasInstance].call(this, value);
    if (ordinary || this !== JobworkerError) return ordinary;
    return (
      value instanceof Error &&
      value.name === NAME &&
      isErrorCode((value as { code?: unknown }).code)
    );
  }
}

/**
 * Returns `err` if it is already coded; otherwise wraps it as `internal`, so
 * that nothing untyped crosses a layer boundary. An AbortSignal's reason that
 * is a JobworkerError passes through unchanged.
 */
export function toJobworkerError(err: unknown, context = 'unexpected error'): JobworkerError {
  if (err instanceof JobworkerError) return err;
  const detail = err instanceof Error ? err.message : String(err);
  return new JobworkerError(ErrorCode.Internal, `${context}: ${detail}`, { cause: err });
}
