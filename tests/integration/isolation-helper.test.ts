/** The start-up check of the native helper: missing, not runnable, stale. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { access, appendFile, chmod, cp, mkdir, mkdtemp, rm, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { JobworkerError } from '../../src/errors.js';
import { detectLayout } from '../../src/isolation/cgroup/detect.js';
import {
  checkHelper,
  DEFAULT_HELPER_PATH,
  DEFAULT_HELPER_SOURCE,
} from '../../src/isolation/helper-check.js';
import { createIsolation } from '../../src/isolation/index.js';
import { requiresExecutable, requiresLayout, requiresRoot } from '../helpers/guards.js';

const refusal = (pattern: RegExp) => (err: unknown) => {
  assert.ok(err instanceof JobworkerError);
  assert.equal(err.code, 'internal');
  assert.match(err.message, pattern);
  return true;
};

test(
  'the built helper matches the shipped source',
  { skip: await requiresExecutable(DEFAULT_HELPER_PATH) },
  async () => {
    await checkHelper(DEFAULT_HELPER_PATH, DEFAULT_HELPER_SOURCE);
  },
);

test(
  'a stale helper is refused at start-up, naming the fix, whichever source or header changed',
  { skip: await requiresExecutable(DEFAULT_HELPER_PATH) },
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'jobworker-stale-'));
    try {
      const source = join(dir, 'native');
      await cp(DEFAULT_HELPER_SOURCE, source, { recursive: true });
      await rm(join(source, 'build'), { recursive: true, force: true });
      await checkHelper(DEFAULT_HELPER_PATH, source); // the copy is what was built
      await appendFile(join(source, 'protocol.h'), '/* changed after the build */\n');
      await assert.rejects(
        createIsolation({ stateDir: dir, helperPath: DEFAULT_HELPER_PATH, helperSource: source }),
        refusal(
          /is stale: built from source [0-9a-f]{12}, but .* is [0-9a-f]{12}; rebuild it with `node scripts\/build-native.mjs`/,
        ),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
);

test('a missing helper is refused at start-up', async () => {
  await assert.rejects(
    createIsolation({ stateDir: tmpdir(), helperPath: '/nonexistent/jobexec' }),
    refusal(/native helper \/nonexistent\/jobexec is missing or not executable \(ENOENT\)/),
  );
});

test('a non-executable helper is refused at start-up', async () => {
  const source = fileURLToPath(import.meta.url); // a plain, non-executable file
  await assert.rejects(
    createIsolation({ stateDir: tmpdir(), helperPath: source }),
    refusal(/missing or not executable/),
  );
});

test(
  'a binary that is not the helper is refused at start-up',
  { skip: await requiresExecutable('/bin/true') },
  async () => {
    await assert.rejects(
      createIsolation({ stateDir: tmpdir(), helperPath: '/bin/true' }),
      refusal(/printed an unexpected version/),
    );
  },
);

/** Runs the helper binary directly; returns its status lines and exit code. */
async function runHelper(
  args: readonly string[],
): Promise<{ status: string[]; code: number | null }> {
  const child = spawn(DEFAULT_HELPER_PATH, args, {
    env: {},
    stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'],
  });
  // fd 4: the job's environment, NUL-terminated entries.
  const envPipe = child.stdio[4];
  assert.ok(envPipe instanceof Writable);
  envPipe.on('error', () => undefined);
  envPipe.end('PATH=/usr/bin:/bin\0');
  const chunks: Buffer[] = [];
  const status = child.stdio[3];
  assert.ok(status instanceof Readable);
  status.on('data', (c: Buffer) => chunks.push(c));
  const [code] = (await once(child, 'exit')) as [number | null];
  if (!status.readableEnded) await once(status, 'end');
  return { status: Buffer.concat(chunks).toString().trim().split('\n'), code };
}

/** The host's cgroup v1 pids hierarchy, if mounted (a helper test needs a non-cgroup2 directory). */
const v1Pids = (await detectLayout().catch(() => null))?.v1.get('pids');

describe('the helper binary', { skip: requiresRoot() }, () => {
  test('a failed cgroup write fails closed: the job never runs', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'jobworker-closed-'));
    await chmod(dir, 0o777);
    try {
      const marker = join(dir, 'ran');
      const { status, code } = await runHelper([
        ...['--cgroup1-dir', '/sys/fs/cgroup/pids/no-such-jobworker-cgroup'],
        ...['--', 'touch', marker],
      ]);
      // The relay's count (nothing written) comes before init's report.
      assert.deepEqual(status, ['output 0 0', 'error cgroup write 2']);
      assert.equal(code, 125);
      await assert.rejects(access(marker), /ENOENT/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test(
    'CLONE_INTO_CGROUP falls back to a cgroup.procs write when clone3 refuses the cgroup',
    // Pure v2 has no directory clone3 refuses that a cgroup.procs write takes.
    { skip: requiresLayout(v1Pids !== undefined, 'needs a cgroup v1 pids hierarchy (v1, hybrid)') },
    async () => {
      // A v1 directory is not a cgroup2 directory: clone3 fails, the write works.
      assert.ok(v1Pids !== undefined);
      const dir = `${v1Pids}/jobworker-fallback-${process.pid}`;
      await mkdir(dir);
      try {
        const { status } = await runHelper(['--cgroup2-dir', dir, '--', 'true']);
        assert.match(status[0] ?? '', /^started \d+$/);
        assert.deepEqual(status.slice(1), ['output 0 0', 'exit 0']);
      } finally {
        await rmdir(dir);
      }
    },
  );

  test('bad arguments are a helper failure, not a job exit', async () => {
    assert.deepEqual(await runHelper(['--uid', 'nobody', '--', 'true']), {
      status: ['error args uid 22'],
      code: 125,
    });
    assert.deepEqual(await runHelper(['--no-such-option']), {
      status: ['error args getopt 22'],
      code: 125,
    });
  });
});
