/**
 * Attach end to end: real jobs on a real mTLS server on port 0. Stdin
 * byte-exact through cat, flow control against a job that never reads,
 * terminals (size, resize, interrupt), the one-writer rule, authorization,
 * detach and re-attach, a client that stops reading and then fails the call,
 * and the audit line.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { status as Status, type ServiceError } from '@grpc/grpc-js';
import { ERROR_CODE_KEY } from '../../src/errors.js';
import {
  JobState,
  type JobServiceClient,
  type StartJobRequest,
} from '../../src/gen/jobworker/v1/job_service.js';
import { MAX_STDIN_CHUNK_BYTES } from '../../src/stdin-chunk.js';
import { openAttach } from '../helpers/attach.js';
import { connect, startTestServer, unary, type TestServer } from '../helpers/server.js';

const ATTACH = '/jobworker.v1.JobService/Attach';

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

async function start(
  command: string[],
  extra: Partial<StartJobRequest> = { stdin: true },
): Promise<string> {
  const res = await unary(alice, 'startJob', {
    command,
    env: [],
    workingDir: '',
    hostNetwork: false,
    ...extra,
  });
  return res.job?.id ?? assert.fail('StartJob answered without a job');
}

const onTerminal = (rows: number, cols: number): Partial<StartJobRequest> => ({
  terminal: { rows, cols, term: 'xterm-256color' },
});

/** The code, message and jobworker code of a failed call. */
function failure(error: ServiceError | null): [number, string, unknown] {
  assert.ok(error !== null, 'the call succeeded');
  return [error.code, error.details, error.metadata.get(ERROR_CODE_KEY)[0]];
}

