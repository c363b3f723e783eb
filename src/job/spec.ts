/**
 * Validation of a client's job spec. Runs before anything is created (no
 * directory, no cgroup, no process), so that a bad request leaves nothing
 * behind; every failure is `invalid_argument` and names the offending field.
 */
import { posix } from 'node:path';
import { ErrorCode, JobworkerError } from '../errors.js';
import type { JobSpec } from './types.js';

/** Most arguments in argv. Linux allows more; a job server has no use for them. */
export const MAX_ARGV_COUNT = 4096;
/** Most bytes (UTF-8) of all arguments together. */
export const MAX_ARGV_BYTES = 128 * 1024;
/** Most environment entries. */
export const MAX_ENV_COUNT = 1024;
/** Most bytes (UTF-8) of all environment entries together. */
export const MAX_ENV_BYTES = 128 * 1024;
/** Longest working directory, PATH_MAX on Linux. */
export const MAX_CWD_BYTES = 4096;

/** PATH given to a job whose environment has none. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** POSIX portable environment variable names (IEEE Std 1003.1, 8.1). */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The parts of a spec the job layer hands to the isolation layer, checked and completed. */
export interface ValidSpec {
  readonly argv: readonly string[];
  /** The complete environment, with the default PATH added when absent. */
  readonly env: readonly string[];
  /** Absolute and normalized; "/" when the client gave none. */
  readonly cwd: string;
}

function invalid(message: string): JobworkerError {
  return new JobworkerError(ErrorCode.InvalidArgument, message);
}

/** Quotes a client-supplied value for an error message, shortened so that a huge value cannot flood a log. */
export function quote(value: string): string {
  const shown = value.length > 64 ? `${value.slice(0, 64)}...` : value;
  return JSON.stringify(shown);
}

function checkStrings(
  field: string,
  values: readonly string[],
  maxCount: number,
  maxBytes: number,
): void {
  if (values.length > maxCount) {
    throw invalid(`${field} has ${values.length} entries; at most ${maxCount} are allowed`);
  }
  let total = 0;
  for (const [i, value] of values.entries()) {
    if (value.includes('\0')) throw invalid(`${field}[${i}] contains a NUL byte`);
    total += Buffer.byteLength(value);
    if (total > maxBytes) {
      throw invalid(`${field} is larger than ${maxBytes} bytes (exceeded at ${field}[${i}])`);
    }
  }
}

function validateEnv(env: readonly string[]): string[] {
  checkStrings('env', env, MAX_ENV_COUNT, MAX_ENV_BYTES);
  const names = new Set<string>();
  for (const [i, entry] of env.entries()) {
    const eq = entry.indexOf('=');
    const name = eq < 0 ? entry : entry.slice(0, eq);
    if (eq < 0) throw invalid(`env[${i}] ${quote(entry)} is not NAME=VALUE`);
    if (!ENV_NAME.test(name)) throw invalid(`env[${i}] has an invalid name ${quote(name)}`);
    // A duplicate would leave which value wins to the C library.
    if (names.has(name)) throw invalid(`env[${i}] repeats the name ${quote(name)}`);
    names.add(name);
  }
  return names.has('PATH') ? [...env] : [...env, `PATH=${DEFAULT_PATH}`];
}

function validateCwd(cwd: string): string {
  if (cwd === '') return '/';
  if (cwd.includes('\0')) throw invalid('cwd contains a NUL byte');
  if (Buffer.byteLength(cwd) > MAX_CWD_BYTES)
    throw invalid(`cwd is longer than ${MAX_CWD_BYTES} bytes`);
  if (!cwd.startsWith('/')) throw invalid(`cwd ${quote(cwd)} is not an absolute path`);
  // Normalized: no ".", "..", "//" or trailing slash, so what is logged is what is used.
  if (posix.normalize(cwd) !== cwd || (cwd.length > 1 && cwd.endsWith('/'))) {
    throw invalid(
      `cwd ${quote(cwd)} is not normalized (expected ${quote(posix.normalize(cwd).replace(/(.)\/$/, '$1'))})`,
    );
  }
  return cwd;
}

/** Checks `spec` and returns what the sandbox gets; throws invalid_argument naming the first bad field. */
export function validateSpec(spec: JobSpec): ValidSpec {
  if (spec.argv.length === 0) throw invalid('argv is empty; a command is required');
  checkStrings('argv', spec.argv, MAX_ARGV_COUNT, MAX_ARGV_BYTES);
  if (spec.argv[0] === '') throw invalid('argv[0] is empty');
  return { argv: [...spec.argv], env: validateEnv(spec.env), cwd: validateCwd(spec.cwd) };
}
