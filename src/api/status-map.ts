/**
 * The server's edge of the error table (src/errors.ts): a call ends with its
 * error's gRPC status, its message as the details, and its code in the
 * trailing metadata key ERROR_CODE_KEY, so that clients can branch on the
 * code without parsing messages (decodeErrorCode reads it back).
 */
import { Metadata, type status as Status, type StatusObject } from '@grpc/grpc-js';
import { ERROR_CODE_KEY, errorRow, toJobworkerError } from '../errors.js';

/** The status object to end a call with for `err` (anything; untyped errors become `internal`). */
export function toStatus(err: unknown): Partial<StatusObject> & { code: Status; details: string } {
  const coded = toJobworkerError(err);
  const metadata = new Metadata();
  metadata.set(ERROR_CODE_KEY, coded.code);
  // The table numbers statuses as grpc-js does (src/errors.test.ts checks each against its name).
  // eslint-disable-next-line @typescript-eslint/no-unsafe-enum-assignment
  const code = errorRow(coded.code).grpcStatus as Status;
  return { code, details: coded.message, metadata };
}
