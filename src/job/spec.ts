/**
 * Validation of a client's job spec. Runs before anything is created (no
 * directory, no cgroup, no process), so that a bad request leaves nothing
 * behind; every failure is `invalid_argument` and names the offending field.
 */
import { posix } from 'node:path';
import { ErrorCode, JobworkerError } from '../errors.js';
import {
  type LaunchSpec,
  MAX_TERMINAL_DIMENSION,
  type RequestedLimits,
} from '../isolation/index.js';
import type { JobSpec, TerminalSpec } from './types.js';

export { MAX_TERMINAL_DIMENSION };

/** Most arguments in argv. Linux allows more; a job server has no use for them. */
export const MAX_ARGV_COUNT = 4096;
/** Most bytes (UTF-8) of all arguments together. */
export const MAX_ARGV_BYTES = 128 * 1024;
/** Most environment entries. */
export const MAX_ENV_COUNT = 1024;
/** Most bytes (UTF-8) of all environment entries together. */
export const MAX_ENV_BYTES = 128 * 1024;
/**
 * Longest single argument or environment entry, in bytes: the kernel's
 * MAX_ARG_STRLEN (32 pages) counts the terminating NUL, and execve fails
 * with E2BIG above it.
 */
export const MAX_ARG_STRING_BYTES = 32 * 4096 - 1;
/**
 * Longest command name (argv[0]), in bytes: what execve gets is at most
 * PATH_MAX with its NUL, so a longer one could never run.
 */
export const MAX_COMMAND_BYTES = 4095;
/** Longest working directory, PATH_MAX on Linux. */
export const MAX_CWD_BYTES = 4096;

/**
 * Longest maximum run time a job may ask for (a week). TODO(configuration):
 * make it a server option.
 */
export const MAX_TIMEOUT_MS = 7 * 24 * 60 * 60 * 1000;

/** Longest TERM a terminal job may ask for (terminfo names are far shorter). */
export const MAX_TERM_BYTES = 64;

/** What a TERM may hold: printable ASCII, no space (a terminfo name). */
const TERM_NAME = /^[\x21-\x7e]+$/;

/** PATH given to a job whose environment has none. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** POSIX portable environment variable names (IEEE Std 1003.1, 8.1). */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A field of a {@link JobSpec} as error messages name it: its path in the job layer's names. */
export type SpecField =
  | 'argv'
  | 'env'
  | 'cwd'
  | 'timeoutMs'
  | 'name'
  | 'labels'
  | `limits.${keyof RequestedLimits}`
  | `tty.${keyof TerminalSpec}`;

/** How a caller spells a field in error messages; an edge passes its own names (the API: the proto's). */
export type FieldNames = (field: SpecField) => string;

const JOB_NAMES: FieldNames = (field) => field;

/**
 * The parts of a spec the job layer hands to the isolation layer, checked
 * and completed: `env` with the default PATH added when absent, `cwd`
 * absolute and normalized ("/" when the client gave none).
 */
export type ValidSpec = Pick<LaunchSpec, 'argv' | 'env' | 'cwd'> & {
  readonly timeoutMs: number;
  /** Stdin open: asked for, or implied by a terminal. */
  readonly stdin: boolean;
  readonly tty: TerminalSpec | null;
};

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
    const bytes = Buffer.byteLength(value);
    total += bytes;
    if (total > maxBytes) {
      throw invalid(`${field} is larger than ${maxBytes} bytes (exceeded at ${field}[${i}])`);
    }
    if (bytes > MAX_ARG_STRING_BYTES) {
      throw invalid(
        `${field}[${i}] is ${bytes} bytes; one entry may have at most ${MAX_ARG_STRING_BYTES} (the kernel's MAX_ARG_STRLEN, with its NUL)`,
      );
    }
  }
}

function validateArgv(argv: readonly string[], field: string): string[] {
  if (argv.length === 0) throw invalid(`${field} is required`);
  checkStrings(field, argv, MAX_ARGV_COUNT, MAX_ARGV_BYTES);
  if (argv[0] === '') throw invalid(`${field}[0] is empty`);
  const commandBytes = Buffer.byteLength(argv[0] ?? '');
  if (commandBytes > MAX_COMMAND_BYTES) {
    throw invalid(
      `${field}[0] is ${commandBytes} bytes; a command name may have at most ${MAX_COMMAND_BYTES} (PATH_MAX, with its NUL)`,
    );
  }
  return [...argv];
}

