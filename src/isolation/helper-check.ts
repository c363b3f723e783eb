/**
 * Start-up check of the native helper: present, executable, runnable, and
 * built from the shipped native/ sources (the build script embeds their
 * SHA-256, which `jobexec --version` prints).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { access, constants, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ErrorCode, JobworkerError } from '../errors.js';
import { errnoOf } from './cgroup/fs.js';

/** native/build/jobexec of this package (this file runs from dist/src/isolation/). */
export const DEFAULT_HELPER_PATH = fileURLToPath(
  new URL('../../../native/build/jobexec', import.meta.url),
);
/** The directory of the helper's sources, when shipped. */
export const DEFAULT_HELPER_SOURCE = fileURLToPath(new URL('../../../native/', import.meta.url));

const REBUILD = 'rebuild it with `node scripts/build-native.mjs` (run by `npm ci`)';

async function versionOf(helper: string): Promise<string> {
  const { stdout } = await promisify(execFile)(helper, ['--version'], { timeout: 10_000, env: {} });
  return stdout.trim();
}

/**
 * The hash scripts/build-native.mjs embeds: every .c and .h file of `dir` in
 * name order, each as its name, a NUL and its bytes; null without sources.
 */
async function sourcesSha256(dir: string): Promise<string | null> {
  const names = (await readdir(dir).catch(() => [])).filter((n) => /\.[ch]$/.test(n)).sort();
  if (names.length === 0) return null;
  const hash = createHash('sha256');
  for (const name of names) hash.update(`${name}\0`).update(await readFile(join(dir, name)));
  return hash.digest('hex');
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
  const expected = await sourcesSha256(source);
  if (expected === null) return; // sources not shipped: running is all we can check
  if (built !== expected) {
    throw new JobworkerError(
      ErrorCode.Internal,
      `native helper ${helper} is stale: built from source ${built.slice(0, 12)}, but ${source} is ${expected.slice(0, 12)}; ${REBUILD}`,
    );
  }
}
