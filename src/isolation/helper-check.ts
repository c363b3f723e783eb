/**
 * Start-up check of the native helper: present, executable, runnable, and
 * built from the shipped native/jobexec.c (the build script embeds the
 * source's SHA-256, which `jobexec --version` prints).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, constants, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ErrorCode, JobworkerError } from '../errors.js';
import { errnoOf } from './cgroup/fs.js';

/** native/build/jobexec of this package (this file runs from dist/src/isolation/). */
export const DEFAULT_HELPER_PATH = fileURLToPath(
  new URL('../../../native/build/jobexec', import.meta.url),
);
/** The helper's source, when shipped. */
export const DEFAULT_HELPER_SOURCE = fileURLToPath(
  new URL('../../../native/jobexec.c', import.meta.url),
);

const REBUILD = 'rebuild it with `node scripts/build-native.mjs` (run by `npm ci`)';

async function versionOf(helper: string): Promise<string> {
  const { stdout } = await promisify(execFile)(helper, ['--version'], { timeout: 10_000, env: {} });
  return stdout.trim();
}

/** Refuses (internal, naming the path and what to do) unless the helper is usable and fresh. */
export async function checkHelper(helper: string, source: string | null): Promise<void> {
  try {
    await access(helper, constants.X_OK);
  } catch (err) {
    throw new JobworkerError(
      ErrorCode.Internal,
      `native helper ${helper} is missing or not executable (${errnoOf(err) ?? String(err)}): ${REBUILD}`,
      { cause: err },
    );
  }
  let version: string;
  try {
    version = await versionOf(helper);
  } catch (err) {
    throw new JobworkerError(
      ErrorCode.Internal,
      `native helper ${helper} does not run: ${err instanceof Error ? err.message : String(err)}; ${REBUILD}`,
      { cause: err },
    );
  }
  const built = /^jobexec ([0-9a-f]{64}|unknown)$/.exec(version)?.[1];
  if (built === undefined) {
    throw new JobworkerError(
      ErrorCode.Internal,
      `native helper ${helper} printed an unexpected version "${version.slice(0, 80)}": ${REBUILD}`,
    );
  }
  if (source === null) return;
  const text = await readFile(source).catch(() => null);
  if (text === null) return; // source not shipped: running is all we can check
  const expected = createHash('sha256').update(text).digest('hex');
  if (built !== expected) {
    throw new JobworkerError(
      ErrorCode.Internal,
      `native helper ${helper} is stale: built from source ${built.slice(0, 12)}, but ${source} is ${expected.slice(0, 12)}; ${REBUILD}`,
    );
  }
}