function validateEnv(env: readonly string[], field: string): string[] {
  checkStrings(field, env, MAX_ENV_COUNT, MAX_ENV_BYTES);
  const names = new Set<string>();
  for (const [i, entry] of env.entries()) {
    const eq = entry.indexOf('=');
    const name = eq < 0 ? entry : entry.slice(0, eq);
    if (eq < 0) throw invalid(`${field}[${i}] ${quote(entry)} is not NAME=VALUE`);
    if (!ENV_NAME.test(name)) throw invalid(`${field}[${i}] has an invalid name ${quote(name)}`);
    // A duplicate would leave which value wins to the C library.
    if (names.has(name)) throw invalid(`${field}[${i}] repeats the name ${quote(name)}`);
    names.add(name);
  }
  return names.has('PATH') ? [...env] : [...env, `PATH=${DEFAULT_PATH}`];
}

function validateCwd(cwd: string, field: string): string {
  if (cwd === '') return '/';
  if (cwd.includes('\0')) throw invalid(`${field} contains a NUL byte`);
  if (Buffer.byteLength(cwd) > MAX_CWD_BYTES)
    throw invalid(`${field} is longer than ${MAX_CWD_BYTES} bytes`);
  if (!cwd.startsWith('/')) throw invalid(`${field} ${quote(cwd)} is not an absolute path`);
  // Normalized: no ".", "..", "//" or trailing slash, so what is logged is what is used.
  if (posix.normalize(cwd) !== cwd || (cwd.length > 1 && cwd.endsWith('/'))) {
    throw invalid(
      `${field} ${quote(cwd)} is not normalized (expected ${quote(posix.normalize(cwd).replace(/(.)\/$/, '$1'))})`,
    );
  }
  return cwd;
}

/** Limits are whole numbers of units; zero or absent asks for the default, ranges are the host's (resolveLimits). */
function validateLimits(limits: RequestedLimits, names: FieldNames): void {
  for (const [key, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value < 0) {
      const field = names(`limits.${key as keyof RequestedLimits}`);
      throw invalid(`${field}: ${String(value)} is not a non-negative integer`);
    }
  }
}

/** A maximum run time: whole milliseconds, 0 (none) up to {@link MAX_TIMEOUT_MS}. */
function validateTimeout(timeoutMs: number, field: string): number {
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 0)
    throw invalid(`${field}: ${String(timeoutMs)} ms is not a non-negative integer`);
  if (timeoutMs > MAX_TIMEOUT_MS)
    throw invalid(`${field}: ${timeoutMs} ms exceeds the maximum of ${MAX_TIMEOUT_MS} ms`);
  return timeoutMs;
}

/** A terminal's rows or columns: a whole number in 1..{@link MAX_TERMINAL_DIMENSION}. */
export function checkTerminalDimension(value: number, field: string): void {
  if (!Number.isSafeInteger(value) || value < 1 || value > MAX_TERMINAL_DIMENSION)
    throw invalid(`${field}: ${String(value)} is not in 1..${MAX_TERMINAL_DIMENSION}`);
}

/** A terminal: its size, and its TERM, which becomes the job's (so `env` must not set one). */
function validateTerminal(tty: TerminalSpec, env: readonly string[], names: FieldNames): void {
  checkTerminalDimension(tty.rows, names('tty.rows'));
  checkTerminalDimension(tty.cols, names('tty.cols'));
  const field = names('tty.term');
  if (Buffer.byteLength(tty.term) > MAX_TERM_BYTES)
    throw invalid(`${field} is longer than ${MAX_TERM_BYTES} bytes`);
  if (!TERM_NAME.test(tty.term))
    throw invalid(`${field} ${quote(tty.term)} is not printable ASCII without spaces`);
  const i = env.findIndex((entry) => entry.startsWith('TERM='));
  if (i >= 0) throw invalid(`${names('env')}[${i}] sets TERM, which ${field} sets for a terminal`);
}

/**
 * Checks `spec` and returns what the sandbox gets; throws invalid_argument
 * naming the first bad field, spelled by `names`.
 */
export function validateSpec(spec: JobSpec, names: FieldNames = JOB_NAMES): ValidSpec {
  const argv = validateArgv(spec.argv, names('argv'));
  let env = validateEnv(spec.env, names('env'));
  const cwd = validateCwd(spec.cwd, names('cwd'));
  validateLimits(spec.limits, names);
  const timeoutMs = validateTimeout(spec.timeoutMs ?? 0, names('timeoutMs'));
  const tty = spec.tty ?? null;
  if (tty !== null) {
    validateTerminal(tty, env, names);
    env = [...env, `TERM=${tty.term}`];
  }
  const stdin = spec.stdin === true || tty !== null;
  return { argv, env, cwd, timeoutMs, stdin, tty: tty && { ...tty } };
}
