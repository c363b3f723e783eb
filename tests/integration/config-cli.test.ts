/**
 * jobworkerd's configuration from the outside: `serve --help` and `dev --help`
 * list every setting, `config check` answers with its exit codes, a bad file
 * or flag stops `serve` before anything starts, the README's reference table
 * is the schema's, and deploy/jobworkerd.service passes `systemd-analyze verify`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { defaultOf, envOf, flagOf, KEYS, markdownReference } from '../../src/api/config-schema.js';
import { requiresExecutable } from '../helpers/guards.js';

const MAIN = fileURLToPath(new URL('../../src/api/main.js', import.meta.url));
/** From dist/tests/integration/ to the repository. */
const repo = (path: string) => fileURLToPath(new URL(`../../../${path}`, import.meta.url));
const SYSTEMD_ANALYZE = '/usr/bin/systemd-analyze';

interface Ran {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function run(command: string, args: string[]): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      resolve({ code, stdout, stderr });
    });
  });
}

const jobworkerd = (...args: string[]) => run(process.execPath, [MAIN, ...args]);

describe('jobworkerd configuration commands', { timeout: 60_000 }, () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'jobworker-config-cli-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const command of ['serve', 'dev']) {
    test(`${command} --help lists every setting with its flag, key, variable and default`, async () => {
      const help = await jobworkerd(command, '--help');
      assert.equal(help.code, 0, help.stderr);
      for (const key of KEYS) {
        assert.ok(
          help.stdout.includes(`  ${flagOf(key)}`) &&
            help.stdout.includes(`[${key}, ${envOf(key)}] (default: ${defaultOf(key)})`),
          key,
        );
      }
    });
  }

  test('config check: 0 for a valid file, 78 with file, key and reason for a bad one, 64 without a file', async () => {
    const good = await jobworkerd('config', 'check', repo('deploy/jobworkerd.toml'));
    assert.deepEqual([good.code, good.stdout], [0, `${repo('deploy/jobworkerd.toml')}: valid\n`]);
    const bad = join(dir, 'bad.toml');
    await writeFile(bad, '[retention]\nmax_age = "forever"\nmax_size = "1G"\n');
    const refused = await jobworkerd('config', 'check', bad);
    assert.equal(refused.code, 78);
    assert.equal(
      refused.stderr,
      `jobworkerd: ${bad}: retention.max_age: "forever" is not a duration; use e.g. 500ms, 10s, 1m30s\n` +
        `${bad}: retention.max_size: unknown key\n`,
    );
    // Keys that do not fit together are the file's problem too, not only serve's.
    const apart = join(dir, 'apart.toml');
    await writeFile(apart, '[metrics]\nlisten = "0.0.0.0:9464"\n');
    const remote = await jobworkerd('config', 'check', apart);
    assert.equal(remote.code, 78);
    assert.match(remote.stderr, /metrics\.listen: "0\.0\.0\.0:9464" is not loopback/);
    const usage = await jobworkerd('config', 'check');
    assert.equal(usage.code, 64);
    assert.match(usage.stderr, /^jobworkerd: expected: config check FILE\n/);
  });

  test('serve refuses a bad file (78) or a bad flag value (64) before it starts anything', async () => {
    const bad = join(dir, 'serve.toml');
    await writeFile(bad, '[jobs]\noutput_cap = 1024\n');
    const file = await jobworkerd('serve', '--config', bad);
    assert.deepEqual(
      [file.code, file.stderr],
      [
        78,
        `jobworkerd: ${bad}: jobs.output_cap: 1024 has no unit; write it as a string such as "1024M"\n`,
      ],
    );
    const flag = await jobworkerd('serve', '--jobs-output-cap', '1x');
    assert.equal(flag.code, 64);
    assert.match(flag.stderr, /^jobworkerd: --jobs-output-cap "1x" is not a size/);
  });

  test("README's configuration reference is the schema's table", async () => {
    const readme = await readFile(repo('README.md'), 'utf8');
    const start = readme.indexOf('<!-- config-reference:start -->');
    const end = readme.indexOf('<!-- config-reference:end -->');
    assert.ok(start >= 0 && end > start, 'README.md has the config-reference markers');
    // Prettier pads the cells: compare them trimmed.
    const cells = (text: string) =>
      text
        .split('\n')
        .filter((line) => line.startsWith('|') && !line.startsWith('| -'))
        .map((line) => line.split(/(?<!\\)\|/).map((cell) => cell.trim()));
    assert.deepEqual(cells(readme.slice(start, end)), cells(markdownReference()));
  });

  test('deploy/jobworkerd.service passes systemd-analyze verify; a misspelt directive does not', async (t) => {
    const skip = await requiresExecutable(SYSTEMD_ANALYZE);
    if (skip !== false) {
      t.skip(skip);
      return;
    }
    const unit = repo('deploy/jobworkerd.service');
    const verified = await run(SYSTEMD_ANALYZE, ['verify', unit]);
    assert.deepEqual(verified, { code: 0, stdout: '', stderr: '' });
    // The check can fail: systemd only warns about an unknown directive, so any output counts.
    const misspelt = join(dir, 'jobworkerd.service');
    await writeFile(
      misspelt,
      (await readFile(unit, 'utf8')).replace('KillMode=mixed', 'KillMode=mixd'),
    );
    const warned = await run(SYSTEMD_ANALYZE, ['verify', misspelt]);
    assert.match(warned.stderr, /Failed to parse kill mode specification, ignoring: mixd/);
  });
});
