/**
 * Turns a failed gRPC call into a JobworkerError with a message a user can
 * act on. The code is decoded as the error table says (decodeErrorCode,
 * src/errors.ts); what is jobctl's own is the message: without the server's
 * code in the trailers (the call never reached jobworkerd) grpc-js's details
 * text tells a refused connection, a refused handshake and an unverifiable
 * server apart.
 */
import type { ServiceError } from '@grpc/grpc-js';
import {
  decodeErrorCode,
  ERROR_CODE_KEY,
  ErrorCode,
  isErrorCode,
  JobworkerError,
} from '../errors.js';

/** What the message needs to name: where we dialed and with which certificate. */
export interface DialTarget {
  readonly server: string;
  readonly certFile: string;
}

/** The subset of a grpc-js ServiceError this module reads. */
export interface CallFailure {
  /** The gRPC status, as numbered in the error table. */
  readonly code: number;
  readonly details: string;
  readonly metadata?: Pick<ServiceError['metadata'], 'get'> | undefined;
}

/** Maps a failed call to a JobworkerError; `err` is kept as the cause. */
export function fromCallError(err: CallFailure, context: DialTarget): JobworkerError {
  const sent = err.metadata?.get(ERROR_CODE_KEY)[0];
  const code = decodeErrorCode(err.code, sent);
  const details = err.details || 'no details';
  // With the server's code, jobworkerd answered: its message already names the bad value.
  const message = isErrorCode(sent)
    ? serverMessage(code, details)
    : transportMessage(code, details, context);
  return new JobworkerError(code, message, { cause: err });
}

function serverMessage(code: ErrorCode, details: string): string {
  switch (code) {
    case ErrorCode.Unavailable:
      return `jobworkerd is unavailable: ${details}; retry later`;
    case ErrorCode.PermissionDenied:
      return `permission denied: ${details}`;
    case ErrorCode.Unauthenticated:
      return `not authenticated: ${details}`;
    default:
      return details;
  }
}

function transportMessage(
  code: ErrorCode,
  details: string,
  { server, certFile }: DialTarget,
): string {
  switch (code) {
    case ErrorCode.Unavailable:
      return unavailableMessage(details, server, certFile);
    case ErrorCode.DeadlineExceeded:
      return `jobworkerd at ${server} did not answer in time (${details})`;
    case ErrorCode.Cancelled:
      return `call to jobworkerd at ${server} cancelled`;
    case ErrorCode.Unauthenticated:
    case ErrorCode.PermissionDenied:
      return `jobworkerd at ${server} refused the call: ${details}`;
    default:
      return `call to jobworkerd at ${server} failed: ${details}`;
  }
}

function unavailableMessage(details: string, server: string, certFile: string): string {
  if (/ECONNREFUSED/.test(details)) {
    return `cannot reach jobworkerd at ${server}: connection refused; is it running?`;
  }
  if (/Name resolution failed|ENOTFOUND|EAI_AGAIN/.test(details)) {
    return `cannot resolve the host of ${server}; check --server`;
  }
  if (/ETIMEDOUT|EHOSTUNREACH|ENETUNREACH/.test(details)) {
    return `cannot reach jobworkerd at ${server}: ${lastError(details)}; check --server and the network`;
  }
  // Node's TLS verification of the server's certificate (wrong CA, name).
  if (
    /certificate|self[- ]signed|altnames|Hostname\/IP|UNABLE_TO_VERIFY|ERR_TLS_CERT/i.test(details)
  ) {
    return (
      `cannot verify the certificate of jobworkerd at ${server}: ${lastError(details)}; ` +
      `check --ca (and --tls-server-name when dialing an address the certificate does not name)`
    );
  }
  // With TLS 1.3 the client believes its handshake complete before the server
  // checks the client certificate; a refusal then shows only as a connection
  // closed at once ("Failed to connect", a reset, or a TLS alert).
  if (
    /Failed to connect|ECONNRESET|Connection dropped|socket hang up|alert|EPIPE|closed/i.test(
      details,
    )
  ) {
    return (
      `jobworkerd at ${server} refused the TLS handshake: it does not accept the certificate ${certFile} ` +
      `(not signed by its CA, or not for client authentication?); check --certs/--user or --cert/--key`
    );
  }
  return `cannot reach jobworkerd at ${server}: ${lastError(details)}`;
}

// grpc-js wraps the cause: "No connection established. Last error: Error: X. Resolution note: ".
function lastError(details: string): string {
  const match = /Last error: (?:Error: )?(.*?)(?:\. Resolution note:.*)?$/s.exec(details);
  return (match?.[1] ?? details).trim();
}
