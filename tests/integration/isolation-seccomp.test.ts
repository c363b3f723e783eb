/**
 * The job's default seccomp filter (native/syscall-filter.c) in real sandboxes
 * (root, real kernel): one test per refused class, through a probe
 * (tests/helpers/syscall-probe.c, compiled here) run as root inside the job,
 * so that the filter's EPERM cannot be a missing capability's; and ordinary
 * programs still work under it.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { requiresRoot } from '../helpers/guards.js';
import { collect, launch, run, specFor, suiteIsolation } from '../helpers/isolation-fixture.js';
import { jobScratchDir } from '../helpers/scratch.js';

const skip = requiresRoot();
const execFileP = promisify(execFile);
const probeSource = fileURLToPath(
  new URL('../../../tests/helpers/syscall-probe.c', import.meta.url),
);

/** What the filter refuses with EPERM, class by class: the probes that show it. */
const refusedClasses: readonly { readonly what: string; readonly probes: readonly string[] }[] = [
  { what: 'new user namespaces', probes: ['unshare-user', 'clone-user'] },
  {
    what: 'other new namespaces and joining one',
    probes: ['unshare-mount', 'clone-mount', 'setns'],
  },
  {
    what: 'the mount family',
    probes: [
      'mount',
      'umount2',
      'pivot_root',
      'move_mount',
      'open_tree',
      'fsopen',
      'fsconfig',
      'fsmount',
      'fspick',
      'mount_setattr',
    ],
  },
  { what: 'eBPF and perf events', probes: ['bpf', 'perf_event_open'] },
  {
    what: 'kexec and kernel modules',
    probes: ['kexec_load', 'kexec_file_load', 'init_module', 'finit_module', 'delete_module'],
  },
  {
    what: 'host-wide state (reboot, swap, accounting, clocks, kernel log, terminals, quotas)',
    probes: [
      'reboot',
      'swapon',
      'swapoff',
      'acct',
      'settimeofday',
      'clock_settime',
      'clock_adjtime',
      'adjtimex',
      'syslog',
      'vhangup',
      'quotactl',
      'quotactl_fd',
      ...(process.arch === 'x64' ? ['iopl', 'ioperm'] : []),
    ],
  },
  {
    what: 'userfaultfd, io_uring, kcmp, file handles and dcookies',
    probes: [
      'userfaultfd',
      'io_uring_setup',
      'io_uring_enter',
      'io_uring_register',
      'kcmp',
      'open_by_handle_at',
      'lookup_dcookie',
    ],
  },
  { what: 'personality flags beyond the safe ones', probes: ['personality-noaslr'] },
];

describe('isolation seccomp filter', { skip }, () => {
  const fx = suiteIsolation();
  let dir = '';
  let probe = '';

  before(async () => {
    dir = await jobScratchDir('seccomp-');
    await chmod(dir, 0o755);
    probe = join(dir, 'syscall-probe');
    await execFileP('gcc', ['-std=gnu11', '-O2', '-o', probe, probeSource]);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** Runs the probe as root in a job: each probe's result (ok, an errno or a signal name). */
  async function probeAsRoot(names: readonly string[]): Promise<Record<string, string>> {
    const spec = { ...specFor(fx.iso, [probe, ...names]), uid: 0, gid: 0 };
    const { stdout, stderr, report } = await collect(await launch(fx.iso, spec));
    assert.equal(report.exitCode, 0, stderr);
    return Object.fromEntries(
      stdout
        .trim()
        .split('\n')
        .map((line) => line.split(' ') as [name: string, result: string]),
    );
  }

  const each = (names: readonly string[], result: string) =>
    Object.fromEntries(names.map((name) => [name, result]));

  test('the job runs under one seccomp filter', async () => {
    const { stdout } = await run(fx.iso, ['grep', '^Seccomp', '/proc/self/status']);
    assert.equal(stdout, 'Seccomp:\t2\nSeccomp_filters:\t1\n');
  });

  for (const { what, probes } of refusedClasses) {
    test(`refuses ${what} with EPERM, even to root in the job`, async () => {
      assert.deepEqual(await probeAsRoot(probes), each(probes, 'EPERM'));
    });
  }

  test('clone3 answers ENOSYS, so that glibc falls back to clone; a plain clone works', async () => {
    const names = ['clone3', 'clone', 'personality-query', 'personality-linux32'];
    assert.deepEqual(await probeAsRoot(names), {
      clone3: 'ENOSYS',
      clone: 'ok',
      'personality-query': 'ok',
      'personality-linux32': 'ok',
    });
  });

  test(
    'a syscall of another ABI (i386, x32) kills the process',
    { skip: process.arch !== 'x64' && 'x86_64 only' },
    async () => {
      const names = ['i386-getpid', 'x32-getpid'];
      assert.deepEqual(await probeAsRoot(names), each(names, 'SIGSYS'));
    },
  );

  test('unshare -U and unshare -r fail as the job user', async () => {
    const script = 'unshare -U true; echo "U=$?"; unshare -r true; echo "r=$?"';
    const { stdout, stderr } = await run(fx.iso, ['sh', '-c', script]);
    assert.equal(stdout, 'U=1\nr=1\n');
    assert.match(stderr, /unshare failed: Operation not permitted/);
  });

  test('ordinary programs still work: a shell pipeline, threads in python3 and node', async () => {
    const programs: readonly (readonly [argv: readonly string[], stdout: string])[] = [
      [['sh', '-c', 'ls / | grep -c "^proc$"'], '1\n'],
      [
        ['python3', '-c', 'import threading as t; t.Thread(target=print, args=("py",)).start()'],
        'py\n',
      ],
      [
        [
          process.execPath,
          '-e',
          'new (require("node:worker_threads").Worker)("console.log(1)", { eval: true })',
        ],
        '1\n',
      ],
    ];
    for (const [argv, expected] of programs) {
      const { stdout, stderr, report } = await run(fx.iso, argv);
      assert.equal(report.exitCode, 0, stderr);
      assert.equal(stdout, expected);
    }
  });
});
