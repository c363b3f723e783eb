/**
 * The native helper's command line and status channel, fd 3: `started PID`,
 * `error STAGE SYSCALL ERRNO`, `exit CODE`, `signal N`, one per line. Jobs
 * are launched through the fork server (fork-server.ts), which hands the
 * helper these same options; {@link spawnHelper} starts it directly, as the
 * benchmark's floor does.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { constants } from 'node:os';
import { type Readable, Writable } from 'node:stream';
import { ErrorCode, JobworkerError } from '../errors.js';
import type { LaunchSpec } from './types.js';

/** One line of the status channel. */
export type HelperEvent =
  | { readonly type: 'started'; readonly pid: number }
  | {
      readonly type: 'error';
      readonly stage: string;
      readonly syscall: string;
      readonly errno: number;
    }
  | { readonly type: 'exit'; readonly code: number }
  | { readonly type: 'signal'; readonly signal: number };

/** Parses one status line; null for anything else (ignored, never trusted). */
export function parseHelperLine(line: string): HelperEvent | null {
  const [type, a, b, c] = line.trim().split(' ');
  const int = (s: string | undefined) => (s !== undefined && /^\d+$/.test(s) ? Number(s) : null);
  switch (type) {
    case 'started': {
      const pid = int(a);
      return pid === null ? null : { type, pid };
    }
    case 'exit': {
      const code = int(a);
      return code === null ? null : { type, code };
    }
    case 'signal': {
      const signal = int(a);
      return signal === null ? null : { type, signal };
    }
    case 'error': {
      const errno = int(c);
      return a === undefined || b === undefined || errno === null
        ? null
        : { type, stage: a, syscall: b, errno };
    }
    default:
      return null;
  }
}

const errnoNames = new Map<number, string>(
  Object.entries(constants.errno).map(([name, value]) => [value, name]),
);

/** Translates a helper failure into the error the caller sees. */
export function helperError(
  event: Extract<HelperEvent, { type: 'error' }>,
  spec: Pick<LaunchSpec, 'argv' | 'cwd'>,
): JobworkerError {
  const name = errnoNames.get(event.errno) ?? `errno ${event.errno}`;
  const argv0 = spec.argv[0] ?? '';
  if (event.stage === 'exec') {
    if (event.errno === constants.errno.ENOENT || event.errno === constants.errno.ENOTDIR) {
      return new JobworkerError(ErrorCode.StartFailed, `command not found: ${argv0}`);
    }
    if (
      event.errno === constants.errno.EACCES ||
      event.errno === constants.errno.EPERM ||
      event.errno === constants.errno.ENOEXEC
    ) {
      return new JobworkerError(ErrorCode.StartFailed, `not executable: ${argv0} (${name})`);
    }
  }
  if (event.stage === 'cwd') {
    return new JobworkerError(ErrorCode.StartFailed, `working directory ${spec.cwd}: ${name}`);
  }
  return new JobworkerError(
    ErrorCode.Internal,
    `sandbox helper failed at ${event.stage}: ${event.syscall}: ${name}`,
  );
}

/** Options of the helper derived from a launch. */
export interface HelperArgs {
  readonly cgroup1Dirs: readonly string[];
  readonly cgroup2Dir: string | null;
  readonly uid: number;
  readonly gid: number;
}

/** The helper's argv: options, then `--` and the job's argv. */
export function helperArgv(spec: LaunchSpec, args: HelperArgs): string[] {
  const out: string[] = [];
  for (const dir of args.cgroup1Dirs) out.push('--cgroup1-dir', dir);
  if (args.cgroup2Dir !== null) out.push('--cgroup2-dir', args.cgroup2Dir);
  out.push('--hostname', spec.jobId, '--uid', String(args.uid), '--gid', String(args.gid));
  out.push('--cwd', spec.cwd, '--parent-pid', String(process.pid));
  if (spec.hostNetwork) out.push('--host-network');
  out.push('--', ...spec.argv);
  return out;
}

/** The job's environment as the helper reads it on fd 4: NUL-terminated NAME=VALUE entries. */
export function encodeEnv(env: readonly string[]): Buffer {
  return Buffer.from(env.map((entry) => `${entry}\0`).join(''));
}

/**
 * Spawns the helper directly (not through the fork server); fd 3 is its
 * status channel, fd 4 carries the job's environment. The helper runs as root with an EMPTY environment: were the
 * job's environment its own, the dynamic loader would honour a client's
 * LD_PRELOAD or LD_AUDIT in a root process before the helper's main().
 */
export function spawnHelper(helper: string, spec: LaunchSpec, args: HelperArgs): ChildProcess {
  const child = spawn(helper, helperArgv(spec, args), {
    env: {},
    stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'],
    // Its own session: a Ctrl-C at the terminal of a foreground jobworkerd
    // must reach the server (which stops jobs with their grace period), not
    // every job at once. The parent-death signal does not depend on it.
    detached: true,
  });
  const envPipe = child.stdio[4];
  if (envPipe instanceof Writable) {
    // EPIPE if the helper died first: its status channel reports why.
    envPipe.on('error', () => undefined);
    envPipe.end(encodeEnv(spec.env));
  }
  return child;
}

/**
 * Calls `onEvent` for each status line of `channel`, and `onEnd` once at its
 * end. Lines are short and few, so a partial-line buffer of one line suffices;
 * anything longer than 4 KiB is not the helper speaking and is dropped.
 */
export function readStatus(
  channel: Readable,
  onEvent: (event: HelperEvent) => void,
  onEnd: () => void,
): void {
  let pending = '';
  channel.setEncoding('utf8');
  channel.on('data', (chunk: string) => {
    pending += chunk;
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const event = parseHelperLine(pending.slice(0, nl));
      pending = pending.slice(nl + 1);
      if (event) onEvent(event);
    }
    if (pending.length > 4096) pending = '';
  });
  channel.once('close', onEnd);
  channel.on('error', () => undefined); // the end is reported by 'close'
}
