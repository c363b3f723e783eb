/**
 * jobworkerd as a process (dist/src/api/main.js serve): SIGTERM with a
 * running job and an open stream shuts down gracefully (exit 0, the stream
 * ended with UNAVAILABLE "server shutting down", the job's processes gone);
 * a second signal exits at once. Needs root and the real isolation.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { status as Status, type ServiceError } from '@grpc/grpc-js';
import type { JobServiceClient } from '../../src/gen/jobworker/v1/job_service.js';
import { requiresRoot } from '../helpers/guards.js';
import { makeTestPki } from '../helpers/pki.js';
import { connect, unary } from '../helpers/server.js';

const MAIN = fileURLToPath(new URL('../../src/api/main.js', import.meta.url));

/** Starts `jobworkerd serve` on port 0 and resolves with the port from its "listening" log line. */
async function startDaemon(root: string): Promise<{
  child: ChildProcess;
  port: number;
  /** Job cgroups a previous server on this state directory left, swept at this start. */
  leftoverCgroups: number | undefined;
  exit: Promise<[number | null, string | null]>;
}> {
  const child = spawn(
    process.execPath,
    [
      MAIN,
      'serve',
      '--listen',
      '127.0.0.1:0',
      '--state-dir',
      join(root, 'state'),
      '--certs',
      join(root, 'certs'),
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const exit = once(child, 'exit') as Promise<[number | null, string | null]>;
  const lines = createInterface({ input: child.stderr as NodeJS.ReadableStream });
  let leftoverCgroups: number | undefined;
  for await (const line of lines) {
    const entry = JSON.parse(line) as { msg?: string; port?: number; leftoverCgroups?: number };
    leftoverCgroups ??= entry.leftoverCgroups;
    if (entry.msg === 'jobworkerd listening' && entry.port !== undefined) {
      // Keep draining stderr so the daemon never blocks on a full pipe.
      lines.on('line', () => undefined);
      return { child, port: entry.port, leftoverCgroups, exit };
    }
  }
  throw new Error(`jobworkerd exited before listening: ${JSON.stringify(await exit)}`);
}

/** Pids whose command line contains `marker`. */
async function processesWith(marker: string): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(marker)) found.push(Number(entry));
  }
  return found;
}

describe('jobworkerd shutdown', { timeout: 120_000, skip: requiresRoot() }, () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'jobworker-shutdown-'));
    await makeTestPki(join(root, 'certs'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  test('SIGTERM: open stream ends UNAVAILABLE, the job is stopped, exit 0', async () => {
    const daemon = await startDaemon(root);
    const client: JobServiceClient = await connect(
      `localhost:${daemon.port}`,
      join(root, 'certs'),
      'alice',
    );
    try {
      // A unique argument identifies the job's processes in /proc.
      const marker = `${600 + Math.floor(Math.random() * 1e6) / 1e6}`;
      const started = await unary(client, 'startJob', {
        command: ['sh', '-c', 'echo ready; exec sleep "$0"', marker],
        env: [],
        workingDir: '',
        hostNetwork: false,
      });
      const id = started.job?.id ?? assert.fail('no job');
      assert.ok((await processesWith(marker)).length > 0, 'the job runs');
      const stream = client.streamOutput({
        jobId: id,
        stream: 0,
        stdoutOffset: 0,
        stderrOffset: 0,
        follow: true,
      });
      const streamEnd = new Promise<ServiceError | null>((resolve) => {
        stream.on('error', (e: ServiceError) => {
          resolve(e);
        });
        stream.on('end', () => {
          resolve(null);
        });
      });
      await once(stream, 'data');

      daemon.child.kill('SIGTERM');
      const [code, signal] = await daemon.exit;
      assert.deepEqual([code, signal], [0, null]);
      const err = await streamEnd;
      assert.equal(err?.code, Status.UNAVAILABLE);
      assert.equal(err.details, 'server shutting down');
      assert.deepEqual(await processesWith(marker), [], 'no process of the job is left');
      const audit = await readFile(join(root, 'state', 'audit.log'), 'utf8');
      assert.match(
        audit,
        /"method":"\/jobworker\.v1\.JobService\/StreamOutput".*"code":"unavailable"/,
      );
    } finally {
      client.close();
    }
  });

  test('refuses to start with one clear line: missing certificate, unknown flag', async () => {
    const run = (args: string[]) =>
      new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [MAIN, ...args], {
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        let stderr = '';
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('exit', (code) => {
          resolve({ code, stderr });
        });
      });
    const noCerts = await run([
      'serve',
      '--state-dir',
      join(root, 'state2'),
      '--certs',
      join(root, 'nowhere'),
    ]);
    assert.equal(noCerts.code, 69);
    assert.equal(
      noCerts.stderr,
      `jobworkerd: cannot read ${join(root, 'nowhere', 'ca.crt')}: ENOENT\n`,
    );
    const badFlag = await run(['serve', '--bogus']);
    assert.equal(badFlag.code, 64);
    assert.match(badFlag.stderr, /^jobworkerd: Unknown option '--bogus'/);
  });

  test('a second signal exits at once with a non-zero status; the next start sweeps what it left', async () => {
    const daemon = await startDaemon(root);
    const client = await connect(`localhost:${daemon.port}`, join(root, 'certs'), 'alice');
    try {
      // Ignores SIGTERM: the graceful stop would wait for its whole grace period.
      await unary(client, 'startJob', {
        command: ['sh', '-c', 'trap "" TERM; while :; do sleep 1; done'],
        env: [],
        workingDir: '',
        hostNetwork: false,
      });
      daemon.child.kill('SIGTERM');
      daemon.child.kill('SIGINT');
      const [code] = await daemon.exit;
      assert.notEqual(code, 0);
    } finally {
      client.close();
    }
    // The job's cgroups outlived that exit; only a server on the same state
    // directory owns its group, so the next one sweeps them, and its clean
    // stop removes the group.
    const again = await startDaemon(root);
    assert.equal(again.leftoverCgroups, 1);
    again.child.kill('SIGTERM');
    assert.deepEqual(await again.exit, [0, null]);
  });
});
