/**
 * The authorization matrix: alice, bob (role user) and admin against every
 * RPC on each other's jobs, including StreamOutput and ListJobs, and the
 * indistinguishability of another user's job from a missing one.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { status as Status, type ServiceError } from '@grpc/grpc-js';
import { ERROR_CODE_KEY } from '../../src/errors.js';
import type { JobServiceClient } from '../../src/gen/jobworker/v1/job_service.js';
import { connect, readStream, startTestServer, unary, type TestServer } from '../helpers/server.js';

type User = 'alice' | 'bob' | 'admin';
const USERS: readonly User[] = ['alice', 'bob', 'admin'];
const MISSING_JOB = 'aaaaaaaaaaaaaaaaaaaaaaaaaa';

/** Error of a call as {code, details, jobworker code}, or 'ok'. */
type Outcome = 'ok' | { code: number; details: string; errorCode: string | undefined };

async function outcome(p: Promise<unknown>): Promise<Outcome> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    const e = err as ServiceError;
    return {
      code: e.code,
      details: e.details,
      errorCode: e.metadata.get(ERROR_CODE_KEY)[0] as string | undefined,
    };
  }
}

describe('authorization', { timeout: 120_000 }, () => {
  let server: TestServer;
  const clients = {} as Record<User, JobServiceClient>;
  /** A long-running job of each user. */
  const jobOf = {} as Record<User, string>;

  before(async () => {
    server = await startTestServer();
    for (const user of USERS) {
      clients[user] = await connect(server.address, server.certsDir, user);
      const res = await unary(clients[user], 'startJob', {
        command: ['sh', '-c', 'echo started; exec sleep 600'],
        env: [],
        workingDir: '',
        hostNetwork: false,
      });
      jobOf[user] = res.job?.id ?? assert.fail('no job');
    }
  });
  after(async () => {
    for (const user of USERS) clients[user].close();
    await server.close();
  });

  const canSee = (caller: User, owner: User): boolean => caller === 'admin' || caller === owner;

  /** The read-only RPCs on one job id. */
  const reads = {
    GetJob: (c: JobServiceClient, id: string) => unary(c, 'getJob', { jobId: id }),
    StreamOutput: async (c: JobServiceClient, id: string) => {
      const r = await readStream(c, { jobId: id });
      if (r.error !== null) throw r.error;
      return r.messages;
    },
  };

  for (const caller of USERS) {
    for (const owner of USERS) {
      for (const [rpc, call] of Object.entries(reads)) {
        test(`${caller} ${rpc} on ${owner}'s job: ${canSee(caller, owner) ? 'allowed' : 'NOT_FOUND'}`, async () => {
          const got = await outcome(call(clients[caller], jobOf[owner]));
          if (canSee(caller, owner)) {
            assert.equal(got, 'ok');
          } else {
            const missing = await outcome(call(clients[caller], MISSING_JOB));
            assert.notEqual(got, 'ok');
            assert.notEqual(missing, 'ok');
            // Same code, same jobworker code, same message except for the id itself.
            assert.deepEqual(
              {
                ...(got as object),
                details: (got as { details: string }).details.replace(jobOf[owner], 'ID'),
              },
              {
                ...(missing as object),
                details: (missing as { details: string }).details.replace(MISSING_JOB, 'ID'),
              },
            );
            assert.equal((got as { code: number }).code, Status.NOT_FOUND);
            assert.equal((got as { details: string }).details, `job ${jobOf[owner]} not found`);
          }
        });
      }
    }
  }

  test('ListJobs: a user sees only their own jobs whatever the owner filter; admin sees all', async () => {
    for (const caller of USERS) {
      for (const filter of ['', 'alice', 'bob', 'admin']) {
        const res = await unary(clients[caller], 'listJobs', {
          state: 0,
          owner: filter,
          pageSize: 0,
          pageToken: '',
        });
        const owners = new Set(res.jobs.map((j) => j.owner));
        if (caller === 'admin') {
          assert.deepEqual(
            [...owners].sort(),
            filter === '' ? ['admin', 'alice', 'bob'] : [filter],
          );
        } else {
          assert.deepEqual(
            [...owners],
            [caller],
            `${caller} listing owner=${JSON.stringify(filter)}`,
          );
        }
      }
    }
  });

  test('host_network is PERMISSION_DENIED for a user', async () => {
    const got = await outcome(
      unary(clients.alice, 'startJob', {
        command: ['true'],
        env: [],
        workingDir: '',
        hostNetwork: true,
      }),
    );
    assert.notEqual(got, 'ok');
    assert.equal((got as { code: number }).code, Status.PERMISSION_DENIED);
    assert.match((got as { details: string }).details, /host_network/);
  });

  test("StopJob: users cannot stop each other's jobs (NOT_FOUND), admin can stop anyone's", async () => {
    for (const [caller, owner] of [
      ['alice', 'bob'],
      ['bob', 'alice'],
      ['alice', 'admin'],
    ] as const) {
      const got = await outcome(unary(clients[caller], 'stopJob', { jobId: jobOf[owner] }));
      assert.notEqual(got, 'ok');
      assert.equal((got as { code: number }).code, Status.NOT_FOUND);
      assert.equal((got as { details: string }).details, `job ${jobOf[owner]} not found`);
    }
    // Still running after the refused stops.
    const still = await unary(clients.admin, 'getJob', { jobId: jobOf.bob });
    assert.equal(still.job?.state, 1);
    const stopped = await unary(clients.admin, 'stopJob', {
      jobId: jobOf.bob,
      gracePeriod: { seconds: 2, nanos: 0 },
    });
    assert.equal(stopped.job?.stoppedBy, 'admin');
    assert.equal(stopped.job.owner, 'bob');
    assert.equal(
      (await unary(clients.alice, 'stopJob', { jobId: jobOf.alice })).job?.stoppedBy,
      'alice',
    );
  });

  test("refused accesses to other users' jobs are audited as denied", async () => {
    const lines = await server.auditLines();
    const denied = lines.filter((l) => l['outcome'] === 'denied' && l['code'] === 'not_found');
    assert.ok(denied.some((l) => l['identity'] === 'alice' && l['jobId'] === jobOf.bob));
    // A genuinely missing job is an error, not a denial.
    assert.ok(lines.some((l) => l['jobId'] === MISSING_JOB && l['outcome'] === 'error'));
  });
});
