/**
 * jobctl end to end: every command, run as a child process against a real
 * jobworkerd on port 0, with exit-status propagation and byte-exact output.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { JobStatus } from '../../src/job/index.js';
import { jobctl } from '../helpers/jobctl.js';
import { serverIsolation, startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
let base: string[];

before(async () => {
  server = await startTestServer();
  base = ['--server', server.address, '--certs', server.certsDir, '--user', 'alice'];
});
after(async () => {
  await server.close();
});

/** Waits for the job to finish through the library (not through the CLI under test). */
async function finished(id: string): Promise<JobStatus> {
  for await (const event of server.jobs.output(id, { follow: true })) {
    if (event.type === 'finished') return event.job;
  }
  throw new Error(`job ${id} output ended without a finished event`);
}

/** `jobctl start` and the id it printed. */
async function start(...command: string[]): Promise<string> {
  const r = await jobctl([...base, 'start', '--', ...command]);
  assert.equal(r.code, 0, r.stderr);
  const id = r.stdout.toString().trim();
  assert.match(id, /^[a-z2-7]{26}$/);
  return id;
}

describe('jobctl start, status, list, logs, stop', { timeout: 120_000 }, () => {
  test('start prints only the id; status reports how the job ended', async () => {
    const id = await start('sh', '-c', 'printf hello; printf oops >&2; exit 3');
    await finished(id);
    const r = await jobctl([...base, 'status', id]);
    assert.equal(r.code, 0, r.stderr);
    const text = r.stdout.toString();
    assert.match(text, new RegExp(`^ID: +${id}$`, 'm'));
    assert.match(text, /^Owner: +alice$/m);
    assert.match(text, /^Command: +sh -c 'printf hello; printf oops >&2; exit 3'$/m);
    assert.match(text, /^State: +finished$/m);
    assert.match(text, /^Result: +exited with code 3$/m);
    const sha = createHash('sha256').update('hello').digest('hex');
    assert.match(text, new RegExp(`^Stdout: +5 bytes, sha256 ${sha}$`, 'm'));
    assert.match(text, /^Stderr: +4 bytes, sha256 [0-9a-f]{64}$/m);
    assert.match(text, /^Truncated: +no$/m);
  });

  test('status --json prints the protobuf JSON mapping', async () => {
    const id = await start('true');
    await finished(id);
    const r = await jobctl([...base, 'status', '--json', id]);
    assert.equal(r.code, 0, r.stderr);
    const job = JSON.parse(r.stdout.toString()) as Record<string, unknown>;
    assert.equal(job['id'], id);
    assert.equal(job['state'], 'JOB_STATE_FINISHED');
    assert.equal(job['endReason'], 'END_REASON_EXITED');
    assert.equal(job['exitCode'], 0);
    assert.deepEqual(job['command'], ['true']);
  });

  test('start passes limits, environment and working directory', async () => {
    const r = await jobctl([
      ...base,
      'start',
      '--memory',
      '64M',
      '--cpu',
      '0.5',
      '--pids',
      '50',
      '--env',
      'GREETING=hi there',
      '--cwd',
      '/tmp',
      'sh',
      '-c',
      'echo "$GREETING"; pwd',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const id = r.stdout.toString().trim();
    const job = await finished(id);
    // The plain test isolation applies fixed limits whatever is asked; the
    // parsing of the limit flags is covered by src/cli/job-flags.test.ts.
    if (serverIsolation.real) {
      assert.equal(job.limits.memoryBytes, 64 * 1024 * 1024);
      assert.equal(job.limits.cpuMillis, 500);
      assert.equal(job.limits.pidsMax, 50);
    }
    assert.equal(job.cwd, '/tmp');
    const logs = await jobctl([...base, 'logs', id]);
    assert.equal(logs.stdout.toString(), 'hi there\n/tmp\n');
  });

  test('list and status show control characters escaped; logs keeps the raw bytes', async () => {
    // OSC 52 would set the admin's clipboard; CR and ESC[2K would erase the line.
    const osc52 = '\x1b]52;c;aGFja2Vk\x07\r\x1b[2K';
    const id = await start('sh', '-c', `printf '%s' '${osc52}'`);
    await finished(id);
    const admin = ['--server', server.address, '--certs', server.certsDir, '--user', 'admin'];
    for (const args of [['list'], ['status', id]]) {
      const r = await jobctl([...admin, ...args]);
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stdout.toString(), /(?!\n)\p{Cc}/u, args[0]);
      assert.match(r.stdout.toString(), /\\x1b\]52;c;aGFja2Vk\\x07\\x0d\\x1b\[2K/, args[0]);
    }
    const logs = await jobctl([...base, 'logs', id]);
    assert.equal(logs.stdout.toString(), osc52);
  });

  test('list shows a table, filters by state, and prints ids or JSON', async () => {
    const done = await start('true');
    await finished(done);
    const running = await start('sleep', '600');
    try {
      const table = await jobctl([...base, 'list']);
      assert.equal(table.code, 0, table.stderr);
      const lines = table.stdout.toString().trimEnd().split('\n');
      assert.match(lines[0] ?? '', /^ID +OWNER +STATE +EXIT +AGE +COMMAND$/);
      assert.match(
        table.stdout.toString(),
        new RegExp(`^${running} +alice +running +- +\\d+[smhd] +sleep 600$`, 'm'),
      );
      assert.match(
        table.stdout.toString(),
        new RegExp(`^${done} +alice +finished +0 +\\d+[smhd] +true$`, 'm'),
      );

      const ids = await jobctl([...base, 'list', '-q', '--state', 'running']);
      assert.equal(ids.code, 0, ids.stderr);
      const listed = ids.stdout.toString().trim().split('\n');
      assert.ok(listed.includes(running));
      assert.ok(!listed.includes(done));

      const json = await jobctl([...base, 'list', '--json', '--state', 'finished']);
      const parsed = JSON.parse(json.stdout.toString()) as {
        jobs: { id: string; state: string }[];
      };
      assert.ok(parsed.jobs.some((j) => j.id === done));
      assert.ok(parsed.jobs.every((j) => j.state === 'JOB_STATE_FINISHED'));
    } finally {
      await server.jobs.stop(running, 'test', { graceMs: 0 });
    }
  });

  test('stop prints the final status line; a second stop is already_finished (67)', async () => {
    const id = await start('sleep', '600');
    const r = await jobctl([...base, 'stop', '--grace', '2s', id]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout.toString(),
      new RegExp(`^${id} finished: stopped by alice \\(SIGTERM\\) after \\S+\\n$`),
    );
    const again = await jobctl([...base, 'stop', id]);
    assert.equal(again.code, 67);
    assert.match(again.stderr, /^jobctl: .*\n$/);
  });

  test('logs is byte-exact: binary output hashes to what status reports', async () => {
    // Every byte value, a megabyte of it, on stdout; text on stderr.
    const id = await start('sh', '-c', 'head -c 1048576 /dev/urandom; echo done >&2');
    await finished(id);
    const status = JSON.parse(
      (await jobctl([...base, 'status', '--json', id])).stdout.toString(),
    ) as {
      stdout: { storedBytes: number; sha256: string };
    };
    const logs = await jobctl([...base, 'logs', '--stdout', id]);
    assert.equal(logs.code, 0, logs.stderr);
    assert.equal(logs.stdout.length, 1_048_576);
    assert.equal(status.stdout.storedBytes, 1_048_576);
    assert.equal(createHash('sha256').update(logs.stdout).digest('base64'), status.stdout.sha256);
    assert.equal(logs.stderr, '');
    const errOnly = await jobctl([...base, 'logs', '--stderr', id]);
    assert.equal(errOnly.stdout.length, 0);
    assert.equal(errOnly.stderr, 'done\n');
  });

  test('logs --tail, --since and -t print the last lines, recent output and when it was stored', async () => {
    const id = await start('sh', '-c', 'seq 1 1000; echo oops >&2');
    await finished(id);
    const tail = await jobctl([...base, 'logs', '--tail', '2', '--stdout', id]);
    assert.equal(tail.code, 0, tail.stderr);
    assert.equal(tail.stdout.toString(), '999\n1000\n');
    const stamped = await jobctl([...base, 'logs', '-n', '1', '-t', id]);
    assert.equal(stamped.code, 0, stamped.stderr);
    const [line, stderr] = [stamped.stdout.toString(), stamped.stderr];
    const stamp = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) /;
    // The last line of both streams is stderr's or stdout's, as the server read the pipes.
    assert.match(`${line}${stderr}`, new RegExp(`${stamp.source}(1000|oops)\\n$`));
    const when = Date.parse(stamp.exec(`${line}${stderr}`)?.[1] ?? '');
    assert.ok(Math.abs(Date.now() - when) < 60_000, String(when));
    const recent = await jobctl([...base, 'logs', '--since', '10m', '--stderr', id]);
    assert.equal(recent.stderr, 'oops\n');
    const future = await jobctl([...base, 'logs', '--since', '2999-01-01T00:00:00Z', id]);
    assert.equal(future.code, 0, future.stderr);
    assert.deepEqual([future.stdout.length, future.stderr], [0, '']);
  });

  test('logs -f follows to the end and exits with the job status', async () => {
    const cases: [string, number][] = [
      ['sleep 1; echo late; exit 3', 3],
      ['echo bye; kill -KILL $$', 137],
    ];
    for (const [script, expected] of cases) {
      const id = await start('sh', '-c', script);
      const r = await jobctl([...base, 'logs', '-f', id]);
      assert.equal(r.code, expected, `${script}: ${r.stderr}`);
      assert.match(r.stdout.toString(), /^(late|bye)\n$/);
    }
  });
});

