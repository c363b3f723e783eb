/**
 * Bad input for every request field: INVALID_ARGUMENT with a message naming
 * the field, the jobworker code in the trailers, and a server that keeps serving.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { status as Status, type ServiceError } from '@grpc/grpc-js';
import { ERROR_CODE_KEY } from '../../src/errors.js';
import type { JobServiceClient, StartJobRequest } from '../../src/gen/jobworker/v1/job_service.js';
import { connect, readStream, startTestServer, unary, type TestServer } from '../helpers/server.js';

const GOOD_ID = 'aaaaaaaaaaaaaaaaaaaaaaaaaa';
const start = (over: Partial<StartJobRequest>): StartJobRequest => ({
  command: ['true'],
  env: [],
  workingDir: '',
  hostNetwork: false,
  ...over,
});
const limits = (over: Partial<NonNullable<StartJobRequest['limits']>>) => ({
  cpuMillis: 0,
  memoryBytes: 0,
  ioReadBps: 0,
  ioWriteBps: 0,
  pidsMax: 0,
  ...over,
});

describe('request validation', { timeout: 120_000 }, () => {
  let server: TestServer;
  let admin: JobServiceClient;
  before(async () => {
    server = await startTestServer();
    admin = await connect(server.address, server.certsDir, 'admin');
  });
  after(async () => {
    admin.close();
    await server.close();
  });

  /** [case, call, pattern the message must match (names the field)] */
  const cases: [string, (c: JobServiceClient) => Promise<unknown>, RegExp][] = [
    [
      'StartJob command empty',
      (c) => unary(c, 'startJob', start({ command: [] })),
      /^command is required/,
    ],
    [
      'StartJob command[0] empty',
      (c) => unary(c, 'startJob', start({ command: [''] })),
      /^command\[0\]/,
    ],
    [
      'StartJob command NUL',
      (c) => unary(c, 'startJob', start({ command: ['echo', 'a\0b'] })),
      /^command\[1\]/,
    ],
    [
      'StartJob too many args',
      (c) => unary(c, 'startJob', start({ command: Array<string>(5000).fill('x') })),
      /^command has 5000 entries/,
    ],
    [
      'StartJob env not NAME=VALUE',
      (c) => unary(c, 'startJob', start({ env: ['NOEQUALS'] })),
      /^env\[0\]/,
    ],
    ['StartJob env bad name', (c) => unary(c, 'startJob', start({ env: ['1X=y'] })), /^env\[0\]/],
    [
      'StartJob env duplicate',
      (c) => unary(c, 'startJob', start({ env: ['A=1', 'A=2'] })),
      /^env\[1\]/,
    ],
    [
      'StartJob working_dir relative',
      (c) => unary(c, 'startJob', start({ workingDir: 'tmp' })),
      /^working_dir/,
    ],
    [
      'StartJob working_dir NUL',
      (c) => unary(c, 'startJob', start({ workingDir: '/t\0' })),
      /^working_dir/,
    ],
    [
      'StartJob working_dir not normalized',
      (c) => unary(c, 'startJob', start({ workingDir: '/tmp/../etc' })),
      /^working_dir "\/tmp\/\.\.\/etc" is not normalized/,
    ],
    // execve's E2BIG for one string (MAX_ARG_STRLEN counts the NUL) is the client's error.
    [
      'StartJob one argument of 131072 bytes',
      (c) => unary(c, 'startJob', start({ command: ['x'.repeat(131_072)] })),
      /^command\[0\] is 131072 bytes; one entry may have at most 131071 /,
    ],
    // A name this long made the start hang: its message did not fit in the status trailer.
    [
      'StartJob command[0] of 90000 bytes',
      (c) => unary(c, 'startJob', start({ command: ['x'.repeat(90_000)] }), { deadlineMs: 10_000 }),
      /^command\[0\] is 90000 bytes; a command name may have at most 4095 /,
    ],
    [
      'StartJob one env entry of 131072 bytes',
      (c) => unary(c, 'startJob', start({ env: [`A=${'x'.repeat(131_070)}`] })),
      /^env\[0\] is 131072 bytes; one entry may have at most 131071 /,
    ],
    // Limits outside the server's [min, max] are refused, not clamped (proto: ResourceLimits).
    [
      'StartJob limits.cpu_millis above the maximum',
      (c) => unary(c, 'startJob', start({ limits: limits({ cpuMillis: 100_000 }) })),
      /^limits\.cpu_millis: 100000 is above the maximum \d+$/,
    ],
    [
      'StartJob limits.memory_bytes above the maximum',
      (c) => unary(c, 'startJob', start({ limits: limits({ memoryBytes: 2 ** 40 }) })),
      /^limits\.memory_bytes: 1099511627776 is above the maximum \d+$/,
    ],
    [
      'StartJob limits.memory_bytes below the minimum',
      (c) => unary(c, 'startJob', start({ limits: limits({ memoryBytes: 256 }) })),
      /^limits\.memory_bytes: 256 is below the minimum 4194304$/,
    ],
    [
      'StartJob limits.pids_max below what init and the job need',
      (c) => unary(c, 'startJob', start({ limits: limits({ pidsMax: 2 }) })),
      /^limits\.pids_max: 2 is below the minimum 3$/,
    ],
    // uint64 and int64 fields take at most 2^53-1: beyond, refused naming the field and value.
    [
      'StartJob limits.memory_bytes above 2^53',
      (c) => unary(c, 'startJob', start({ limits: limits({ memoryBytes: 2 ** 60 }) })),
      /^limits\.memory_bytes: 1152921504606846976 is beyond 9007199254740991 \(2\^53-1\)/,
    ],
    [
      'StartJob limits.io_write_bps above 2^53',
      (c) => unary(c, 'startJob', start({ limits: limits({ ioWriteBps: 2 ** 54 }) })),
      /^limits\.io_write_bps: 18014398509481984 is beyond /,
    ],
    [
      'StreamOutput stdout_offset above 2^53',
      (c) => streamError(c, { jobId: GOOD_ID, stdoutOffset: 2 ** 60 }),
      /^stdout_offset: 1152921504606846976 is beyond /,
    ],
    [
      'StopJob grace_period seconds above 2^53',
      (c) => unary(c, 'stopJob', { jobId: GOOD_ID, gracePeriod: { seconds: 2 ** 60, nanos: 0 } }),
      /^grace_period\.seconds: 1152921504606846976 is beyond /,
    ],
    ['StopJob job_id empty', (c) => unary(c, 'stopJob', { jobId: '' }), /^job_id is required/],
    [
      'StopJob job_id malformed',
      (c) => unary(c, 'stopJob', { jobId: '../../etc/passwd' }),
      /^job_id "\.\.\/\.\.\/etc\/passwd"/,
    ],
    [
      'StopJob grace_period > 5 min',
      (c) => unary(c, 'stopJob', { jobId: GOOD_ID, gracePeriod: { seconds: 301, nanos: 0 } }),
      /^grace_period/,
    ],
    [
      'StopJob grace_period negative',
      (c) => unary(c, 'stopJob', { jobId: GOOD_ID, gracePeriod: { seconds: -1, nanos: 0 } }),
      /^grace_period/,
    ],
    [
      'StopJob grace_period nanos',
      (c) => unary(c, 'stopJob', { jobId: GOOD_ID, gracePeriod: { seconds: 0, nanos: 2e9 } }),
      /^grace_period/,
    ],
    [
      'GetJob job_id upper case',
      (c) => unary(c, 'getJob', { jobId: GOOD_ID.toUpperCase() }),
      /^job_id/,
    ],
    [
      'GetJob job_id too long',
      (c) => unary(c, 'getJob', { jobId: 'a'.repeat(10_000) }),
      /^job_id "a{64}\.\.\."/,
    ],
    [
      'ListJobs state unknown',
      (c) => unary(c, 'listJobs', { state: 9 as 0, owner: '', pageSize: 0, pageToken: '' }),
      /^state 9/,
    ],
    [
      'ListJobs owner malformed',
      (c) => unary(c, 'listJobs', { state: 0, owner: 'Bad Name', pageSize: 0, pageToken: '' }),
      /^owner/,
    ],
    ['StreamOutput job_id malformed', (c) => streamError(c, { jobId: 'X' }), /^job_id/],
    [
      'StreamOutput stream unknown',
      (c) => streamError(c, { jobId: GOOD_ID, stream: 5 as 0 }),
      /^stream 5/,
    ],
    [
      'StreamOutput tail_lines above the maximum',
      (c) => streamError(c, { jobId: GOOD_ID, tailLines: 100_001 }),
      /^tail_lines 100001 exceeds the maximum of 100000$/,
    ],
    [
      'StreamOutput since beyond a Timestamp',
      (c) => streamError(c, { jobId: GOOD_ID, since: new Date(Date.UTC(10_000, 0, 1)) }),
      /^since \+010000-01-01T00:00:00\.000Z is outside the years 1 to 9999$/,
    ],
  ];

  async function streamError(
    c: JobServiceClient,
    req: Parameters<typeof readStream>[1],
  ): Promise<unknown> {
    const r = await readStream(c, req);
    if (r.error !== null) throw r.error;
    return r.messages;
  }

  for (const [name, call, pattern] of cases) {
    test(name, async () => {
      const err = await call(admin).then(
        () => assert.fail('accepted'),
        (e: unknown) => e as ServiceError,
      );
      assert.equal(err.code, Status.INVALID_ARGUMENT, `${err.code} ${err.details}`);
      assert.match(err.details, pattern);
      assert.deepEqual(err.metadata.get(ERROR_CODE_KEY), ['invalid_argument']);
    });
  }

  test('nothing was started by the bad requests, and the server still serves', async () => {
    const res = await unary(admin, 'listJobs', { state: 0, owner: '', pageSize: 0, pageToken: '' });
    assert.deepEqual(res.jobs, []);
  });

  test('a command that does not exist is FAILED_PRECONDITION start_failed', async () => {
    const err = await unary(admin, 'startJob', start({ command: ['/no/such/command'] })).then(
      () => assert.fail('accepted'),
      (e: unknown) => e as ServiceError,
    );
    assert.equal(err.code, Status.FAILED_PRECONDITION);
    assert.deepEqual(err.metadata.get(ERROR_CODE_KEY), ['start_failed']);
  });
});

