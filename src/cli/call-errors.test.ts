import assert from 'node:assert/strict';
import { test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { decodeErrorCode, ERROR_CODE_KEY, ErrorCode, errorRows } from '../errors.js';
import { fromCallError, type CallFailure } from './call-errors.js';

const context = { server: 'localhost:50051', certFile: '/certs/alice.crt' };

function failure(code: number, details: string, sent?: string): CallFailure {
  return {
    code,
    details,
    metadata: {
      get: (key: string) => (key === ERROR_CODE_KEY && sent !== undefined ? [sent] : []),
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

test('the code is decoded as the error table says, with or without the trailer', () => {
  for (const row of errorRows) {
    const sent = fromCallError(failure(row.grpcStatus, 'x', row.code), context);
    assert.equal(sent.code, row.code, row.code);
    const bare = fromCallError(failure(row.grpcStatus, 'x'), context);
    assert.equal(bare.code, decodeErrorCode(row.grpcStatus, undefined), row.code);
    assert.match(
      bare.message,
      /jobworkerd at localhost:50051/,
      'a transport failure names the server',
    );
  }
  assert.equal(fromCallError(failure(status.UNKNOWN, 'x'), context).code, ErrorCode.Internal);
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
