/**
 * StreamOutput from where the caller wants: the last lines, output since a
 * time, the time each chunk was stored, and a tail that then follows.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type {
  JobServiceClient,
  OutputChunk,
  StreamOutputResponse,
} from '../../src/gen/jobworker/v1/job_service.js';
import { connect, readStream, startTestServer, unary, type TestServer } from '../helpers/server.js';

/** The chunks of a stream's messages. */
const chunks = (messages: readonly StreamOutputResponse[]): OutputChunk[] =>
  messages.flatMap((m) => (m.event?.$case === 'chunk' ? [m.event.value] : []));
const text = (messages: readonly StreamOutputResponse[]): string =>
  chunks(messages)
    .map((c) => Buffer.from(c.data).toString())
    .join('');

describe('StreamOutput tail_lines, since and stored_at', { timeout: 120_000 }, () => {
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

  /** Starts `script` under sh and returns the job id. */
  async function start(script: string): Promise<string> {
    const r = await unary(alice, 'startJob', {
      command: ['sh', '-c', script],
      env: [],
      workingDir: '',
      hostNetwork: false,
    });
    return r.job?.id ?? assert.fail('no job');
  }

  test('the last lines of both streams, each chunk dated when it was stored', async () => {
    const begun = Date.now();
    const id = await start('seq 1 5000; echo err >&2; echo last');
    await readStream(alice, { jobId: id, follow: true });
    const all = await readStream(alice, { jobId: id });
    const lines = text(all.messages).split('\n');
    // The two pipes' order is the order the server read them: `err` may come anywhere after 5000 or so.
    const tail = await readStream(alice, { jobId: id, tailLines: 3 });
    assert.equal(tail.error, null);
    assert.equal(text(tail.messages), lines.slice(-4).join('\n'));
    assert.equal(lines.length, 5003);
    for (const c of chunks(all.messages)) {
      const at = c.storedAt?.getTime() ?? assert.fail('chunk without stored_at');
      assert.ok(at >= begun - 1000 && at <= Date.now(), `stored_at ${String(c.storedAt)}`);
    }
    const stdout = await readStream(alice, { jobId: id, tailLines: 2, stream: 1 });
    assert.equal(text(stdout.messages), '5000\nlast\n');
    const stderr = await readStream(alice, { jobId: id, tailLines: 2, stream: 2 });
    assert.equal(text(stderr.messages), 'err\n');
    const none = await readStream(alice, { jobId: id, tailLines: 0 });
    assert.deepEqual(chunks(none.messages), []);
  });

  test('since sends what was stored at or after the time; a later time, nothing', async () => {
    const id = await start('echo early; sleep 0.3; echo late');
    await readStream(alice, { jobId: id, follow: true });
    const all = chunks((await readStream(alice, { jobId: id })).messages);
    const late = all.find((c) => Buffer.from(c.data).toString() === 'late\n');
    const since = late?.storedAt ?? assert.fail(`no dated "late" chunk: ${JSON.stringify(all)}`);
    const got = await readStream(alice, { jobId: id, since });
    assert.equal(text(got.messages), 'late\n');
    const future = await readStream(alice, { jobId: id, since: new Date(Date.now() + 60_000) });
    assert.deepEqual(chunks(future.messages), []);
    const both = await readStream(alice, { jobId: id, since: new Date(0), tailLines: 1 });
    assert.equal(text(both.messages), 'late\n');
  });

  test('a tail with follow sends the last lines, then live output, then the end', async () => {
    // The tail is taken while the job sleeps: "c" comes live.
    const id = await start('echo a; echo b; sleep 2; echo c');
    while (!text((await readStream(alice, { jobId: id })).messages).endsWith('b\n')) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const got = await readStream(alice, { jobId: id, tailLines: 1, follow: true });
    assert.equal(got.error, null);
    assert.equal(text(got.messages), 'b\nc\n');
    assert.equal(got.messages.at(-1)?.event?.$case, 'finished');
  });
});
