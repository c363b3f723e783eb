/**
 * The one translation of jobworker error codes to gRPC status codes. Each
 * code maps to exactly one status; the code string itself travels in the
 * trailing metadata key {@link ERROR_CODE_KEY} so that clients can branch on
 * it without parsing messages. docs/errors.md documents this table.
 */
import { Metadata, status as Status, type StatusObject } from '@grpc/grpc-js';
import {
  ERROR_CODE_KEY,
  ErrorCode,
  isErrorCode,
  JobworkerError,
  toJobworkerError,
} from '../errors.js';

export { ERROR_CODE_KEY };

/** ErrorCode -> gRPC status. `satisfies` makes a new ErrorCode without a row a type error. */
export const GRPC_STATUS = {
  invalid_argument: Status.INVALID_ARGUMENT,
  not_found: Status.NOT_FOUND,
  already_finished: Status.FAILED_PRECONDITION,
  start_failed: Status.FAILED_PRECONDITION,
  resource_exhausted: Status.RESOURCE_EXHAUSTED,
  unauthenticated: Status.UNAUTHENTICATED,
  permission_denied: Status.PERMISSION_DENIED,
  unavailable: Status.UNAVAILABLE,
  cancelled: Status.CANCELLED,
  deadline_exceeded: Status.DEADLINE_EXCEEDED,
  internal: Status.INTERNAL,
} as const satisfies Record<ErrorCode, Status>;

/** The status object to end a call with for `err` (anything; untyped errors become `internal`). */
export function toStatus(err: unknown): Partial<StatusObject> & { code: Status; details: string } {
  const coded = toJobworkerError(err);
  const metadata = new Metadata();
  metadata.set(ERROR_CODE_KEY, coded.code);
  return { code: GRPC_STATUS[coded.code], details: coded.message, metadata };
}

/**
 * The JobworkerError a client received, decoded from a grpc-js ServiceError:
 * the code from the trailing metadata when present and known, else derived
 * from the gRPC status (transport failures carry no metadata).
 */
export function fromServiceError(err: {
  code?: number;
  details?: string;
  message?: string;
  metadata?: Metadata;
}): JobworkerError {
  const sent = err.metadata?.get(ERROR_CODE_KEY)[0];
  const message = err.details ?? err.message ?? 'unknown error';
  if (isErrorCode(sent)) return new JobworkerError(sent, message, { cause: err });
  return new JobworkerError(codeOfStatus(err.code ?? Status.UNKNOWN), message, { cause: err });
}

/** Best ErrorCode for a bare gRPC status (no jobworker metadata): the inverse of the table, first code wins. */
const CODE_OF_STATUS = new Map<number, ErrorCode>(
  (Object.entries(GRPC_STATUS) as [ErrorCode, Status][])
    .reverse()
    .map(([code, status]) => [status, code]),
);

function codeOfStatus(code: number): ErrorCode {
  return CODE_OF_STATUS.get(code) ?? ErrorCode.Internal;
}
