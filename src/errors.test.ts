import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { status as Status } from '@grpc/grpc-js';
import { docsTableRows } from '../tests/helpers/docs.js';
import {
  decodeErrorCode,
  ErrorCode,
  errorRow,
  errorRows,
  isErrorCode,
  JobworkerError,
  toJobworkerError,
} from './errors.js';

test('the table has one row per code, each with a gRPC status grpc-js knows', () => {
  assert.deepEqual(
    errorRows.map((row) => row.code),
    Object.values(ErrorCode),
  );
  assert.equal(new Set(Object.values(ErrorCode)).size, errorRows.length, 'codes are distinct');
  for (const row of errorRows) {
    assert.ok(isErrorCode(row.code), row.code);
    assert.equal(errorRow(row.code), row);
    assert.equal(typeof Status[row.grpcStatus], 'string', `${row.code}: gRPC status`);
    assert.ok(Number.isInteger(row.exitCode) && row.exitCode > 0 && row.exitCode < 256, row.code);
    assert.doesNotMatch(row.meaning, /\n/, `${row.code}: one line`);
  }
  for (const value of ['', 'bogus', 'InvalidArgument', 'toString', 3, undefined])
    assert.equal(isErrorCode(value), false, String(value));
});

test('decodeErrorCode: status and trailer round-trip for every row', () => {
  for (const row of errorRows) {
    assert.equal(decodeErrorCode(row.grpcStatus, row.code), row.code, row.code);
    // Without the trailer (a transport failure), the first row with that status.
    const first = errorRows.find((other) => other.grpcStatus === row.grpcStatus);
    assert.equal(decodeErrorCode(row.grpcStatus, undefined), first?.code, row.code);
    assert.equal(decodeErrorCode(row.grpcStatus, 'bogus'), first?.code, row.code);
  }
  assert.equal(decodeErrorCode(Status.FAILED_PRECONDITION, undefined), ErrorCode.AlreadyFinished);
  assert.equal(decodeErrorCode(Status.UNKNOWN, undefined), ErrorCode.Internal);
  assert.equal(decodeErrorCode(Status.UNIMPLEMENTED, undefined), ErrorCode.Internal);
});

test('docs/errors.md lists every code with its gRPC status and jobctl exit code', async () => {
  const rows = await docsTableRows('errors.md');
  for (const { code, grpcStatus, exitCode } of errorRows) {
    const row = rows.find((cells) => cells[1] === `\`${code}\``);
    assert.ok(row, `docs/errors.md has a row for ${code}`);
    assert.equal(row[2], `\`${Status[grpcStatus]}\` (${grpcStatus})`, `${code}: gRPC status`);
    assert.equal(row[3], String(exitCode), `${code}: jobctl exit code`);
  }
});

test('instanceof JobworkerError holds across module copies, and subclasses keep their own check', async () => {
  // A second instance of this module, as a duplicated dependency would load.
  const copy = (await import(
    `${new URL('./errors.js', import.meta.url).href}?copy`
  )) as typeof import('./errors.js');
  assert.notEqual(copy.JobworkerError, JobworkerError);
  const foreign = new copy.JobworkerError(ErrorCode.NotFound, 'job x not found');
  assert.ok(foreign instanceof JobworkerError);
  assert.ok(new JobworkerError(ErrorCode.NotFound, 'x') instanceof copy.JobworkerError);
  assert.equal(toJobworkerError(foreign), foreign, 'passes through unwrapped');

  const named = (code: unknown): Error =>
    Object.assign(new Error('x'), { name: 'JobworkerError', code });
  assert.ok(named('not_found') instanceof JobworkerError);
  assert.ok(!(named('bogus') instanceof JobworkerError), 'unknown code');
  assert.ok(!(Object.assign(new Error('x'), { code: 'not_found' }) instanceof JobworkerError));
  assert.ok(
    !({ name: 'JobworkerError', code: 'not_found' } instanceof JobworkerError),
    'not an Error',
  );

  class Sub extends JobworkerError {}
  assert.ok(new Sub(ErrorCode.Internal, 'x') instanceof JobworkerError);
  assert.ok(new Sub(ErrorCode.Internal, 'x') instanceof Sub);
  assert.ok(!(new JobworkerError(ErrorCode.Internal, 'x') instanceof Sub));
  assert.ok(!(named('internal') instanceof Sub));
});

/** The files under node_modules/@grpc/grpc-js that importing `modules` (in order) loads. */
async function grpcFilesLoadedBy(...modules: string[]): Promise<string[]> {
  const script = `
    import { createRequire } from 'node:module';
    for (const url of ${JSON.stringify(modules.map((m) => new URL(m, import.meta.url).href))}) await import(url);
    const cache = Object.keys(createRequire(process.cwd() + '/').cache);
    process.stdout.write(JSON.stringify(cache.filter((file) => file.includes('@grpc/grpc-js'))));`;
  const { stdout } = await promisify(execFile)(process.execPath, [
    '--input-type=module',
    '--eval',
    script,
  ]);
  return JSON.parse(stdout) as string[];
}

test('the decoder and the exit codes load no grpc-js (jobctl --help stays fast)', async () => {
  assert.deepEqual(await grpcFilesLoadedBy('./errors.js', './cli/exit-codes.js'), []);
  // The probe sees grpc-js when it is loaded, even transitively.
  assert.notDeepEqual(await grpcFilesLoadedBy('./api/status-map.js'), []);
});
