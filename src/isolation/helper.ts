/**
 * The native helper's launch request and status channel (fd 3), as the
 * isolation layer uses them; their words and encodings are protocol.ts.
 * Jobs are launched through the fork server (fork-server.ts), which fills
 * the helper's options from the request's fields; {@link spawnHelper}
 * starts it directly with the same fields as options, as the benchmark's
 * floor does.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { constants } from 'node:os';
import { type Readable, Writable } from 'node:stream';
import { ErrorCode, JobworkerError } from '../errors.js';
import {
  directArgv,
  encodeEnv,
  type HelperEvent,
  LIMIT,
  type LaunchRequest,
  parseHelperLine,
  STAGE,
} from './protocol.js';
import type { LaunchSpec } from './types.js';

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
  if (event.stage === STAGE.exec) {
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
    if (event.errno === constants.errno.ENAMETOOLONG) {
      return new JobworkerError(ErrorCode.StartFailed, `command not found: ${argv0} (${name})`);
    }
    // Within the job layer's caps, yet over this host's ARG_MAX (a small stack rlimit).
    if (event.errno === constants.errno.E2BIG) {
      return new JobworkerError(
        ErrorCode.InvalidArgument,
        `the command and environment together are more than execve accepts on this host (${name})`,
      );
    }
  }
  if (
    event.stage === STAGE.init &&
    event.syscall === 'fork' &&
    event.errno === constants.errno.EAGAIN
  ) {
    // init itself was attached (an attach is not limited), but no task is left for the job.
    return new JobworkerError(
      ErrorCode.ResourceExhausted,
      `no task left to start the job: all jobs together hold the host budget of tasks (fork: ${name})`,
    );
  }
  if (event.stage === STAGE.cwd) {
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
  readonly privateDirs: readonly string[];
  readonly uid: number;
  readonly gid: number;
}

/** The launch request for a spec. */
export function launchRequest(spec: LaunchSpec, args: HelperArgs): LaunchRequest {
  return {
    cgroup1Dirs: args.cgroup1Dirs,
    cgroup2Dir: args.cgroup2Dir,
    privateDirs: args.privateDirs,
    uid: args.uid,
    gid: args.gid,
    hostname: spec.jobId,
    cwd: spec.cwd,
    hostNetwork: spec.hostNetwork,
    stdin: spec.stdin === true || spec.tty !== undefined,
    tty: spec.tty ?? null,
    argv: spec.argv,
    env: spec.env,
  };
}

/**
 * Spawns the helper directly (not through the fork server); fd 3 is its
 * status channel, fd 4 carries the job's environment. The helper runs as root with an EMPTY environment: were the
 * job's environment its own, the dynamic loader would honour a client's
 * LD_PRELOAD or LD_AUDIT in a root process before the helper's main().
 */
export function spawnHelper(helper: string, spec: LaunchSpec, args: HelperArgs): ChildProcess {
  const request = launchRequest(spec, args);
  const child = spawn(helper, directArgv(request, process.pid), {
    env: {},
    stdio: [request.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe', 'pipe', 'pipe'],
    // Its own session: a Ctrl-C at the terminal of a foreground jobworkerd
    // must reach the server (which stops jobs with their grace period), not
    // every job at once. The parent-death signal does not depend on it.
    detached: true,
  });
  const envPipe = child.stdio[4];
  if (envPipe instanceof Writable) {
    // EPIPE if the helper died first: its status channel reports why.
    envPipe.on('error', () => undefined);
    envPipe.end(encodeEnv(request.env));
  }
  return child;
}

/**
 * Calls `onEvent` for each status line of `channel`, and `onEnd` once at its
 * end. Lines are short and few, so a partial-line buffer of one line suffices;
 * anything longer than the helper's longest line is not the helper speaking
 * and is dropped.
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
    if (pending.length > LIMIT.line) pending = '';
  });
  channel.once('close', onEnd);
  channel.on('error', () => undefined); // the end is reported by 'close'
}
