/**
 * Ctrl-C (SIGINT to the jobctl process) in `run` and `logs -f`, end to end.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { JobStatus } from '../../src/job/index.js';
import { jobctl, spawnJobctl } from '../helpers/jobctl.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
let base: string[];

before(async () => {
  server = await startTestServer();
  base = ['--server', server.address, '--certs', server.certsDir, '--user', 'alice'];
});
after(async () => {
  await server.close();
});

async function finished(id: string): Promise<JobStatus> {
  for await (const event of server.jobs.output(id, { follow: true })) {
    if (event.type === 'finished') return event.job;
  }
  throw new Error(`job ${id} output ended without a finished event`);
}

/** The id of alice's newest job (the one `run` started). */
function newestJob(): JobStatus {
  const [job] = server.jobs.list({ owner: 'alice' });
  assert.ok(job !== undefined, 'a job was started');
  return job;
}

describe('Ctrl-C', { timeout: 120_000 }, () => {
  test('run: the first Ctrl-C stops the job and run exits with its status', async () => {
    const run = spawnJobctl([...base, 'run', '--', 'sh', '-c', 'echo ready; exec sleep 600']);
    await run.waitForOutput('ready\n');
    run.child.kill('SIGINT');
    const r = await run.result;
    // sleep dies of the SIGTERM that StopJob sends: 128 + 15.
    assert.equal(r.code, 143, r.stderr);
    assert.match(r.stderr, /^jobctl: stopping job [a-z2-7]{26}; press Ctrl-C again to detach\n$/);
    const job = newestJob();
    assert.equal(job.state, 'finished');
    assert.equal(job.endReason, 'stopped');
    assert.equal(job.stoppedBy, 'alice');
  });

  test('run: a job that handles SIGTERM reports its own exit code', async () => {
    const script = 'trap "echo cleaning up; exit 7" TERM; echo ready; while :; do sleep 0.1; done';
    const run = spawnJobctl([...base, 'run', '--', 'sh', '-c', script]);
    await run.waitForOutput('ready\n');
    run.child.kill('SIGINT');
    const r = await run.result;
    assert.equal(r.code, 7, r.stderr);
    assert.equal(r.stdout.toString(), 'ready\ncleaning up\n');
  });

  test('run: a second Ctrl-C detaches with 130 and leaves the job to its stop', async () => {
    // The job ignores SIGTERM, so it stays in its grace period (10 s by default).
    const script = 'trap "" TERM; echo ready; while :; do sleep 0.1; done';
    const run = spawnJobctl([...base, 'run', '--', 'sh', '-c', script]);
    await run.waitForOutput('ready\n');
    run.child.kill('SIGINT');
    await run.waitForOutput('press Ctrl-C again to detach');
    run.child.kill('SIGINT');
    const r = await run.result;
    assert.equal(r.code, 130, r.stderr);
    const job = newestJob();
    assert.match(r.stderr, new RegExp(`jobctl: detached from job ${job.id}`));
    assert.notEqual(job.state, 'running', 'the stop was requested');
    const end = await finished(job.id);
    assert.equal(end.endReason, 'stop_escalated');
  });

  test('logs -f: Ctrl-C exits 130 and the job keeps running', async () => {
    const started = await jobctl([
      ...base,
      'start',
      '--',
      'sh',
      '-c',
      'echo ready; exec sleep 600',
    ]);
    const id = started.stdout.toString().trim();
    try {
      const logs = spawnJobctl([...base, 'logs', '-f', id]);
      await logs.waitForOutput('ready\n');
      logs.child.kill('SIGINT');
      const r = await logs.result;
      assert.equal(r.code, 130, r.stderr);
      assert.equal(r.stderr, '');
      assert.equal(server.jobs.get(id).state, 'running');
    } finally {
      await server.jobs.stop(id, 'test', { graceMs: 0 });
    }
  });
});
