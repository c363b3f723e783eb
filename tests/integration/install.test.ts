/**
 * The README's install: `npm pack`, then `npm install -g` of the tarball
 * (into a temporary prefix here). The installed `jobctl` and `jobworkerd`
 * run from PATH through their shebang, and bash completion, which calls
 * `jobctl list -q` from PATH, completes a job id from a real server.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startTestServer, type TestServer } from '../helpers/server.js';

const run = promisify(execFile);
const repo = fileURLToPath(new URL('../../../', import.meta.url));
const { version } = JSON.parse(await readFile(join(repo, 'package.json'), 'utf8')) as {
  version: string;
};

let dir: string;
let env: NodeJS.ProcessEnv;
let server: TestServer;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'jobworker-install-'));
  const npmEnv = { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false' };
  // --ignore-scripts: the test run has built dist/ already (prepack would rebuild it under the running tests).
  await run('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', dir], {
    cwd: repo,
    env: npmEnv,
    timeout: 120_000,
  });
  const tarball = join(dir, `jobworker-${version}.tgz`);
  await run(
    'npm',
    ['install', '-g', '--prefix', join(dir, 'prefix'), '--prefer-offline', '--no-audit', tarball],
    { cwd: dir, env: npmEnv, timeout: 300_000 },
  );
  server = await startTestServer();
  env = {
    PATH: `${join(dir, 'prefix', 'bin')}:/usr/local/bin:/usr/bin:/bin`,
    HOME: dir,
    JOBCTL_SERVER: server.address,
    JOBCTL_CERTS: server.certsDir,
  };
});
after(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

describe('npm pack + npm install -g', { timeout: 600_000 }, () => {
  test('jobctl and jobworkerd are commands on PATH', async () => {
    const jobctl = await run('jobctl', ['--version'], { env });
    assert.equal(jobctl.stdout, `jobctl ${version}\n`);
    const jobworkerd = await run('jobworkerd', ['--help'], { env });
    assert.match(jobworkerd.stdout, /jobworkerd certs issue user NAME --role user\|admin/);
  });

  test('bash completion of the installed jobctl completes a job id', async () => {
    const started = await run('jobctl', ['start', '--', 'sleep', '30'], { env });
    const id = started.stdout.trim();
    const script = [
      'source <(jobctl completion bash)',
      'COMP_WORDS=(jobctl stop ""); COMP_CWORD=2; _jobctl',
      'printf "%s\\n" "${COMPREPLY[@]}"',
    ].join('\n');
    const completed = await run('bash', ['--norc', '-c', script], { env });
    assert.equal(completed.stdout, `${id}\n`);
    await run('jobctl', ['stop', '--grace', '0s', id], { env });
  });
});
