/**
 * Job names, labels, selectors and WatchJobs over real mTLS: a name stands
 * for an id in every call that takes one, and only among the caller's own
 * jobs; bad names, labels and selectors are refused naming them; a watch
 * sees exactly the changes of the jobs its caller may see.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { status as Status, type ServiceError } from '@grpc/grpc-js';
import {
  EndReason,
  JobState,
  WatchEventType,
  type JobServiceClient,
  type StartJobRequest,
  type WatchJobsRequest,
  type WatchJobsResponse,
  watchEventTypeToJSON,
} from '../../src/gen/jobworker/v1/job_service.js';
import { connect, readStream, startTestServer, unary, type TestServer } from '../helpers/server.js';

const NODE = process.execPath;
const SLEEP = [NODE, '-e', 'setTimeout(() => {}, 600_000)'];

function startRequest(
  command: string[],
  name = '',
  labels: Record<string, string> = {},
): StartJobRequest {
  return { command, env: [], workingDir: '', hostNetwork: false, metadata: { name, labels } };
}

async function refused(call: Promise<unknown>, code: Status, details: RegExp): Promise<void> {
  await assert.rejects(call, (err: ServiceError) => {
    assert.equal(err.code, code, err.details);
    assert.match(err.details, details);
    return true;
  });
}

/** A WatchJobs call whose events are read one at a time. */
function watch(client: JobServiceClient, request: Partial<WatchJobsRequest>) {
  const call = client.watchJobs({ state: 0, owner: '', initial: false, ...request });
  const iterator = (call as AsyncIterable<WatchJobsResponse>)[Symbol.asyncIterator]();
  let lastFinished: WatchJobsResponse | undefined;
  return {
    /** The next `n` events, as `TYPE id` words. */
    async next(n: number): Promise<string[]> {
      const out: string[] = [];
      while (out.length < n) {
        const result = await iterator.next();
        if (result.done === true) assert.fail('the watch ended');
        const value: WatchJobsResponse = result.value;
        const type = watchEventTypeToJSON(value.type).replace('WATCH_EVENT_TYPE_', '');
        out.push(value.job === undefined ? type : `${type} ${value.job.id}`);
        if (value.type === WatchEventType.WATCH_EVENT_TYPE_FINISHED) lastFinished = value;
      }
      return out;
    },
    get finished() {
      return lastFinished;
    },
    cancel: () => {
      // Cancelling ends the call with CANCELLED: expected, not a failure.
      call.on('error', () => undefined);
      call.cancel();
    },
  };
}