describe('internal errors', { timeout: 60_000 }, () => {
  test('the client gets an id, the server log the details under it; no server path is sent', async () => {
    const server = await startTestServer();
    const alice = await connect(server.address, server.certsDir, 'alice');
    try {
      // A file where the jobs directory belongs: creating a job's directory fails on the host.
      await writeFile(join(server.stateDir, 'jobs'), '');
      const err = await unary(alice, 'startJob', start({})).then(
        () => assert.fail('accepted'),
        (e: unknown) => e as ServiceError,
      );
      assert.equal(err.code, Status.INTERNAL, err.details);
      assert.deepEqual(err.metadata.get(ERROR_CODE_KEY), ['internal']);
      const match = /^internal error ([0-9a-f]{16}); the server log has its details/.exec(
        err.details,
      );
      assert.ok(match, err.details);
      assert.ok(!err.details.includes(server.stateDir), err.details);
      const logged = server.logLines().find((l) => l['errorId'] === match[1]);
      assert.ok(logged, 'no log line with the id');
      assert.match(
        JSON.stringify(logged['err']),
        new RegExp(server.stateDir.replaceAll('/', '\\/')),
      );
    } finally {
      alice.close();
      await server.close();
    }
  });
});

describe('calls refused before the seam', { timeout: 60_000 }, () => {
  test('an unknown method and a message over the size limit get audit lines', async () => {
    const server = await startTestServer();
    const alice = await connect(server.address, server.certsDir, 'alice');
    try {
      const unknown = await new Promise<ServiceError>((resolve) => {
        alice.makeUnaryRequest(
          '/jobworker.v1.JobService/NoSuchMethod',
          (b: Buffer) => b,
          (b: Buffer) => b,
          Buffer.alloc(0),
          (err) => {
            resolve(err as ServiceError);
          },
        );
      });
      assert.equal(unknown.code, Status.UNIMPLEMENTED);
      const big = await unary(
        alice,
        'startJob',
        start({ env: [`A=${'x'.repeat(1_100_000)}`] }),
      ).then(
        () => assert.fail('accepted'),
        (e: unknown) => e as ServiceError,
      );
      assert.equal(big.code, Status.RESOURCE_EXHAUSTED, big.details);
      await server.whenIdle();
      const lines = await server.auditLines();
      const nope = lines.find((l) => l['method'] === '/jobworker.v1.JobService/NoSuchMethod');
      assert.ok(nope, JSON.stringify(lines));
      assert.equal(nope['identity'], 'alice');
      assert.match(String(nope['peer']), /^127\.0\.0\.1:\d+$/);
      const start_ = lines.find((l) => l['method'] === '/jobworker.v1.JobService/StartJob');
      assert.ok(start_, JSON.stringify(lines));
      assert.equal(start_['identity'], 'alice');
      assert.match(String(start_['reason']), /size limit/);
    } finally {
      alice.close();
      await server.close();
    }
  });
});
