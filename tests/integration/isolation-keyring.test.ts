/**
 * Keyrings of real sandboxes (root, real kernel, keyctl from keyutils): the
 * kernel does not namespace them, so each job must get a session keyring of
 * its own, shared with neither the server nor another job.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, test } from 'node:test';
import { requiresRoot } from '../helpers/guards.js';
import {
  type IsolationFixture,
  collect,
  suiteIsolation,
  launch,
  run,
  specFor,
} from '../helpers/isolation-fixture.js';

const skip = requiresRoot();
const execFileP = promisify(execFile);

/** A key name no other test run uses. */
const keyName = (what: string) => `jobworker-test-${what}-${randomBytes(6).toString('hex')}`;

/** Runs `keyctl print %user:NAME` in a job; its output and exit code. */
async function printInJob(fx: Pick<IsolationFixture, 'iso'>, name: string) {
  const { stdout, report } = await run(fx.iso, ['keyctl', 'print', `%user:${name}`]);
  return { stdout, exitCode: report.exitCode };
}

describe('isolation keyrings', { skip }, () => {
  const fx = suiteIsolation();

  test('a job gets a fresh anonymous session keyring that it can use', async () => {
    const name = keyName('own');
    const script = `keyctl add user ${name} v @s >/dev/null && keyctl print %user:${name} && keyctl rdescribe @s`;
    const { stdout, stderr, report } = await run(fx.iso, ['sh', '-c', script]);
    assert.equal(report.exitCode, 0, stderr);
    // rdescribe: type;uid;gid;perm;description. "_ses" is an anonymous session keyring,
    // not the server's nor the user-session keyring "_uid_ses.N" shared by a uid.
    assert.match(stdout, /^v\nkeyring;\d+;\d+;[0-9a-f]+;_ses\n$/);
  });

  test('a key one job adds is invisible to a concurrent job, a later job and the server', async () => {
    const name = keyName('job');
    const script = `keyctl add user ${name} S @s >/dev/null && echo ready && exec sleep 30`;
    const planter = await launch(fx.iso, specFor(fx.iso, ['sh', '-c', script]));
    try {
      const [first] = (await once(planter.stdout, 'data')) as [Buffer];
      assert.equal(first.toString(), 'ready\n');
      const concurrent = await printInJob(fx, name);
      assert.notEqual(concurrent.exitCode, 0);
      assert.doesNotMatch(concurrent.stdout, /S/);
      // The server's own keyrings (keyctl searches the caller's: thread, process, session).
      await assert.rejects(execFileP('keyctl', ['print', `%user:${name}`]));
    } finally {
      await planter.kill();
      await collect(planter);
    }
    const later = await printInJob(fx, name);
    assert.notEqual(later.exitCode, 0);
  });

  test("a key in the server's session keyring is invisible to jobs", async () => {
    // In a child with a session keyring of its own: this test process may have none (then
    // every keyctl call gets a throwaway one) and keyrings cannot be joined from Node.
    const name = keyName('server');
    const probe = fileURLToPath(new URL('../helpers/keyring-probe.js', import.meta.url));
    const { stdout } = await execFileP('keyctl', ['session', '-', process.execPath, probe, name]);
    const job = JSON.parse(stdout) as { stdout: string; exitCode: number | null };
    assert.notEqual(job.exitCode, 0);
    assert.doesNotMatch(job.stdout, /secret/);
  });
});
