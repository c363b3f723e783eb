/**
 * jobctl kill, wait, rm and start --timeout end to end against a real
 * jobworkerd: exit statuses, what each prints, and bad input.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { jobctl } from '../helpers/jobctl.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
let alice: string[];
let bob: string[];

before(async () => {
  server = await startTestServer();
  const base = ['--server', server.address, '--certs', server.certsDir, '--user'];
  alice = [...base, 'alice'];
  bob = [...base, 'bob'];
});
after(async () => {
  await server.close();
});

async function start(user: string[], ...args: string[]): Promise<string> {
  const r = await jobctl([...user, 'start', ...args]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.toString().trim();
}

describe('jobctl kill, wait, rm, --timeout', { timeout: 120_000 }, () => {
  test('start --timeout: the job is stopped and status says it timed out', async () => {
    const id = await start(alice, '--timeout', '300ms', '--', 'sleep', '30');
    const waited = await jobctl([...alice, 'wait', id]);
    assert.equal(waited.code, 143, waited.stderr);
    assert.equal(waited.stdout.toString(), '143\n');
    const status = await jobctl([...alice, 'status', id]);
    assert.match(status.stdout.toString(), /^Result: +timed out after 300ms \(SIGTERM\)$/m);
    assert.match(status.stdout.toString(), /^Timeout: +300ms$/m);
  });

  test('start --timeout -1s is a usage error', async () => {
    const r = await jobctl([...alice, 'start', '--timeout=-1s', '--', 'true']);
    assert.equal(r.code, 64);
    assert.match(r.stderr, /--timeout "-1s" is not a duration/);
    const spaced = await jobctl([...alice, 'start', '--timeout', '-1s', '--', 'true']);
    assert.equal(spaced.code, 64);
  });

  test('kill -s HUP ends a job that does not handle it; an unknown signal is refused', async () => {
    const id = await start(alice, '--', 'sleep', '30');
    const bad = await jobctl([...alice, 'kill', '-s', 'SIGFOO', id]);
    assert.equal(bad.code, 65);
    assert.match(bad.stderr, /signal "SIGFOO" is not one SignalJob may send/);
    const r = await jobctl([...alice, 'kill', '-s', 'HUP', id]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), `${id}\n`);
    const waited = await jobctl([...alice, 'wait', id]);
    assert.equal(waited.code, 129, 'killed by SIGHUP');
  });

  test('wait ID... prints each status and exits with the first one; --timeout gives up with 124', async () => {
    const three = await start(alice, '--', 'sh', '-c', 'sleep 0.2; exit 3');
    const zero = await start(alice, '--', 'true');
    const r = await jobctl([...alice, 'wait', three, zero]);
    assert.equal(r.code, 3, r.stderr);
    assert.equal(r.stdout.toString(), '3\n0\n');
    const long = await start(alice, '--', 'sleep', '30');
    const timedOut = await jobctl([...alice, 'wait', '--timeout', '200ms', long]);
    assert.equal(timedOut.code, 124);
    assert.equal(timedOut.stderr, `jobctl: job ${long} did not end within 200ms\n`);
    await server.jobs.stop(long, 'test');
  });

  test("rm: refuses a running job unless -f; another user's job looks like a missing one", async () => {
    const running = await start(alice, '--', 'sleep', '30');
    const refused = await jobctl([...alice, 'rm', running]);
    assert.equal(refused.code, 68);
    assert.match(refused.stderr, new RegExp(`^jobctl: rm ${running}: job ${running} is running`));
    const missing = 'aaaaaaaaaaaaaaaaaaaaaaaaaa';
    const hidden = await jobctl([...bob, 'rm', '-f', running]);
    const absent = await jobctl([...bob, 'rm', '-f', missing]);
    assert.equal(hidden.code, 66);
    assert.equal(absent.code, 66);
    assert.equal(hidden.stderr.replaceAll(running, 'ID'), absent.stderr.replaceAll(missing, 'ID'));
    assert.equal(server.jobs.get(running).state, 'running');
    const forced = await jobctl([...alice, 'rm', '-f', running]);
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal(forced.stdout.toString(), `${running}\n`);
    assert.equal((await jobctl([...alice, 'status', running])).code, 66);
  });

  test('rm --all-finished removes only finished jobs of the caller', async () => {
    const done = await start(alice, '--', 'true');
    const bobs = await start(bob, '--', 'true');
    const running = await start(alice, '--', 'sleep', '30');
    await jobctl([...alice, 'wait', done]);
    await jobctl([...bob, 'wait', bobs]);
    const r = await jobctl([...alice, 'rm', '--all-finished']);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.toString().split('\n').includes(done));
    assert.ok(!r.stdout.toString().includes(bobs));
    assert.equal(server.jobs.get(bobs).state, 'finished');
    assert.equal(server.jobs.get(running).state, 'running');
    const again = await jobctl([...alice, 'rm', '--all-finished', done]);
    assert.equal(again.code, 64);
    await server.jobs.stop(running, 'test');
  });

  test('each new command has --help with an example', async () => {
    for (const name of ['kill', 'wait', 'rm']) {
      const r = await jobctl([name, '--help']);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout.toString(), new RegExp(`^Usage: jobctl ${name} `));
      assert.match(r.stdout.toString(), /\nExample:\n {2}/);
    }
  });
});
