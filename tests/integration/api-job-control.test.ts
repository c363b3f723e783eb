/**
 * Job control over real mTLS: a start's timeout (TIMED_OUT), SignalJob to the
 * main process or to every process, WaitJob woken by the job's end, and
 * DeleteJob (refused while running unless forced; followers get NOT_FOUND;
 * another user's job answers like a missing one). Bad input names its field.
 */
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { status as Status, type ServiceError } from '@grpc/grpc-js';
import { ERROR_CODE_KEY } from '../../src/errors.js';
import { EndReason, type JobServiceClient } from '../../src/gen/jobworker/v1/job_service.js';
import {
  connect,
  readStream,
  serverIsolation,
  startTestServer,
  unary,
  type TestServer,
} from '../helpers/server.js';

const NODE = process.execPath;
const MISSING = 'aaaaaaaaaaaaaaaaaaaaaaaaaa';

/** A main process that reports SIGHUP, with a child (its own session with `detached`) that does too. */
function hupScript(detached: boolean): string {
  const child = `process.on("SIGHUP",()=>process.stdout.write("child\\n")); process.stdout.write("ready\\n"); setInterval(()=>{},1000)`;
  return `const c=require("child_process").spawn(process.execPath,["-e",${JSON.stringify(child)}],{stdio:["ignore","pipe","inherit"],detached:${detached}});
c.stdout.on("data",d=>{process.stdout.write(d); if(String(d).includes("ready")) process.stdout.write("both ready\\n")});
process.on("SIGHUP",()=>{process.stdout.write("main\\n"); setTimeout(()=>process.exit(0),500)});
setInterval(()=>{},1000);`;
}

async function rejection(call: Promise<unknown>): Promise<ServiceError> {
  return (await call.then(
    () => assert.fail('the call succeeded'),
    (err: unknown) => err,
  )) as ServiceError;
}

