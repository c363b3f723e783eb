/**
 * Early cancels (issue 14, point 3): 10,000 followed streams cancelled at
 * random points through one client channel break no other call on it, and
 * leave the per-identity stream quota whole: once they are gone, alice opens
 * all 256 streams again.
 *
 * A refusal during the burst is bounded, not forbidden. grpc-js 1.14's
 * client ends a call cancelled at once before that call's stream is reset on
 * the wire, and starts the next one; the server, which sees the stream still
 * open, counts it in the quota, as it should. Measured on Node 24 (2026-12-03,
 * where this happened in most runs, one or two refusals in 10,000 at 100 or
 * 150 streams at a time): each refused call waited 38-87 ms for its answer,
 * and the server then held 256 of alice's streams while the client had at
 * most 104 open; the held slots were young (median 87-98 ms), their signals
 * not aborted, and the server had 366 HTTP/2 streams open. A slot that leaked
 * would show as a refusal after the burst, and a release that lagged the
 * cancel on the server's side as many refusals during it.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { status as Status } from '@grpc/grpc-js';
import type { JobServiceClient } from '../../src/gen/jobworker/v1/job_service.js';
import { MAX_STREAMS_PER_IDENTITY } from '../../src/api/quota.js';
import { connect, startTestServer, unary, type TestServer } from '../helpers/server.js';
import { cancelAtRandom, follow } from '../helpers/streams.js';

const TOTAL = 10_000;
/** Streams in flight at once, with the long ones: well under the quota (256 per identity). */
const CONCURRENCY = 150;
/** Refusals allowed during the burst (0.1%): the client's lag above; a lagging release gives many more. */
const MAX_REFUSALS = 10;
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

  test(`${TOTAL} streams cancelled at random points: no collateral failure, the quota whole after`, async () => {
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
    // A cancelled call ends CANCELLED on the client, or OK if it ended first, or is refused at
    // the quota (see the top); anything else came from the server.
    for (const code of seen.keys()) {
      assert.ok(
        code === Status.CANCELLED || code === Status.OK || code === Status.RESOURCE_EXHAUSTED,
        `statuses seen: ${detail}`,
      );
    }
    assert.ok(
      (seen.get(Status.RESOURCE_EXHAUSTED) ?? 0) <= MAX_REFUSALS,
      `statuses seen: ${detail}`,
    );
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
    // No slot leaked: the whole quota opens again, every stream receiving the job's output.
    const again = Array.from({ length: MAX_STREAMS_PER_IDENTITY }, () => follow(client, jobId));
    const firsts = await Promise.all(
      again.map((f) =>
        Promise.race([
          once(f.call, 'data').then(() => 'data'),
          f.ended.then((code) => Status[code]),
        ]),
      ),
    );
    assert.deepEqual(
      firsts,
      again.map(() => 'data'),
      'every stream of a full quota opened',
    );
    for (const f of again) f.call.cancel();
    await Promise.all(again.map((f) => f.ended));
    await server.whenIdle();
    await unary(client, 'stopJob', { jobId, gracePeriod: { seconds: 1, nanos: 0 } });
  });
});