describe('names, labels and WatchJobs', { timeout: 120_000 }, () => {
  let server: TestServer;
  let alice: JobServiceClient;
  let bob: JobServiceClient;
  let admin: JobServiceClient;

  before(async () => {
    server = await startTestServer();
    alice = await connect(server.address, server.certsDir, 'alice');
    bob = await connect(server.address, server.certsDir, 'bob');
    admin = await connect(server.address, server.certsDir, 'admin');
  });
  after(async () => {
    for (const c of [alice, bob, admin]) c.close();
    await server.close();
  });

  test('a name stands for the id of the caller’s own job in every call, audited by id', async () => {
    const { job } = await unary(
      alice,
      'startJob',
      startRequest(SLEEP, 'web', { team: 'db', 'example.com/env': 'dev' }),
    );
    assert.ok(job);
    assert.deepEqual(job.metadata, {
      name: 'web',
      labels: { team: 'db', 'example.com/env': 'dev' },
    });
    const got = await unary(alice, 'getJob', { jobId: 'web' });
    assert.equal(got.job?.id, job.id);
    // Taken while it runs, by alice only.
    await refused(
      unary(alice, 'startJob', startRequest(SLEEP, 'web')),
      Status.ALREADY_EXISTS,
      /^alice has a job named "web" that has not finished$/,
    );
    const bobs = await unary(bob, 'startJob', startRequest(['true'], 'web'));
    // Bob's "web" is his own; alice's is invisible to him, exactly as a missing job.
    await refused(
      unary(bob, 'stopJob', { jobId: 'nope' }),
      Status.NOT_FOUND,
      /^job nope not found$/,
    );
    assert.equal((await unary(bob, 'getJob', { jobId: 'web' })).job?.id, bobs.job?.id);
    // Names are per owner: an admin's names are its own too.
    await refused(
      unary(admin, 'getJob', { jobId: 'web' }),
      Status.NOT_FOUND,
      /^job web not found$/,
    );
    const { messages } = await readStream(alice, { jobId: 'web' });
    assert.deepEqual(messages, []);
    const stopped = await unary(alice, 'stopJob', {
      jobId: 'web',
      gracePeriod: { seconds: 5, nanos: 0 },
    });
    assert.equal(stopped.job?.id, job.id);
    assert.equal(stopped.job.endReason, EndReason.END_REASON_STOPPED);
    // Free again once finished; the name then names the newest job.
    const again = await unary(alice, 'startJob', startRequest(['true'], 'web'));
    assert.equal((await unary(alice, 'getJob', { jobId: 'web' })).job?.id, again.job?.id);
    const audit = await server.auditLines();
    const stop = audit.find(
      (l) => l['method'] === '/jobworker.v1.JobService/StopJob' && l['identity'] === 'alice',
    );
    assert.equal(stop?.['jobId'], job.id);
  });

  test('bad names, labels and selectors are refused naming them', async () => {
    for (const [request, message] of [
      [startRequest(['true'], 'Web_1'), /^metadata.name "Web_1" is not a DNS label/],
      [startRequest(['true'], 'x'.repeat(64)), /^metadata.name "x+" is longer than 63 characters$/],
      [
        startRequest(['true'], '', { team: 'd'.repeat(64) }),
        /^metadata.labels\["team"\] value "d+" is longer than 63 characters$/,
      ],
      [
        startRequest(['true'], '', { ['k'.repeat(64)]: 'v' }),
        /^metadata.labels key "k+" has a name longer than 63 characters$/,
      ],
      [
        startRequest(
          ['true'],
          '',
          Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, ''])),
        ),
        /^metadata.labels has 65 labels, more than 64$/,
      ],
    ] as const) {
      await refused(unary(alice, 'startJob', request), Status.INVALID_ARGUMENT, message);
    }
    const list = (labelSelector: string, name = '') =>
      unary(alice, 'listJobs', {
        state: 0,
        owner: '',
        pageSize: 0,
        pageToken: '',
        selector: { name, labelSelector },
      });
    await refused(
      list('team in (db'),
      Status.INVALID_ARGUMENT,
      /^selector.label_selector "team in \(db" does not parse/,
    );
    await refused(
      list('', 'No'),
      Status.INVALID_ARGUMENT,
      /^selector.name "No" is not a DNS label/,
    );
    await refused(
      unary(alice, 'getJob', { jobId: 'no_such' }),
      Status.INVALID_ARGUMENT,
      /^job_id "no_such" is neither a job id/,
    );
    const call = alice.watchJobs({
      state: 0,
      owner: '',
      initial: false,
      selector: { name: '', labelSelector: '!' },
    });
    await refused(
      (async () => {
        for await (const event of call) assert.fail(`an event: ${JSON.stringify(event)}`);
      })(),
      Status.INVALID_ARGUMENT,
      /^selector.label_selector "!" does not parse: expected a key, found the end$/,
    );
  });

  test('ListJobs filters by selector and name, within what the caller may see, and counts', async () => {
    const mk = (client: JobServiceClient, name: string, labels: Record<string, string>) =>
      unary(client, 'startJob', startRequest(['true'], name, labels)).then((r) => r.job?.id);
    const a1 = await mk(alice, 'l1', { app: 'list', env: 'prod' });
    const a2 = await mk(alice, 'l2', { app: 'list', env: 'dev' });
    const a3 = await mk(alice, '', { app: 'list' });
    const b1 = await mk(bob, 'l1', { app: 'list', env: 'dev' });
    const list = async (
      client: JobServiceClient,
      labelSelector: string,
      name = '',
      pageSize = 0,
    ) => {
      const r = await unary(client, 'listJobs', {
        state: 0,
        owner: '',
        pageSize,
        pageToken: '',
        selector: { name, labelSelector },
      });
      return { ids: r.jobs.map((j) => j.id), total: r.totalSize, next: r.nextPageToken };
    };
    assert.deepEqual(await list(alice, 'app=list,env!=prod'), {
      ids: [a3, a2],
      total: 2,
      next: '',
    });
    assert.deepEqual(await list(alice, 'app=list,env in (prod,dev)'), {
      ids: [a2, a1],
      total: 2,
      next: '',
    });
    assert.deepEqual(await list(alice, 'app=list,!env'), { ids: [a3], total: 1, next: '' });
    assert.deepEqual((await list(alice, '', 'l1')).ids, [a1]);
    assert.deepEqual((await list(admin, 'app=list', 'l1')).ids, [b1, a1]);
    const page = await list(alice, 'app', '', 1);
    assert.deepEqual([page.ids, page.total, page.next !== ''], [[a3], 3, true]);
  });

  test('WatchJobs: the existing jobs, then started, stopping and finished with the exit report, only the caller’s', async () => {
    const old = (await unary(alice, 'startJob', startRequest(['true'], '', { app: 'watch' }))).job
      ?.id;
    assert.ok(old);
    // Finished before the watch begins: it is only an existing job.
    await readStream(alice, { jobId: old, follow: true });
    const own = watch(alice, { initial: true, selector: { name: '', labelSelector: 'app=watch' } });
    const all = watch(admin, { selector: { name: '', labelSelector: 'app=watch' } });
    try {
      assert.deepEqual(await own.next(2), [`EXISTING ${old}`, 'SYNCED']);
      await unary(bob, 'startJob', startRequest(['true'], '', { app: 'watch' }));
      const { job } = await unary(alice, 'startJob', startRequest(SLEEP, '', { app: 'watch' }));
      assert.ok(job);
      await unary(alice, 'startJob', startRequest(['true'], '', { app: 'other' }));
      await unary(alice, 'stopJob', { jobId: job.id, gracePeriod: { seconds: 5, nanos: 0 } });
      assert.deepEqual(await own.next(3), [
        `STARTED ${job.id}`,
        `STOPPING ${job.id}`,
        `FINISHED ${job.id}`,
      ]);
      assert.equal(own.finished?.job?.state, JobState.JOB_STATE_FINISHED);
      assert.equal(own.finished.job.endReason, EndReason.END_REASON_STOPPED);
      assert.equal(own.finished.job.stoppedBy, 'alice');
      // The admin saw bob's job too (its start and end, in some order with alice's).
      const seen = await all.next(5);
      assert.equal(seen.filter((e) => e.startsWith('STARTED')).length, 2);
      assert.ok(seen.includes(`FINISHED ${job.id}`) || seen.includes(`STOPPING ${job.id}`));
    } finally {
      own.cancel();
      all.cancel();
    }
    await server.whenIdle();
    assert.equal(server.jobs.watcherCount, 0);
  });
});