describe('Attach', { timeout: 120_000 }, () => {
  test('10 MiB of random stdin comes back through cat byte-exact', async () => {
    const id = await start(['cat']);
    const a = openAttach(alice, { jobId: id, write: true });
    const attached = await a.attached;
    assert.equal(attached.writer, true);
    assert.equal(attached.job?.stdin, true);
    assert.equal(attached.job.tty, false);
    const data = randomBytes(10 * 1024 * 1024);
    for (let at = 0; at < data.length; at += MAX_STDIN_CHUNK_BYTES) {
      await a.stdin(data.subarray(at, at + MAX_STDIN_CHUNK_BYTES));
    }
    await a.send({ event: { $case: 'end', value: {} } });
    const end = await a.ended;
    assert.equal(end.error, null);
    assert.equal(end.finished?.exitCode, 0);
    const sha = createHash('sha256').update(data).digest();
    assert.deepEqual(createHash('sha256').update(a.output()).digest(), sha);
    assert.deepEqual(Buffer.from(end.finished.stdout?.sha256 ?? []), sha);
    const line = (await server.auditLines()).findLast((l) => l['method'] === ATTACH);
    assert.equal(line?.['jobId'], id);
    assert.equal(line['outcome'], 'ok');
    const detail = line['attachment'] as Record<string, unknown>;
    assert.equal(detail['writer'], true);
    assert.equal(detail['stdinBytes'], data.length);
    assert.equal(typeof detail['durationMs'], 'number');
    // Stdin is never stored: the audit line holds counts only.
    assert.deepEqual(Object.keys(detail).sort(), ['durationMs', 'stdinBytes', 'writer']);
  });

  test('a stdin chunk above the bound is refused naming the field', async () => {
    const id = await start(['cat']);
    const a = openAttach(alice, { jobId: id, write: true });
    await a.attached;
    await a.stdin(Buffer.alloc(MAX_STDIN_CHUNK_BYTES + 1));
    const [code, details] = failure((await a.ended).error);
    assert.equal(code, Status.INVALID_ARGUMENT);
    assert.match(details, /^stdin of 65537 bytes exceeds the maximum of 65536 per message$/);
    await unary(alice, 'stopJob', { jobId: id });
  });

  test('stdin to a job that never reads makes the client wait; server memory stays bounded', async (t) => {
    const id = await start(['sleep', '600']);
    const a = openAttach(alice, { jobId: id, write: true });
    await a.attached;
    const attempted = 256 * 1024 * 1024;
    const chunk = Buffer.alloc(MAX_STDIN_CHUNK_BYTES, 0x61);
    global.gc?.();
    const rssBefore = process.memoryUsage().rss;
    let accepted = 0;
    const writer = (async () => {
      while (accepted < attempted) {
        await a.stdin(chunk);
        accepted += chunk.length;
      }
    })();
    writer.catch(() => undefined);
    // Not a timed assertion: the bound below holds however long the writer is given.
    await sleep(3000);
    const rssGrowth = process.memoryUsage().rss - rssBefore;
    t.diagnostic(`accepted ${accepted} of ${attempted} bytes; RSS grew by ${rssGrowth} bytes`);
    assert.ok(
      accepted < 32 * 1024 * 1024,
      `the client got ${accepted} bytes accepted of ${attempted}`,
    );
    assert.ok(rssGrowth < 96 * 1024 * 1024, `RSS grew by ${rssGrowth} bytes`);
    await unary(alice, 'stopJob', { jobId: id });
    const end = await a.ended;
    assert.equal(end.error, null);
    assert.equal(end.finished?.state, JobState.JOB_STATE_FINISHED);
  });

  test('a terminal job sees a terminal of the sent size, and a resize changes it', async () => {
    const id = await start(
      ['sh', '-c', 'tty; stty size; read line; stty size'],
      onTerminal(33, 101),
    );
    const a = openAttach(alice, { jobId: id, write: true });
    assert.equal((await a.attached).job?.tty, true);
    await a.waitFor('33 101');
    assert.match(a.output().toString(), /^\/dev\/pts\/\d+\r\n/);
    await a.send({ event: { $case: 'resize', value: { rows: 40, cols: 120 } } });
    await a.stdin('\n');
    await a.waitFor('40 120');
    const end = await a.ended;
    assert.equal(end.finished?.exitCode, 0);
    // One merged stream: all of it is stdout.
    assert.equal(end.finished.stderr?.storedBytes, 0);
  });

  test('a resize out of range is refused naming the field', async () => {
    const id = await start(['sh', '-c', 'read line'], onTerminal(24, 80));
    const a = openAttach(alice, { jobId: id, write: true });
    await a.attached;
    await a.send({ event: { $case: 'resize', value: { rows: 0, cols: 80 } } });
    const [code, details] = failure((await a.ended).error);
    assert.equal(code, Status.INVALID_ARGUMENT);
    assert.match(details, /^resize\.rows 0 is not between 1 and \d+$/);
    await unary(alice, 'stopJob', { jobId: id });
  });

  test('a client that stops reading, then sends a refused message, leaves no follower behind', async () => {
    const id = await start(['sh', '-c', 'head -c 67108864 /dev/zero; exec sleep 600'], {});
    const a = openAttach(alice, { jobId: id });
    await a.attached;
    // The client stops reading: the server's sends stall once the windows and
    // socket buffers (a few MiB) are full, which takes milliseconds of 64 MiB.
    a.call.pause();
    await sleep(500);
    await a.send({ event: { $case: 'resize', value: { rows: 0, cols: 80 } } });
    // The call ends (its status waits behind the unread output); the output
    // pump, stalled in a send, must end with it and close its follower.
    await server.whenIdle();
    await nextTurn();
    assert.deepEqual(server.jobs.followerStats(id), { open: 0, waiting: 0 });
    a.call.cancel();
    await a.ended;
    await unary(alice, 'stopJob', { jobId: id });
  });

  test('interrupt reaches the foreground process group: sleep ends, sh survives', async () => {
    const id = await start(['sh'], onTerminal(24, 80));
    const a = openAttach(alice, { jobId: id, write: true });
    await a.attached;
    // The shell's arithmetic keeps the awaited words out of the echo of what was typed. The
    // word is printed by the child itself, once the shell has made it the foreground group
    // (then it becomes the sleep): an interrupt sent earlier would reach sh alone, and the
    // sleep would run its 600 s.
    await a.stdin("sh -c 'echo sleeping-$((1+1)); exec sleep 600'\n");
    await a.waitFor('sleeping-2');
    await a.send({ event: { $case: 'interrupt', value: {} } });
    // An interrupted list is abandoned by the shell: ask it for the status on a new line.
    await a.stdin('echo status-$?-alive-$((2+3)); exit 7\n');
    await a.waitFor('status-130-alive-5');
    const end = await a.ended;
    assert.equal(end.finished?.exitCode, 7);
  });

  test('a second writer is refused; readers see the same output', async () => {
    const id = await start(['cat']);
    const writer = openAttach(alice, { jobId: id, write: true });
    await writer.attached;
    const second = openAttach(alice, { jobId: id, write: true });
    const [code, details, errorCode] = failure((await second.ended).error);
    assert.equal(code, Status.FAILED_PRECONDITION);
    assert.equal(errorCode, 'stdin_busy');
    assert.match(details, /writer/);
    const reader = openAttach(alice, { jobId: id });
    const writingReader = openAttach(alice, { jobId: id });
    for (const r of [reader, writingReader]) assert.equal((await r.attached).writer, false);
    await writer.stdin('same for all\n');
    await Promise.all([writer, reader, writingReader].map((r) => r.waitFor('same for all\n')));
    // A reader may not write.
    await writingReader.stdin('x');
    assert.equal(failure((await writingReader.ended).error)[0], Status.INVALID_ARGUMENT);
    await writer.send({ event: { $case: 'end', value: {} } });
    for (const r of [writer, reader]) {
      const end = await r.ended;
      assert.equal(end.error, null);
      assert.equal(end.finished?.exitCode, 0);
    }
  });

  test("bob attaching to alice's job looks exactly like a missing job", async () => {
    const id = await start(['sleep', '600']);
    const theirs = openAttach(bob, { jobId: id, write: true });
    const missing = openAttach(bob, { jobId: 'aaaaaaaaaaaaaaaaaaaaaaaaaa', write: true });
    const [got, none] = await Promise.all([theirs.ended, missing.ended]);
    const [code, details, errorCode] = failure(got.error);
    assert.equal(code, Status.NOT_FOUND);
    assert.equal(errorCode, 'not_found');
    assert.deepEqual(
      [code, details.replace(id, 'ID'), errorCode],
      failure(none.error).map((v) =>
        typeof v === 'string' ? v.replace('aaaaaaaaaaaaaaaaaaaaaaaaaa', 'ID') : v,
      ),
    );
    assert.equal(theirs.output().length, 0);
    const line = (await server.auditLines()).findLast(
      (l) => l['method'] === ATTACH && l['jobId'] === id && l['identity'] === 'bob',
    );
    assert.equal(line?.['outcome'], 'denied');
    await unary(alice, 'stopJob', { jobId: id });
  });

  test('detach leaves the job running; a later attach takes the seat and sees it', async () => {
    const id = await start(['sh'], onTerminal(24, 80));
    const first = openAttach(alice, { jobId: id, write: true });
    await first.attached;
    await first.stdin('echo first-$((4+4))\n');
    await first.waitFor('first-8');
    first.call.cancel();
    assert.equal(failure((await first.ended).error)[0], Status.CANCELLED);
    const job = await unary(alice, 'getJob', { jobId: id });
    assert.equal(job.job?.state, JobState.JOB_STATE_RUNNING);
    // The seat was given back at the cancel: the next writer gets it.
    const later = openAttach(alice, { jobId: id, write: true, tailLines: 0 });
    assert.equal((await later.attached).writer, true);
    await later.stdin('echo later-$((5+5)); exit 4\n');
    await later.waitFor('later-10');
    const end = await later.ended;
    assert.equal(end.finished?.exitCode, 4);
    assert.ok(!later.output().toString().includes('first-8'), 'tail_lines 0 sent old output');
  });

  test('the first message must be start', async () => {
    const call = alice.attach();
    call.write({ event: { $case: 'stdin', value: Buffer.from('x') } });
    const error = await new Promise<ServiceError>((resolve) => call.on('error', resolve));
    call.on('data', () => undefined);
    assert.equal(error.code, Status.INVALID_ARGUMENT);
    assert.match(error.details, /^start is required as the first message of Attach$/);
  });
});
