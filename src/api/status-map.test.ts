import assert from 'node:assert/strict';
import { test } from 'node:test';
import { status as Status } from '@grpc/grpc-js';
import { decodeErrorCode, ERROR_CODE_KEY, errorRows, JobworkerError } from '../errors.js';
import { MAX_DETAILS_CHARS, toStatus } from './status-map.js';

test("every error ends a call with its row's gRPC status, its message and its code in the trailers", () => {
  for (const row of errorRows) {
    const status = toStatus(new JobworkerError(row.code, `a ${row.code} happened`));
    assert.equal(status.code, row.grpcStatus, row.code);
    assert.equal(status.details, `a ${row.code} happened`);
    const trailer = status.metadata?.get(ERROR_CODE_KEY);
    assert.deepEqual(trailer, [row.code]);
    // And back, as a client decodes it.
    assert.equal(decodeErrorCode(status.code, trailer[0]), row.code);
  }
});

test('an untyped error ends the call as internal', () => {
  const status = toStatus(new Error('boom'));
  assert.equal(status.code, Status.INTERNAL);
  assert.equal(status.details, 'unexpected error: boom');
  assert.deepEqual(status.metadata?.get(ERROR_CODE_KEY), ['internal']);
});

test('a long message is cut short: a trailer over 64 KiB could not be sent', () => {
  const status = toStatus(
    new JobworkerError('start_failed', `command not found: ${'€'.repeat(90_000)}`),
  );
  assert.equal(status.details.length, MAX_DETAILS_CHARS);
  assert.ok(status.details.endsWith('...'));
  assert.ok(encodeURI(status.details).length < 64 * 1024);
});
