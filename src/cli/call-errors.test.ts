import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCode } from '../errors.js';
import { ERROR_CODE_KEY } from '../api/index.js';
import { errorCodeKey, fromCallError, type CallFailure } from './call-errors.js';
import { status } from '@grpc/grpc-js';

const context = { server: 'localhost:50051', certFile: '/certs/alice.crt' };

function failure(code: status, details: string, sent?: string): CallFailure {
  return {
    code,
    details,
    metadata: {
      get: (key: string) => (key === 'jobworker-error-code' && sent !== undefined ? [sent] : []),
    },
  };
}

test("the server's code in the trailing metadata wins over the gRPC status", () => {
  const err = fromCallError(
    failure(status.FAILED_PRECONDITION, 'job x has already finished', 'already_finished'),
    context,
  );
  assert.equal(err.code, ErrorCode.AlreadyFinished);
  assert.equal(err.message, 'job x has already finished');
  const denied = fromCallError(
    failure(status.PERMISSION_DENIED, 'only admins may use the host network', 'permission_denied'),
    context,
  );
  assert.equal(denied.message, 'permission denied: only admins may use the host network');
  // An unknown value is ignored and the status decides.
  assert.equal(
    fromCallError(failure(status.NOT_FOUND, 'nope', 'bogus'), context).code,
    ErrorCode.NotFound,
  );
});

test('without the metadata the gRPC status decides', () => {
  const cases: [status, ErrorCode][] = [
    [status.CANCELLED, ErrorCode.Cancelled],
    [status.INVALID_ARGUMENT, ErrorCode.InvalidArgument],
    [status.DEADLINE_EXCEEDED, ErrorCode.DeadlineExceeded],
    [status.NOT_FOUND, ErrorCode.NotFound],
    [status.PERMISSION_DENIED, ErrorCode.PermissionDenied],
    [status.RESOURCE_EXHAUSTED, ErrorCode.ResourceExhausted],
    [status.FAILED_PRECONDITION, ErrorCode.AlreadyFinished],
    [status.INTERNAL, ErrorCode.Internal],
    [status.UNAVAILABLE, ErrorCode.Unavailable],
    [status.UNAUTHENTICATED, ErrorCode.Unauthenticated],
    [status.UNKNOWN, ErrorCode.Internal],
  ];
  for (const [grpcStatus, code] of cases)
    assert.equal(fromCallError(failure(grpcStatus, 'x'), context).code, code, String(grpcStatus));
});

test('unavailable: refused connection, refused handshake and unverifiable server each have their message', () => {
  const cases: [string, RegExp][] = [
    [
      'No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:50051. Resolution note: ',
      /^cannot reach jobworkerd at localhost:50051: connection refused; is it running\?$/,
    ],
    [
      'No connection established. Last error: Failed to connect (2026-11-28T13:08:21.158Z). Resolution note: ',
      /^jobworkerd at localhost:50051 refused the TLS handshake: it does not accept the certificate \/certs\/alice\.crt/,
    ],
    [
      'No connection established. Last error: Error: read ECONNRESET. Resolution note: ',
      /refused the TLS handshake/,
    ],
    [
      'No connection established. Last error: Error: self-signed certificate in certificate chain. Resolution note: ',
      /^cannot verify the certificate of jobworkerd at localhost:50051: self-signed certificate in certificate chain; check --ca/,
    ],
    [
      "No connection established. Last error: Error [ERR_TLS_CERT_ALTNAME_INVALID]: Hostname/IP does not match certificate's altnames: Host: example. is not in the cert's altnames: DNS:localhost. Resolution note: ",
      /^cannot verify the certificate .*--tls-server-name/,
    ],
    [
      'Name resolution failed for target dns:nosuch.invalid:50051',
      /^cannot resolve the host of localhost:50051/,
    ],
    ['something new', /^cannot reach jobworkerd at localhost:50051: something new$/],
  ];
  for (const [details, message] of cases) {
    const err = fromCallError(failure(status.UNAVAILABLE, details), context);
    assert.equal(err.code, ErrorCode.Unavailable);
    assert.match(err.message, message);
  }
});

test('the metadata key is the one the server sets', () => {
  assert.equal(errorCodeKey, ERROR_CODE_KEY);
});
