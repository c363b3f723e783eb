/**
 * Namespaces and hygiene of a real sandbox (root, real kernel): what a job
 * can see of the host.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { describe, test } from 'node:test';
import { JobworkerError } from '../../src/errors.js';
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
const execFileP = promisify(execFile);

describe('isolation sandbox', { skip }, () => {
  const fx = suiteIsolation();

  test('the root helper does not run with the job environment (LD_PRELOAD cannot reach it)', async () => {
    const env = ['PATH=/usr/bin:/bin', 'LD_PRELOAD=/nonexistent/evil.so', 'MARK=1'];
    const sandbox = await launch(fx.iso, specFor(fx.iso, ['sleep', '30'], { env }));
    try {
      // The helper is root in the host namespaces: its own environment must be empty.
      assert.equal(await readFile(`/proc/${sandbox.pid}/environ`, 'utf8'), '');
    } finally {
      await sandbox.kill();
      sandbox.stdout.resume();
      sandbox.stderr.resume();
      await sandbox.exited;
    }
    // The job itself still gets exactly its environment.
    const { stdout, stderr } = await run(fx.iso, ['sh', '-c', 'echo "$MARK"'], { env });
    assert.equal(stdout, '1\n');
    assert.match(stderr, /evil\.so/); // the job's own loader complains about the bogus preload
  });

  test('jobs get private /tmp, /var/tmp and /dev/shm, no host cgroup tree, and cannot gain privileges', async () => {
    // A file on the host's /tmp (where another job of another user could have planted it).
    const planted = `/tmp/jobworker-planted-${process.pid}`;
    await writeFile(planted, 'x', { mode: 0o644 });
    try {
      const script = [
        'ls -A /sys/fs/cgroup | wc -l',
        'stat -f -c %T /tmp /var/tmp /dev/shm',
        `test -e ${planted} && echo visible || echo hidden`,
        'grep NoNewPrivs /proc/self/status',
      ].join('; ');
      const { stdout } = await run(fx.iso, ['sh', '-c', script]);
      assert.deepEqual(stdout.trim().split('\n'), [
        '0',
        'tmpfs',
        'tmpfs',
        'tmpfs',
        'hidden',
        'NoNewPrivs:\t1',
      ]);
    } finally {
      await rm(planted, { force: true });
    }
  });

  test('ps shows only the init and the job', async () => {
    const { stdout } = await run(fx.iso, ['sh', '-c', 'ps -e -o pid= -o comm=']);
    const procs = stdout
      .trim()
      .split('\n')
      .map((l) => l.trim().split(/\s+/));
    assert.deepEqual(procs, [
      ['1', 'jobexec'],
      ['2', 'sh'],
      [procs[2]?.[0] ?? '', 'ps'],
    ]);
  });

  test('the network namespace has only lo, and it is up', async () => {
    const { stdout } = await run(fx.iso, ['ip', '-o', 'link']);
    const links = stdout.trim().split('\n');
    assert.equal(links.length, 1, stdout);
    assert.match(links[0] ?? '', /^1: lo: <LOOPBACK,UP,LOWER_UP>/);
  });

  test('with hostNetwork the job sees the host interfaces', async () => {
    const { stdout } = await run(fx.iso, ['ip', '-o', 'link'], { hostNetwork: true });
    assert.ok(stdout.trim().split('\n').length > 1, stdout);
  });

  test('the hostname is the job id', async () => {
    const jobId = newJobId();
    const { stdout } = await run(fx.iso, ['hostname'], { jobId });
    assert.equal(stdout.trim(), jobId);
  });

  test('the job runs as 65534 with no supplementary groups', async () => {
    const { stdout } = await run(fx.iso, ['sh', '-c', 'id -u; id -g; id -G']);
    assert.deepEqual(stdout.trim().split('\n'), ['65534', '65534', '65534']);
  });

  test('only fds 0-2 are open in the job', async () => {
    const { stdout } = await run(fx.iso, ['sh', '-c', 'ls /proc/$$/fd']);
    assert.deepEqual(stdout.trim().split('\n'), ['0', '1', '2']);
  });

  test("the job's environment is exactly the given one", async () => {
    process.env['JOBWORKER_TEST_SERVER_SECRET'] = 'must-not-leak';
    const env = ['PATH=/usr/bin:/bin', 'GREETING=hello world'];
    const { stdout } = await run(fx.iso, ['env'], { env });
    assert.deepEqual(stdout.trim().split('\n').sort(), [...env].sort());
  });

  test('stdout and stderr are real pipes: /dev/stdout can be reopened', async () => {
    const { stdout, stderr, report } = await run(fx.iso, [
      'sh',
      '-c',
      'echo out > /dev/stdout; echo err > /dev/stderr',
    ]);
    assert.equal(report.exitCode, 0, stderr);
    assert.equal(stdout, 'out\n');
    assert.equal(stderr, 'err\n');
  });

  test('signals are not masked or ignored in the job', async () => {
    const { stdout } = await run(fx.iso, ['grep', '-E', '^Sig(Blk|Ign)', '/proc/self/status']);
    assert.deepEqual(stdout.trim().split('\n'), [
      'SigBlk:\t0000000000000000',
      'SigIgn:\t0000000000000000',
    ]);
  });

  test('the job exiting 125 is the job, not the helper', async () => {
    const { report } = await run(fx.iso, ['sh', '-c', 'exit 125']);
    assert.equal(report.exitCode, 125);
    assert.equal(report.signal, null);
  });

  test('a signal that ends the job is reported as such', async () => {
    const { report } = await run(fx.iso, ['sh', '-c', 'kill -USR1 $$']);
    assert.deepEqual([report.exitCode, report.signal], [null, 10]);
  });

  const refusals: [string, readonly string[], string, RegExp][] = [
    [
      'a missing command',
      ['no-such-command-jobworker'],
      '/',
      /^command not found: no-such-command-jobworker$/,
    ],
    ['a non-executable file', ['/etc/passwd'], '/', /^not executable: \/etc\/passwd/],
    [
      'a missing working directory',
      ['true'],
      '/no/such/dir',
      /^working directory \/no\/such\/dir: ENOENT$/,
    ],
    [
      'a working directory the job user may not enter',
      ['true'],
      '/root',
      /^working directory \/root: EACCES$/,
    ],
  ];
  for (const [what, argv, cwd, message] of refusals) {
    test(`launch refuses ${what} with start_failed`, async () => {
      await assert.rejects(launch(fx.iso, specFor(fx.iso, argv, { cwd })), (err: unknown) => {
        assert.ok(err instanceof JobworkerError);
        assert.equal(err.code, 'start_failed');
        assert.match(err.message, message);
        return true;
      });
    });
  }

  test('terminate() sends SIGTERM to the job through init', async () => {
    const sandbox = await launch(fx.iso, specFor(fx.iso, ['sleep', '1000']));
    sandbox.terminate();
    sandbox.terminate(); // idempotent
    sandbox.stdout.resume();
    sandbox.stderr.resume();
    const report = await sandbox.exited;
    assert.deepEqual([report.exitCode, report.signal], [null, 15]);
  });
});

describe('isolation sandbox as root inside (mount propagation)', { skip }, () => {
  test("a shared host mount is private in the job's mount namespace", async () => {
    const fx = await isolationFixture({ uid: 0, gid: 0 });
    // A shared mount on the host: without MS_REC|MS_PRIVATE in the helper, the
    // mounts init makes below / (a private /tmp, ...) would propagate back out.
    // The job itself cannot mount (the seccomp filter refuses it even to root).
    const dir = await jobScratchDir('mnt-');
    await execFileP('mount', ['-t', 'tmpfs', 'jobworker-test-outer', dir]);
    try {
      await execFileP('mount', ['--make-shared', dir]);
      const mountinfo = (text: string) =>
        text.split('\n').filter((line) => line.includes(' jobworker-test-outer '));
      assert.match(mountinfo(await readFile('/proc/self/mountinfo', 'utf8')).join(), / shared:/);
      const { stdout, stderr, report } = await run(fx.iso, ['cat', '/proc/self/mountinfo']);
      assert.equal(report.exitCode, 0, stderr);
      const inside = mountinfo(stdout);
      assert.equal(inside.length, 1);
      assert.doesNotMatch(inside.join(), / shared:/);
    } finally {
      await execFileP('umount', ['-R', dir]);
      await rm(dir, { recursive: true, force: true });
      await fx.dispose();
    }
  });
});
