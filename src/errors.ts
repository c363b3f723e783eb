/**
 * The closed set of jobworker error codes. Every error that crosses a layer
 * boundary is a {@link JobworkerError} with one of these codes; each edge
 * translates it exactly once: the API to a gRPC status (src/api/status-map.ts),
 * the CLI to an exit code (src/cli/exit-codes.ts). docs/errors.md lists them,
 * and a test keeps that page complete.
 */
export const ErrorCode = {
  /** A request field is malformed or out of range; the message names it. */
  InvalidArgument: 'invalid_argument',
  /** No such job, or one the caller may not see (indistinguishable on purpose). */
  NotFound: 'not_found',
  /** The job has already finished (stop of a finished job). */
  AlreadyFinished: 'already_finished',
  /** The command could not be started: not found, not executable, bad working directory. */
  StartFailed: 'start_failed',
  /** A server limit was reached (too many jobs, output storage full). */
  ResourceExhausted: 'resource_exhausted',
  /** The caller presented no usable identity. */
  Unauthenticated: 'unauthenticated',
  /** The caller's role does not allow the operation. */
  PermissionDenied: 'permission_denied',
  /** The server is shutting down or a dependency is unreachable; retry later. */
  Unavailable: 'unavailable',
  /** The operation was cancelled by its caller (AbortSignal, client hang-up). */
  Cancelled: 'cancelled',
  /** The caller's deadline passed before the operation completed. */
  DeadlineExceeded: 'deadline_exceeded',
  /** A bug or an unexpected failure of the host (cgroup write, helper crash). */
  Internal: 'internal',
} as const;

/**
 * The gRPC trailing metadata key carrying an error's code: the server sets
 * it (src/api/status-map.ts), jobctl reads it (src/cli/call-errors.ts).
 */
export const ERROR_CODE_KEY = 'jobworker-error-code';

/** One of the values of {@link ErrorCode}. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const codes = new Set<string>(Object.values(ErrorCode));

/** Whether `value` is one of the closed set of codes (for decoding from the wire). */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && codes.has(value);
}

/** An error with a stable code, a message naming the offending value, and an optional cause. */
export class JobworkerError extends Error {
  override readonly name = 'JobworkerError';
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
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
