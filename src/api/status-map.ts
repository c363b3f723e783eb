/**
 * The server's edge of the error table (src/errors.ts): a call ends with its
 * error's gRPC status, its message as the details, and its code in the
 * trailing metadata key ERROR_CODE_KEY, so that clients can branch on the
 * code without parsing messages (decodeErrorCode reads it back).
 */
import { Metadata, type status as Status, type StatusObject } from '@grpc/grpc-js';
import { ERROR_CODE_KEY, errorRow, toJobworkerError } from '../errors.js';

/**
 * Longest status message sent, in characters. The message travels in the
 * grpc-message trailer, URI-encoded (up to 9 bytes a character), and Node's
 * HTTP/2 cannot send a header block over 64 KiB: the call would never end.
 */
export const MAX_DETAILS_CHARS = 4096;

/** The status object to end a call with for `err` (anything; untyped errors become `internal`). */
export function toStatus(err: unknown): Partial<StatusObject> & { code: Status; details: string } {
  const coded = toJobworkerError(err);
  const metadata = new Metadata();
  metadata.set(ERROR_CODE_KEY, coded.code);
  // The table numbers statuses as grpc-js does (src/errors.test.ts checks each against its name).
  // eslint-disable-next-line @typescript-eslint/no-unsafe-enum-assignment
  const code = errorRow(coded.code).grpcStatus as Status;
  const details =
    coded.message.length > MAX_DETAILS_CHARS
      ? `${coded.message.slice(0, MAX_DETAILS_CHARS - 3)}...`
      : coded.message;
  return { code, details, metadata };
}