describe('job control RPCs', { timeout: 120_000 }, () => {
  let server: TestServer;
  let alice: JobServiceClient;
  let bob: JobServiceClient;

  before(async () => {
    server = await startTestServer();
    alice = await connect(server.address, server.certsDir, 'alice');
    bob = await connect(server.address, server.certsDir, 'bob');
  });
  after(async () => {
    alice.close();
    bob.close();
    await server.close();
  });

  const start = async (command: string[], timeoutMs?: number): Promise<string> => {
    const timeout =
      timeoutMs === undefined
        ? {}
        : { timeout: { seconds: Math.floor(timeoutMs / 1000), nanos: (timeoutMs % 1000) * 1e6 } };
    const { job } = await unary(alice, 'startJob', {
      command,
      env: [],
      workingDir: '',
      hostNetwork: false,
      ...timeout,
    });
    assert.ok(job);
    return job.id;
  };

  /** Output of the job so far, through the library, once it contains `text`. */
  const outputUntil = async (id: string, text: string): Promise<void> => {
    let seen = '';
    for await (const event of server.jobs.output(id, { follow: true })) {
      if (event.type === 'chunk') seen += event.data.toString();
      if (seen.includes(text)) return;
    }
    assert.fail(`job ${id} ended without writing ${text}: ${seen}`);
  };

  const storedOutput = async (id: string): Promise<string> => {
    const { messages, error } = await readStream(alice, { jobId: id });
    assert.equal(error, null);
    return messages
      .map((m) => (m.event?.$case === 'chunk' ? Buffer.from(m.event.value.data).toString() : ''))
      .join('');
  };

  test('a timeout stops the job with the grace sequence and ends it TIMED_OUT', async () => {
    const id = await start(['sleep', '30'], 300);
    const { job } = await unary(alice, 'waitJob', { jobId: id });
    assert.ok(job?.startedAt && job.finishedAt);
    assert.equal(job.endReason, EndReason.END_REASON_TIMED_OUT);
    assert.equal(job.signal, 15, 'ended by the SIGTERM of the stop');
    assert.equal(job.stoppedBy, 'jobworkerd timeout');
    assert.deepEqual(job.timeout, { seconds: 0, nanos: 300_000_000 });
    const ranMs = job.finishedAt.getTime() - job.startedAt.getTime();
    assert.ok(ranMs >= 300 && ranMs < 10_000, `ran ${ranMs} ms`);
  });

  test('a job that ends before its timeout ends as it would without one', async () => {
    const id = await start(['true'], 60_000);
    const { job } = await unary(alice, 'waitJob', { jobId: id });
    assert.equal(job?.endReason, EndReason.END_REASON_EXITED);
    assert.deepEqual(job.timeout, { seconds: 60, nanos: 0 });
  });

  test('a negative or too long timeout is refused naming the field', async () => {
    for (const [timeout, pattern] of [
      [{ seconds: -1, nanos: 0 }, /^timeout -1s 0ns is negative/],
      [{ seconds: 8 * 24 * 3600, nanos: 0 }, /^timeout 691200s exceeds the maximum of 604800s$/],
    ] as const) {
      const err = await rejection(
        unary(alice, 'startJob', {
          command: ['true'],
          env: [],
          workingDir: '',
          hostNetwork: false,
          timeout,
        }),
      );
      assert.equal(err.code, Status.INVALID_ARGUMENT);
      assert.match(err.details, pattern);
    }
  });

  test('SignalJob sends to the main process only, or with all to every process', async () => {
    for (const all of [false, true]) {
      // A child in a session of its own is reached only by "every process" (the real isolation).
      const id = await start([NODE, '-e', hupScript(all && serverIsolation.real)]);
      await outputUntil(id, 'both ready');
      const { job } = await unary(alice, 'signalJob', { jobId: id, signal: 'hup', all });
      assert.equal(job?.id, id);
      const done = await unary(alice, 'waitJob', { jobId: id });
      assert.equal(done.job?.exitCode, 0);
      const text = await storedOutput(id);
      assert.match(text, /^main$/m);
      if (all) assert.match(text, /^child$/m, text);
      else assert.doesNotMatch(text, /^child$/m, text);
    }
  });

  test('SignalJob refuses a signal it may not send, naming it', async () => {
    const id = await start(['sleep', '30']);
    try {
      for (const signal of ['SIGFOO', 'STOP', 'KILL', '9', 'SEGV', '']) {
        const err = await rejection(unary(alice, 'signalJob', { jobId: id, signal, all: false }));
        assert.equal(err.code, Status.INVALID_ARGUMENT, signal);
        assert.equal(
          err.details,
          `signal ${JSON.stringify(signal)} is not one SignalJob may send (SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2)`,
        );
      }
      const numbered = await unary(alice, 'signalJob', { jobId: id, signal: '15', all: false });
      assert.equal(numbered.job?.id, id);
      const { job } = await unary(alice, 'waitJob', { jobId: id });
      assert.equal(job?.endReason, EndReason.END_REASON_SIGNALED);
      assert.equal(job.signal, 15);
      const err = await rejection(
        unary(alice, 'signalJob', { jobId: id, signal: 'HUP', all: false }),
      );
      assert.equal(err.code, Status.FAILED_PRECONDITION);
      assert.deepEqual(err.metadata.get(ERROR_CODE_KEY), ['already_finished']);
    } finally {
      await server.jobs.stop(id, 'test').catch(() => undefined);
    }
  });

  test('WaitJob answers when the job ends, at once when it has, and ends at its deadline', async () => {
    const id = await start(['sh', '-c', 'sleep 0.3; exit 3']);
    const waited = unary(alice, 'waitJob', { jobId: id });
    assert.equal((await waited).job?.exitCode, 3);
    assert.equal((await unary(alice, 'waitJob', { jobId: id })).job?.exitCode, 3);
    const long = await start(['sleep', '30']);
    const err = await rejection(unary(alice, 'waitJob', { jobId: long }, { deadlineMs: 200 }));
    assert.equal(err.code, Status.DEADLINE_EXCEEDED);
    await server.whenIdle();
    assert.equal(server.activeCalls(), 0);
    await server.jobs.stop(long, 'test');
  });

  test("another user's job answers every new call exactly like a missing one", async () => {
    const id = await start(['sleep', '30']);
    try {
      for (const [method, request] of [
        ['signalJob', { signal: 'HUP', all: false }],
        ['waitJob', {}],
        ['deleteJob', { force: true }],
      ] as const) {
        const hidden = await rejection(unary(bob, method, { jobId: id, ...request }));
        const missing = await rejection(unary(bob, method, { jobId: MISSING, ...request }));
        assert.equal(hidden.code, Status.NOT_FOUND, method);
        assert.equal(hidden.details, `job ${id} not found`);
        assert.equal(missing.details, `job ${MISSING} not found`);
      }
      assert.equal(server.jobs.get(id).state, 'running', 'bob stopped nothing');
      const audit = await server.auditLines();
      const denied = audit.filter((l) => l['jobId'] === id && l['identity'] === 'bob');
      assert.deepEqual(
        denied.map((l) => [l['method'], l['outcome']]),
        ['SignalJob', 'WaitJob', 'DeleteJob'].map((m) => [
          `/jobworker.v1.JobService/${m}`,
          'denied',
        ]),
      );
    } finally {
      await server.jobs.stop(id, 'test');
    }
  });

  test('DeleteJob removes a finished job at once; a running one only with force', async () => {
    const done = await start(['true']);
    await unary(alice, 'waitJob', { jobId: done });
    await unary(alice, 'deleteJob', { jobId: done, force: false });
    const gone = await rejection(unary(alice, 'getJob', { jobId: done }));
    assert.equal(gone.code, Status.NOT_FOUND);
    await assert.rejects(stat(join(server.stateDir, 'jobs', done)), { code: 'ENOENT' });

    const running = await start(['sleep', '30']);
    const refused = await rejection(unary(alice, 'deleteJob', { jobId: running, force: false }));
    assert.equal(refused.code, Status.FAILED_PRECONDITION);
    assert.deepEqual(refused.metadata.get(ERROR_CODE_KEY), ['job_running']);
    assert.equal(server.jobs.get(running).state, 'running');

    // A forced removal stops the job first: a waiter sees that end, then the job is gone.
    const waiter = unary(alice, 'waitJob', { jobId: running });
    await unary(alice, 'deleteJob', { jobId: running, force: true });
    const seen = (await waiter).job;
    assert.equal(seen?.endReason, EndReason.END_REASON_STOPPED);
    assert.equal(seen.stoppedBy, 'alice');
    assert.equal(
      (await rejection(unary(alice, 'getJob', { jobId: running }))).code,
      Status.NOT_FOUND,
    );
    await assert.rejects(stat(join(server.stateDir, 'jobs', running)), { code: 'ENOENT' });
    const audit = await server.auditLines();
    assert.ok(
      audit.some(
        (l) =>
          l['method'] === '/jobworker.v1.JobService/DeleteJob' &&
          l['jobId'] === running &&
          l['identity'] === 'alice' &&
          l['outcome'] === 'ok',
      ),
    );
  });
});
