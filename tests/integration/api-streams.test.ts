/**
 * StreamOutput and cancellation: a client that vanishes mid-stream and 1,000
 * cancelled streams leave no call, follower, file handle or listener behind
 * on the server.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import type { ClientReadableStream } from '@grpc/grpc-js';
import type {
  JobServiceClient,
  StreamOutputResponse,
} from '../../src/gen/jobworker/v1/job_service.js';
import { connect, startTestServer, unary, type TestServer } from '../helpers/server.js';

/** Counts of the process's active resources by type (FileHandle, Timeout, TCPSocketWrap, ...). */
function resources(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of process.getActiveResourcesInfo()) counts.set(r, (counts.get(r) ?? 0) + 1);
  return counts;
}

/** Opens a followed stream, waits for its first message, then cancels it; resolves when the client saw the end. */
async function openAndCancel(client: JobServiceClient, jobId: string): Promise<void> {
  const call: ClientReadableStream<StreamOutputResponse> = client.streamOutput({
    jobId,
    stream: 0,
    stdoutOffset: 0,
    stderrOffset: 0,
    follow: true,
  });
  // A cancelled call emits 'error' (CANCELLED) on the client; keep it from throwing.
  const ended = new Promise<void>((resolve) => {
    call.on('error', () => {
      resolve();
    });
    call.on('end', () => {
      resolve();
    });
  });
  await once(call, 'data');
  call.cancel();
  await ended;
}

describe('StreamOutput cancellation and leaks', { timeout: 120_000 }, () => {
  let server: TestServer;
  let clients: JobServiceClient[];

  before(async () => {
    server = await startTestServer();
    clients = await Promise.all(
      Array.from({ length: 10 }, () => connect(server.address, server.certsDir, 'alice')),
    );
  });
  after(async () => {
    for (const c of clients) c.close();
    await server.close();
  });

  test('a client that disconnects mid-stream leaves nothing behind', async () => {
    const client = clients[0] as JobServiceClient;
    // 64 MiB of output, then the job keeps running: the stream is busy when the client goes.
    const started = await unary(client, 'startJob', {
      command: ['sh', '-c', 'head -c 67108864 /dev/zero; exec sleep 600'],
      env: [],
      workingDir: '',
      hostNetwork: false,
    });
    const id = started.job?.id ?? assert.fail('no job');
    const call = client.streamOutput({
      jobId: id,
      stream: 0,
      stdoutOffset: 0,
      stderrOffset: 0,
      follow: true,
    });
    const ended = new Promise<void>((resolve) => {
      call.on('error', () => {
        resolve();
      });
    });
    let messages = 0;
    call.on('data', () => {
      // The client vanishes after 3 messages, while the server has plenty more to send.
      if (++messages === 3) call.cancel();
    });
    await ended;
    await server.whenIdle();
    assert.equal(server.activeCalls(), 0);
    assert.deepEqual(server.jobs.followerStats(id), { open: 0, waiting: 0 });
    await unary(client, 'stopJob', { jobId: id, gracePeriod: { seconds: 1, nanos: 0 } });
  });

  test('a client process killed mid-stream (connection reset) leaves nothing behind', async () => {
    const client = clients[0] as JobServiceClient;
    const started = await unary(client, 'startJob', {
      command: ['sh', '-c', 'head -c 67108864 /dev/zero; exec sleep 600'],
      env: [],
      workingDir: '',
      hostNetwork: false,
    });
    const id = started.job?.id ?? assert.fail('no job');
    // A separate process follows the stream and says so after its first message; then it is SIGKILLed.
    const helpers = new URL('../helpers/server.js', import.meta.url).href;
    const code = `
      const { connect } = await import(${JSON.stringify(helpers)});
      const c = await connect(${JSON.stringify(server.address)}, ${JSON.stringify(server.certsDir)}, 'alice');
      const call = c.streamOutput({ jobId: ${JSON.stringify(id)}, stream: 0, stdoutOffset: 0, stderrOffset: 0, follow: true });
      call.once('data', () => { call.pause(); process.stdout.write('streaming\\n'); });
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await once(child.stdout as NodeJS.ReadableStream, 'data');
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
    await server.whenIdle();
    assert.equal(server.activeCalls(), 0);
    assert.deepEqual(server.jobs.followerStats(id), { open: 0, waiting: 0 });
    const audit = await server.auditLines();
    assert.ok(
      audit.some((l) => l['jobId'] === id && l['outcome'] === 'cancelled'),
      'the vanished stream is audited as cancelled',
    );
    await unary(client, 'stopJob', { jobId: id, gracePeriod: { seconds: 1, nanos: 0 } });
  });

  test('1,000 cancelled followed streams leave no call, follower or file handle behind', async () => {
    const first = clients[0] as JobServiceClient;
    const started = await unary(first, 'startJob', {
      command: ['sh', '-c', 'echo ready; exec sleep 600'],
      env: [],
      workingDir: '',
      hostNetwork: false,
    });
    const id = started.job?.id ?? assert.fail('no job');
    // Warm-up: one stream through every client, so lazily created state exists before the baseline.
    await Promise.all(clients.map((c) => openAndCancel(c, id)));
    await server.whenIdle();
    const before = resources();

    const TOTAL = 1000;
    const CONCURRENCY = 50;
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async (_, worker) => {
        const client = clients[worker % clients.length] as JobServiceClient;
        while (next < TOTAL) {
          next++;
          await openAndCancel(client, id);
        }
      }),
    );
    await server.whenIdle();
    assert.equal(server.activeCalls(), 0);
    assert.deepEqual(server.jobs.followerStats(id), { open: 0, waiting: 0 });
    const afterCounts = resources();
    for (const kind of ['FileHandle', 'FSReqPromise', 'FSReqCallback']) {
      assert.equal(afterCounts.get(kind) ?? 0, before.get(kind) ?? 0, `${kind} count`);
    }
    // Timers: grpc-js keeps a few per connection; 1,000 leaked waits would show as hundreds.
    assert.ok(
      (afterCounts.get('Timeout') ?? 0) <= (before.get('Timeout') ?? 0) + 5,
      `Timeout count ${JSON.stringify([...afterCounts])}`,
    );
    const cancelled = (await server.auditLines()).filter(
      (l) =>
        l['jobId'] === id &&
        l['method'] === '/jobworker.v1.JobService/StreamOutput' &&
        l['outcome'] === 'cancelled',
    );
    assert.equal(cancelled.length, TOTAL + clients.length);
    // The job was not disturbed, and the server still answers.
    assert.equal((await unary(first, 'getJob', { jobId: id })).job?.state, 1);
    await unary(first, 'stopJob', { jobId: id, gracePeriod: { seconds: 1, nanos: 0 } });
  });
});
