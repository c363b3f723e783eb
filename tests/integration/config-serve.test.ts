/**
 * A real jobworkerd started from a configuration file (and `dev --listen`)
 * honours its settings: the output cap, the default limits, retention (a
 * flag overriding the file at the next start).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { status as Status, type ServiceError } from '@grpc/grpc-js';
import { JobState } from '../../src/gen/jobworker/v1/job_service.js';
import { requiresRoot } from '../helpers/guards.js';
import { makeTestPki } from '../helpers/pki.js';
import { connect, unary } from '../helpers/server.js';

const MAIN = fileURLToPath(new URL('../../src/api/main.js', import.meta.url));

interface Daemon {
  readonly child: ChildProcess;
  readonly port: number;
  readonly exit: Promise<[number | null, string | null]>;
}

/** Starts jobworkerd with `args` and resolves once it logs its port (stdout of dev is drained). */
async function start(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Daemon> {
  const child = spawn(process.execPath, [MAIN, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  const exit = once(child, 'exit') as Promise<[number | null, string | null]>;
  child.stdout.resume();
  const input = createInterface({ input: child.stderr as NodeJS.ReadableStream });
  const lines: string[] = [];
  for await (const line of input) {
    lines.push(line);
    const entry = JSON.parse(line) as { msg?: string; port?: number };
    if (entry.msg === 'jobworkerd listening' && entry.port !== undefined) {
      input.on('line', () => undefined);
      return { child, port: entry.port, exit };
    }
  }
  throw new Error(
    `jobworkerd exited before listening: ${JSON.stringify(await exit)} ${lines.join('\n')}`,
  );
}

async function stop(daemon: Daemon): Promise<void> {
  daemon.child.kill('SIGTERM');
  assert.deepEqual(await daemon.exit, [0, null]);
}

describe('jobworkerd from a configuration file', { timeout: 120_000, skip: requiresRoot() }, () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'jobworker-config-serve-'));
    await makeTestPki(join(root, 'certs'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  test('honours the output cap, the default limits and retention; a flag overrides the file', async () => {
    const config = join(root, 'jobworkerd.toml');
    await writeFile(
      config,
      [
        'listen = "127.0.0.1:0"',
        `state_dir = "${join(root, 'state')}"`,
        '[tls]',
        `dir = "${join(root, 'certs')}"`,
        '[jobs]',
        'output_cap = "1K"',
        '[retention]',
        'max_age = "1h"',
        '[limits.default]',
        'memory = "64M"',
        'pids = 100',
        '',
      ].join('\n'),
    );
    const first = await start(['serve', '--config', config]);
    let id: string;
    const client = await connect(`localhost:${first.port}`, join(root, 'certs'), 'alice');
    try {
      const started = await unary(client, 'startJob', {
        command: ['head', '-c', '4096', '/dev/zero'],
        env: [],
        workingDir: '',
        hostNetwork: false,
      });
      const job = started.job ?? assert.fail('no job');
      id = job.id;
      assert.equal(job.limits?.memoryBytes, 64 * 1024 * 1024);
      assert.equal(job.limits.pidsMax, 100);
      const done = (await unary(client, 'waitJob', { jobId: id })).job ?? assert.fail('no job');
      assert.equal(done.state, JobState.JOB_STATE_FINISHED);
      assert.equal(done.outputTruncated, true);
      assert.deepEqual([done.stdout?.storedBytes, done.stdout?.droppedBytes], [1024, 3072]);
    } catch (err) {
      first.child.kill('SIGKILL');
      throw err;
    } finally {
      client.close();
    }
    await stop(first);

    // The flag wins over the file's 1h: at its start the server removes the job, finished
    // longer ago than 1 ms.
    const second = await start(['serve', '--config', config, '--retention-max-age', '1ms']);
    const again = await connect(`localhost:${second.port}`, join(root, 'certs'), 'alice');
    try {
      await assert.rejects(
        unary(again, 'getJob', { jobId: id }),
        (err: ServiceError) => err.code === Status.NOT_FOUND,
      );
    } finally {
      again.close();
      await stop(second);
    }
  });

  test('dev --listen serves on the address given, with its development certificates', async () => {
    const home = join(root, 'dev-home');
    const env = { ...process.env, XDG_STATE_HOME: home };
    const dev = await start(['dev', '--listen', '127.0.0.1:0'], env);
    const client = await connect(
      `localhost:${dev.port}`,
      join(home, 'jobworker', 'dev', 'certs'),
      'alice',
    );
    try {
      const listed = await unary(client, 'listJobs', {
        state: 0,
        owner: '',
        pageSize: 0,
        pageToken: '',
      });
      assert.deepEqual(listed.jobs, []);
    } finally {
      client.close();
      await stop(dev);
    }
  });
});
