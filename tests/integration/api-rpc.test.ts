/**
 * jobworkerd over real mTLS: each RPC's happy path, the health service, the
 * audit log, and a deadline that expires.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { status as Status, type ServiceError } from '@grpc/grpc-js';
import { clientCredentials } from '../../src/api/index.js';
import { ERROR_CODE_KEY } from '../../src/errors.js';
import {
  HealthClient,
  HealthCheckResponse_ServingStatus,
} from '../../src/gen/grpc/health/v1/health.js';
import {
  EndReason,
  JobState,
  OutputStream,
  type JobServiceClient,
} from '../../src/gen/jobworker/v1/job_service.js';
import {
  connect,
  rawIdentity,
  readStream,
  startTestServer,
  unary,
  type TestServer,
} from '../helpers/server.js';

const NODE = process.execPath;

test(
  'shutdown: health watchers see NOT_SERVING, then the call ends UNAVAILABLE',
  { timeout: 60_000 },
  async () => {
    const server = await startTestServer();
    const health = new HealthClient(
      server.address,
      clientCredentials(await rawIdentity(server.certsDir, 'admin')),
    );
    try {
      const watch = health.watch({ service: 'jobworker.v1.JobService' });
      const statuses: number[] = [];
      const ended = new Promise<ServiceError>((resolve) => {
        watch.on('error', resolve);
      });
      watch.on('data', (m: { status: number }) => statuses.push(m.status));
      await once(watch, 'data');
      const closed = server.close();
      const err = await ended;
      await closed;
      assert.deepEqual(statuses, [
        HealthCheckResponse_ServingStatus.SERVING,
        HealthCheckResponse_ServingStatus.NOT_SERVING,
      ]);
      assert.equal(err.code, Status.UNAVAILABLE);
      assert.equal(err.details, 'server shutting down');
    } finally {
      health.close();
    }
  },
);

describe('jobworkerd RPCs', { timeout: 120_000 }, () => {
  let server: TestServer;
  let alice: JobServiceClient;

  before(async () => {
    server = await startTestServer();
    alice = await connect(server.address, server.certsDir, 'alice');
  });
  after(async () => {
    alice.close();
    await server.close();
  });

  test('StartJob, GetJob, StreamOutput (stored and followed), ListJobs', async () => {
    const started = await unary(alice, 'startJob', {
      command: [NODE, '-e', 'process.stdout.write("hello\\n"); process.stderr.write("oops\\n")'],
      env: ['GREETING=hi'],
      workingDir: '/tmp',
      hostNetwork: false,
    });
    const job = started.job;
    assert.ok(job);
    assert.match(job.id, /^[a-z2-7]{26}$/);
    assert.equal(job.owner, 'alice');
    assert.equal(job.workingDir, '/tmp');
    assert.equal(job.command[0], NODE);

    const followed = await readStream(alice, { jobId: job.id, follow: true });
    assert.equal(followed.error, null);
    const chunks = followed.messages.flatMap((m) =>
      m.event?.$case === 'chunk' ? [m.event.value] : [],
    );
    const out = Buffer.concat(
      chunks.filter((c) => c.stream === OutputStream.OUTPUT_STREAM_STDOUT).map((c) => c.data),
    );
    const err = Buffer.concat(
      chunks.filter((c) => c.stream === OutputStream.OUTPUT_STREAM_STDERR).map((c) => c.data),
    );
    assert.equal(out.toString(), 'hello\n');
    assert.equal(err.toString(), 'oops\n');
    const last = followed.messages.at(-1)?.event;
    assert.equal(last?.$case, 'finished');
    assert.equal(last.value.state, JobState.JOB_STATE_FINISHED);
    assert.equal(last.value.endReason, EndReason.END_REASON_EXITED);
    assert.equal(last.value.exitCode, 0);

    const got = await unary(alice, 'getJob', { jobId: job.id });
    assert.equal(got.job?.state, JobState.JOB_STATE_FINISHED);
    assert.equal(got.job.stdout?.storedBytes, 6);
    assert.equal(got.job.stdout.sha256.length, 32);

    // Stored output only, from an offset, one stream.
    const stored = await readStream(alice, {
      jobId: job.id,
      stream: OutputStream.OUTPUT_STREAM_STDOUT,
      stdoutOffset: 2,
    });
    assert.equal(stored.error, null);
    const storedData = stored.messages.flatMap((m) =>
      m.event?.$case === 'chunk' ? [m.event.value.data] : [],
    );
    assert.equal(Buffer.concat(storedData).toString(), 'llo\n');

    const listed = await unary(alice, 'listJobs', {
      state: JobState.JOB_STATE_FINISHED,
      owner: '',
      pageSize: 0,
      pageToken: '',
    });
    assert.ok(listed.jobs.some((j) => j.id === job.id));
  });

  test('StopJob stops a running job within its grace period', async () => {
    const started = await unary(alice, 'startJob', {
      command: ['sleep', '600'],
      env: [],
      workingDir: '',
      hostNetwork: false,
    });
    const id = started.job?.id ?? assert.fail('no job');
    const stopped = await unary(alice, 'stopJob', {
      jobId: id,
      gracePeriod: { seconds: 5, nanos: 0 },
    });
    assert.equal(stopped.job?.state, JobState.JOB_STATE_FINISHED);
    assert.equal(stopped.job.endReason, EndReason.END_REASON_STOPPED);
    assert.equal(stopped.job.stoppedBy, 'alice');
    const again = await unary(alice, 'stopJob', { jobId: id }).then(
      () => assert.fail('second stop succeeded'),
      (e: unknown) => e as ServiceError,
    );
    assert.equal(again.code, Status.FAILED_PRECONDITION);
    assert.deepEqual(again.metadata.get(ERROR_CODE_KEY), ['already_finished']);
  });

  test('a StreamOutput follow with a short deadline ends with DEADLINE_EXCEEDED', async () => {
    const started = await unary(alice, 'startJob', {
      command: ['sleep', '600'],
      env: [],
      workingDir: '',
      hostNetwork: false,
    });
    const id = started.job?.id ?? assert.fail('no job');
    const result = await readStream(alice, { jobId: id, follow: true }, { deadlineMs: 300 });
    assert.equal(result.error?.code, Status.DEADLINE_EXCEEDED);
    await unary(alice, 'stopJob', { jobId: id, gracePeriod: { seconds: 1, nanos: 0 } });
    const audit = await server.auditLines();
    assert.ok(
      audit.some(
        (l) =>
          l['method'] === '/jobworker.v1.JobService/StreamOutput' &&
          l['code'] === 'deadline_exceeded',
      ),
      'the expired stream is audited as deadline_exceeded',
    );
  });

  test('health Check answers SERVING over mTLS', async () => {
    const health = new HealthClient(
      server.address,
      clientCredentials(await rawIdentity(server.certsDir, 'bob')),
    );
    try {
      const res = await new Promise<{ status: number }>((resolve, reject) => {
        health.check({ service: '' }, (e, r) => {
          if (e === null) resolve(r);
          else reject(e);
        });
      });
      assert.equal(res.status, HealthCheckResponse_ServingStatus.SERVING);
    } finally {
      health.close();
    }
  });

  test('health Watch streams the status; an unknown service is NOT_FOUND / SERVICE_UNKNOWN', async () => {
    const health = new HealthClient(
      server.address,
      clientCredentials(await rawIdentity(server.certsDir, 'alice')),
    );
    try {
      for (const [service, expected] of [
        ['', HealthCheckResponse_ServingStatus.SERVING],
        ['no.such.Service', HealthCheckResponse_ServingStatus.SERVICE_UNKNOWN],
      ] as const) {
        const watch = health.watch({ service });
        watch.on('error', () => undefined);
        const [first] = (await once(watch, 'data')) as [{ status: number }];
        assert.equal(first.status, expected);
        watch.cancel();
      }
      const err = await new Promise<ServiceError | null>((resolve) => {
        health.check({ service: 'no.such.Service' }, (e) => {
          resolve(e);
        });
      });
      assert.equal(err?.code, Status.NOT_FOUND);
    } finally {
      health.close();
    }
  });

  test('every call is audited with identity, role, method, job id, outcome and code', async () => {
    const lines = await server.auditLines();
    const start = lines.find((l) => l['method'] === '/jobworker.v1.JobService/StartJob');
    assert.ok(start);
    assert.equal(start['identity'], 'alice');
    assert.equal(start['role'], 'user');
    assert.equal(start['outcome'], 'ok');
    assert.equal(typeof start['time'], 'string');
    assert.match(String(start['jobId']), /^[a-z2-7]{26}$/, 'StartJob records the new job id');
    const get = lines.find((l) => l['method'] === '/jobworker.v1.JobService/GetJob');
    assert.match(String(get?.['jobId']), /^[a-z2-7]{26}$/);
    assert.ok(
      lines.some((l) => l['method'] === '/grpc.health.v1.Health/Check' && l['identity'] === 'bob'),
    );
  });
});

test(
  'ListJobs pages end early rather than exceed a client receive limit of 4 MiB',
  { timeout: 120_000 },
  async () => {
    const server = await startTestServer();
    const alice = await connect(server.address, server.certsDir, 'alice');
    const admin = await connect(server.address, server.certsDir, 'admin');
    try {
      // 40 jobs of about 128 KiB of argv each: about 5 MiB of jobs in all.
      const started = new Set<string>();
      for (let i = 0; i < 40; i++) {
        const res = await unary(alice, 'startJob', {
          command: ['true', 'x'.repeat(131_000)],
          env: [],
          workingDir: '',
          hostNetwork: false,
        });
        started.add(res.job?.id ?? '');
      }
      const seen: string[] = [];
      let pageToken = '';
      let pages = 0;
      do {
        const res = await unary(admin, 'listJobs', { state: 0, owner: '', pageSize: 0, pageToken });
        assert.ok(res.jobs.length > 0);
        seen.push(...res.jobs.map((j) => j.id));
        pageToken = res.nextPageToken;
        pages++;
      } while (pageToken !== '');
      assert.equal(pages, 2);
      assert.equal(seen.length, 40);
      assert.deepEqual(new Set(seen), started);
    } finally {
      alice.close();
      admin.close();
      await server.close();
    }
  },
);