describe('default identity', { timeout: 60_000 }, () => {
  test("with no identity flags jobctl uses the development certificates of 'npm start', as alice", async () => {
    const home = await mkdtemp(join(tmpdir(), 'jobctl-home-'));
    try {
      const dev = join(home, '.local', 'state', 'jobworker', 'dev', 'certs');
      await mkdir(dev, { recursive: true });
      for (const file of ['ca.crt', 'alice.crt', 'alice.key']) {
        await copyFile(join(server.certsDir, file), join(dev, file));
      }
      const r = await jobctl(['--server', server.address, 'run', 'true'], { env: { HOME: home } });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(server.jobs.list()[0]?.owner, 'alice');
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });
});

describe('jobctl run', { timeout: 120_000 }, () => {
  test('streams stdout and stderr and exits with the exit code', async () => {
    const r = await jobctl([...base, 'run', '--', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
    assert.equal(r.code, 3);
    assert.equal(r.stdout.toString(), 'out\n');
    assert.equal(r.stderr, 'err\n');
  });

  test('options end at the command: flags after it belong to the command', async () => {
    const r = await jobctl([...base, 'run', 'sh', '-c', 'echo "$1"', 'sh', '--memory']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), '--memory\n');
  });

  test('a job killed by signal N gives 128+N', async () => {
    const r = await jobctl([...base, 'run', '--', 'sh', '-c', 'kill -TERM $$']);
    assert.equal(r.code, 143, r.stderr);
  });

  test('a command that cannot start gives 127 and one line', async () => {
    const r = await jobctl([...base, 'run', '--', '/no/such/command']);
    assert.equal(r.code, 127);
    assert.match(r.stderr, /^jobctl: [^\n]*\/no\/such\/command[^\n]*\n$/);
  });

  test('binary output reaches stdout byte for byte', async () => {
    const r = await jobctl([...base, 'run', '--', 'head', '-c', '300000', '/dev/urandom']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.length, 300_000);
    const [job] = server.jobs.list({ owner: 'alice' });
    assert.ok(job !== undefined);
    assert.equal(job.stdout.storedBytes, 300_000);
    assert.deepEqual(createHash('sha256').update(r.stdout).digest(), job.stdout.sha256);
  });
});

describe('output cap', { timeout: 60_000 }, () => {
  test('run reports the truncation on stderr and status shows it', async () => {
    const capped = await startTestServer({ certsDir: server.certsDir, outputCapBytes: 1000 });
    try {
      const args = ['--server', capped.address, '--certs', capped.certsDir];
      const r = await jobctl([...args, 'run', '--', 'head', '-c', '5000', '/dev/zero']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.length, 1000);
      assert.match(
        r.stderr,
        /^jobctl: output truncated: the job reached the output cap of 1000 bytes/,
      );
      const [job] = capped.jobs.list();
      assert.ok(job !== undefined);
      const status = await jobctl([...args, 'status', job.id]);
      assert.match(
        status.stdout.toString(),
        /^Stdout: +1000 bytes, 4000 bytes dropped, sha256 [0-9a-f]{64}$/m,
      );
      assert.match(status.stdout.toString(), /^Truncated: +yes/m);
    } finally {
      await capped.close();
    }
  });
});

describe('jobctl completion, help and version', { timeout: 60_000 }, () => {
  test('completion prints bash and zsh scripts', async () => {
    const bash = await jobctl(['completion', 'bash']);
    assert.equal(bash.code, 0);
    assert.match(bash.stdout.toString(), /complete -F _jobctl jobctl/);
    const zsh = await jobctl(['completion', 'zsh']);
    assert.equal(zsh.code, 0);
    assert.match(zsh.stdout.toString(), /^#compdef jobctl/);
    for (const script of [bash, zsh].map((r) => r.stdout.toString())) {
      assert.match(script, /attach/);
      assert.match(script, /--interactive/);
      assert.match(script, /--tty/);
      assert.match(script, /--no-stdin/);
    }
    const bad = await jobctl(['completion', 'fish']);
    assert.equal(bad.code, 64);
  });

  test('every command has --help with an example', async () => {
    for (const command of [
      'start',
      'run',
      'stop',
      'status',
      'list',
      'logs',
      'attach',
      'completion',
    ]) {
      const r = await jobctl([command, '--help']);
      assert.equal(r.code, 0, `${command}: ${r.stderr}`);
      const text = r.stdout.toString();
      assert.match(text, new RegExp(`^Usage: jobctl ${command}`), command);
      assert.match(text, /\nExample:\n {2}.*jobctl /, command);
    }
    const top = await jobctl(['--help']);
    assert.equal(top.code, 0);
    assert.match(top.stdout.toString(), /Exit status:\n(.*\n)* {2}64 +usage/);
    const version = await jobctl(['--version']);
    assert.match(version.stdout.toString(), /^jobctl \d+\.\d+\.\d+\n$/);
  });
});
