/**
 * The metrics endpoint of a real jobworkerd (startServe: real isolation,
 * mTLS on port 0, metrics on port 0): scraped over HTTP, the text passes
 * `promtool check metrics`, and the counters move as a job runs; the
 * server's stop closes the endpoint. The flags are refused as documented.
 * Needs root, the real isolation and promtool (Debian's prometheus package).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { startServe, type Running } from '../../src/api/serve.js';
import { tlsFilesIn } from '../../src/api/tls.js';
import type { JobServiceClient } from '../../src/gen/jobworker/v1/job_service.js';
import { requiresExecutable, requiresRoot } from '../helpers/guards.js';
import { fetchFrom, refused, value } from '../helpers/metrics.js';
import { makeTestPki } from '../helpers/pki.js';
import { connect, readStream, unary } from '../helpers/server.js';

const PROMTOOL = '/usr/bin/promtool';
const MAIN = fileURLToPath(new URL('../../src/api/main.js', import.meta.url));

async function scrape(port: number): Promise<string> {
  const { status, body } = await fetchFrom(port, '/metrics');
  assert.equal(status, 200);
  return body;
}

/** Runs `promtool check metrics` on `text`; resolves with its exit code and output. */
async function promtool(text: string): Promise<{ code: number | null; output: string }> {
  const child = spawn(PROMTOOL, ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  child.stdin.end(text);
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, output };
}

const START_JOB = '/jobworker.v1.JobService/StartJob';
const STREAM = '/jobworker.v1.JobService/StreamOutput';

describe('metrics endpoint', { timeout: 120_000 }, async () => {
  const skip = requiresRoot() || (await requiresExecutable(PROMTOOL));
  let root: string;
  let running: Running | undefined;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'jobworker-metrics-'));
    await makeTestPki(join(root, 'certs'));
  });
  after(async () => {
    await running?.stop();
    await rm(root, { recursive: true, force: true });
  });

  test(
    'scraped over HTTP, valid for promtool; counters move as a job runs; stop closes it',
    { skip },
    async () => {
      running = await startServe({
        listen: '127.0.0.1:0',
        stateDir: join(root, 'state'),
        tls: tlsFilesIn(join(root, 'certs'), 'server'),
        auditStdout: false,
        metricsListen: '127.0.0.1:0',
      });
      const port = running.metricsPort ?? assert.fail('no metrics port');
      const before = await scrape(port);
      const checked = await promtool(before);
      assert.deepEqual(checked, { code: 0, output: '' }, 'promtool check metrics');
      assert.equal(value(before, 'jobworker_jobs_started_total'), 0);

      const client: JobServiceClient = await connect(
        `localhost:${running.port}`,
        join(root, 'certs'),
        'alice',
      );
      try {
        const started = await unary(client, 'startJob', {
          command: ['printf', 'hello metrics'],
          env: [],
          workingDir: '',
          hostNetwork: false,
        });
        const id = started.job?.id ?? assert.fail('no job');
        await unary(client, 'waitJob', { jobId: id });
        const { messages, error } = await readStream(client, { jobId: id });
        assert.equal(error, null);
        const chunks = messages.flatMap((m) =>
          m.event?.$case === 'chunk' ? [m.event.value.data] : [],
        );
        assert.equal(Buffer.concat(chunks).toString(), 'hello metrics');
      } finally {
        client.close();
      }
      const later = await scrape(port);
      assert.deepEqual(await promtool(later), { code: 0, output: '' });
      assert.equal(value(later, 'jobworker_jobs_started_total'), 1);
      assert.equal(value(later, 'jobworker_jobs_finished_total{reason="exited"}'), 1);
      assert.equal(value(later, 'jobworker_jobs{state="finished"}'), 1);
      assert.equal(value(later, 'jobworker_jobs{state="running"}'), 0);
      assert.equal(
        value(later, `jobworker_rpc_duration_seconds_count{method="${START_JOB}",code="OK"}`),
        1,
      );
      assert.equal(
        value(later, `jobworker_rpc_duration_seconds_count{method="${STREAM}",code="OK"}`),
        1,
      );
      const sent = value(later, `jobworker_stream_sent_bytes_total{method="${STREAM}"}`);
      assert.ok(sent > 'hello metrics'.length, `stream bytes counted: ${sent}`);
      assert.equal(value(later, 'jobworker_leftover_cgroups_swept_total'), 0);

      const stopping = running;
      running = undefined;
      await stopping.stop();
      assert.equal(await refused(port), true, 'the metrics endpoint is closed by the stop');
    },
  );

  test(
    '--metrics-listen beyond loopback needs --metrics-allow-remote, which needs --metrics-listen',
    { skip },
    async () => {
      const run = (args: string[]) =>
        new Promise<{ code: number | null; stderr: string }>((resolve) => {
          const child = spawn(process.execPath, [MAIN, 'serve', ...args], {
            stdio: ['ignore', 'ignore', 'pipe'],
          });
          let stderr = '';
          child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
          child.on('exit', (code) => {
            resolve({ code, stderr });
          });
        });
      const dirs = ['--state-dir', join(root, 'state2'), '--certs', join(root, 'certs')];
      const remote = await run([...dirs, '--metrics-listen', '0.0.0.0:0']);
      assert.equal(remote.code, 78);
      assert.match(
        remote.stderr,
        /^jobworkerd: --metrics-listen: "0\.0\.0\.0:0" is not loopback; .*--metrics-allow-remote/,
      );
      const alone = await run([...dirs, '--metrics-allow-remote']);
      assert.equal(alone.code, 78);
      assert.match(alone.stderr, /^jobworkerd: --metrics-allow-remote: true needs metrics\.listen/);
    },
  );
});
