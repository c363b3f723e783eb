import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { status as Status } from '@grpc/grpc-js';
import { ErrorCode, JobworkerError } from '../errors.js';
import { ERROR_CODE_KEY, fromServiceError, GRPC_STATUS, toStatus } from './status-map.js';

const CODES = Object.values(ErrorCode);

/** jobctl's exit codes as decided for the project (src/cli/exit-codes.ts; not imported: layers). */
const EXIT: Record<ErrorCode, number> = {
  invalid_argument: 65,
  not_found: 66,
  already_finished: 67,
  start_failed: 127,
  resource_exhausted: 75,
  unauthenticated: 77,
  permission_denied: 77,
  unavailable: 69,
  cancelled: 130,
  deadline_exceeded: 124,
  internal: 70,
};

test('every error code maps to one gRPC status and travels in the trailers', () => {
  for (const code of CODES) {
    const status = toStatus(new JobworkerError(code, `a ${code} happened`));
    assert.equal(status.code, GRPC_STATUS[code]);
    assert.equal(status.details, `a ${code} happened`);
    assert.deepEqual(status.metadata?.get(ERROR_CODE_KEY), [code]);
    // And back, as a client decodes it.
    const decoded = fromServiceError({
      code: status.code,
      details: status.details,
      metadata: status.metadata,
    });
    assert.equal(decoded.code, code);
  }
});

test('an untyped error becomes internal, and a bare transport status a best-guess code', () => {
  assert.equal(toStatus(new Error('boom')).code, Status.INTERNAL);
  assert.equal(
    fromServiceError({ code: Status.UNAVAILABLE, details: 'connection refused' }).code,
    'unavailable',
  );
  assert.equal(fromServiceError({ code: Status.UNKNOWN }).code, 'internal');
});

test('docs/errors.md lists every code with its gRPC status and jobctl exit code', async () => {
  const docs = await readFile(
    fileURLToPath(new URL('../../../docs/errors.md', import.meta.url)),
    'utf8',
  );
  const statusName = new Map(Object.entries(Status).map(([name, value]) => [value, name]));
  // Table rows as trimmed cells (Prettier pads them).
  const rows = docs
    .split('\n')
    .filter((line) => line.startsWith('|'))
    .map((line) => line.split('|').map((cell) => cell.trim()));
  for (const code of CODES) {
    const row = rows.find((cells) => cells[1] === `\`${code}\``);
    assert.ok(row, `docs/errors.md has a row for ${code}`);
    assert.equal(
      row[2],
      `\`${String(statusName.get(GRPC_STATUS[code]))}\` (${GRPC_STATUS[code]})`,
      `${code}: gRPC status`,
    );
    assert.equal(row[3], String(EXIT[code]), `${code}: jobctl exit code`);
  }
});
