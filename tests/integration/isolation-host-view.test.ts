/**
 * What a job reaches of the host (root, real kernel): world-writable host
 * directories, /dev, its cgroups in every hierarchy, and PID 1 of its
 * namespace.
 */
import assert from 'node:assert/strict';
import { access, chmod, readFile, rm, stat } from 'node:fs/promises';
import { describe, test } from 'node:test';
import { requiresRoot } from '../helpers/guards.js';
import {
  isolationFixture,
  launch,
  newJobId,
  run,
  specFor,
  suiteIsolation,
} from '../helpers/isolation-fixture.js';
import { jobScratchDir } from '../helpers/scratch.js';

const skip = requiresRoot();

describe('what a job reaches of the host', { skip }, () => {
  const fx = suiteIsolation();

  test("alice's file in a world-writable host directory is invisible to bob and gone after", async () => {
    // Made before the isolations, which find world-writable directories at their start.
    const shared = await jobScratchDir('shared-');
    await chmod(shared, 0o1777);
    const alice = await isolationFixture({ uid: 60600, gid: 60600 });
    const bob = await isolationFixture({ uid: 60601, gid: 60601 });
    // /run/lock where the host has it world-writable (Debian, systemd).
    const runLock = ((await stat('/run/lock').catch(() => null))?.mode ?? 0) & 0o002;
    try {
      for (const dir of runLock !== 0 ? [shared, '/run/lock'] : [shared]) {
        const file = `${dir}/jobworker-${newJobId()}`;
        const wrote = await run(alice.iso, ['sh', '-c', `echo a > ${file}; chmod 666 ${file}`]);
        assert.equal(wrote.report.exitCode, 0, wrote.stderr);
        const read = await run(bob.iso, ['cat', file]);
        assert.notEqual(read.report.exitCode, 0, `${file} was visible to bob`);
        await assert.rejects(access(file), /ENOENT/, `${file} stayed on the host`);
      }
    } finally {
      await Promise.all([alice.dispose(), bob.dispose()]);
      await rm(shared, { recursive: true, force: true });
    }
  });

  test('/dev holds the standard nodes only, and its own devpts instance', async () => {
    const script = [
      'ls -A /dev | tr "\\n" " "; echo',
      'echo x > /dev/null && head -c 3 /dev/zero | wc -c',
      'echo x > /dev/full 2>/dev/null || echo full',
      'readlink /dev/stdout /dev/ptmx',
      'stat -c %d /dev/pts',
      'script -qc tty /dev/null',
      // The host's /dev is detached, not only covered.
      'awk \'$5 == "/dev"\' /proc/self/mountinfo | wc -l',
    ].join('; ');
    const { stdout, stderr, report } = await run(fx.iso, ['sh', '-c', script]);
    assert.equal(report.exitCode, 0, stderr);
    const [names, zeros, full, stdoutLink, ptmxLink, ptsDev, tty, devMounts] = stdout
      .trim()
      .split(/\r?\n/);
    assert.equal(
      names?.trim(),
      'fd full null ptmx pts random shm stderr stdin stdout tty urandom zero',
    );
    assert.deepEqual(
      [zeros, full, stdoutLink, ptmxLink],
      ['3', 'full', '/proc/self/fd/1', 'pts/ptmx'],
    );
    assert.notEqual(Number(ptsDev), (await stat('/dev/pts')).dev, "the host's devpts");
    assert.equal(tty, '/dev/pts/0', 'the first pty of a new instance');
    assert.equal(devMounts, '1');
  });

  test('the job is in a cgroup of its own in every hierarchy, and sees each as /', async () => {
    const jobId = newJobId();
    const sandbox = await launch(fx.iso, specFor(fx.iso, ['sleep', '30'], { jobId }));
    try {
      // The helper's child is init, whose child is the job.
      const childOf = async (pid: number) =>
        Number((await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8')).trim());
      const job = await childOf(await childOf(sandbox.pid));
      const host = (await readFile(`/proc/${job}/cgroup`, 'utf8')).trim().split('\n');
      // Pure v2 has the one line 0::/path; v1 and hybrid a line per hierarchy.
      if (fx.iso.cgroupKind === 'v2') assert.match(host.join('\n'), /^0::\/[^\n]*$/);
      else assert.ok(host.length > 1, host.join('\n'));
      for (const line of host) {
        // Pure v1 mounts no cgroup2: the kernel still lists its hierarchy, at /.
        if (fx.iso.cgroupKind === 'v1' && line === '0::/') continue;
        assert.ok(line.endsWith(`/${jobId}`), line);
      }
    } finally {
      await sandbox.kill();
      sandbox.stdout.resume();
      sandbox.stderr.resume();
      await sandbox.exited;
    }
    const { stdout } = await run(fx.iso, ['cat', '/proc/self/cgroup']);
    for (const line of stdout.trim().split('\n')) assert.match(line, /^\d+:[^:]*:\/$/);
  });

  test('PID 1 shows nothing of the server: command line, environment, working directory', async () => {
    const { stdout } = await run(fx.iso, ['sh', '-c', 'tr "\\0" " " < /proc/1/cmdline']);
    assert.equal(stdout.trim(), 'jobexec');
    // Only a job running as root may read the rest.
    const root = await isolationFixture({ uid: 0, gid: 0 });
    try {
      const script = 'tr "\\0" " " < /proc/1/environ; echo; readlink /proc/1/cwd';
      const seen = await run(root.iso, ['sh', '-c', script]);
      assert.equal(seen.report.exitCode, 0, seen.stderr);
      assert.deepEqual(seen.stdout.split('\n'), ['', '/', '']);
    } finally {
      await root.dispose();
    }
  });
});
