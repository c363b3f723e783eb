/**
 * The wire protocol between the isolation layer and the native helper: the
 * TypeScript half of native/protocol.h, which describes it and which
 * protocol.test.ts checks against this module word by word (each group here
 * is a prefix there: FIELD.cgroup1Dir is FIELD_CGROUP1_DIR). Words, limits,
 * encoders and parsers only; fork-server.ts and helper.ts hold the behaviour.
 */
import { ErrorCode, JobworkerError } from '../errors.js';

/** Request verbs of the fork server. */
export const REQUEST = { launch: 'launch', kill: 'kill' } as const;

/**
 * Whom init sends a forwarded signal to: the job's process group (a stop's
 * SIGTERM), its main process only, or every process of its PID namespace.
 */
export const WHOM = { group: 0, main: 1, all: 2 } as const;

/** One of {@link WHOM}'s names. */
export type Whom = keyof typeof WHOM;

/** Fields of a launch request, and the direct mode's `--NAME` options (arg and env excepted). */
export const FIELD = {
  cgroup1Dir: 'cgroup1-dir',
  cgroup2Dir: 'cgroup2-dir',
  privateDir: 'private-dir',
  hostname: 'hostname',
  uid: 'uid',
  gid: 'gid',
  cwd: 'cwd',
  hostNetwork: 'host-network',
  stdin: 'stdin',
  ttyRows: 'tty-rows',
  ttyCols: 'tty-cols',
  arg: 'arg',
  env: 'env',
} as const;

/** Replies of the fork server. */
export const REPLY = { forked: 'forked', failed: 'failed', ended: 'ended' } as const;

/** STAGE of a `failed` reply; after request and fork no helper exists. */
export const FAILED = {
  request: 'request',
  fork: 'fork',
  connect: 'connect',
  dup2: 'dup2',
} as const;

/**
 * The kind a helper's connection announces after its token (stdin only for
 * a launch with stdin), and the bytes that let it go on: `held` once the
 * server holds every connection (it builds the namespaces), `go` once the
 * start record is durable (it runs the command).
 */
export const HANDSHAKE = {
  stdout: 'o',
  stderr: 'e',
  status: 's',
  stdin: 'i',
  held: 'h',
  go: 'g',
} as const;

/** Control lines the server writes on the status channel once the job runs (a terminal's). */
export const CONTROL = { resize: 'resize', interrupt: 'interrupt' } as const;

/** Words of the status channel; exit and signal also end an `ended` reply. */
export const STATUS = {
  started: 'started',
  error: 'error',
  exit: 'exit',
  signal: 'signal',
  output: 'output',
} as const;

/** STAGE of an error line. */
export const STAGE = {
  args: 'args',
  setup: 'setup',
  clone: 'clone',
  cgroup: 'cgroup',
  init: 'init',
  mount: 'mount',
  tty: 'tty',
  net: 'net',
  uts: 'uts',
  keyring: 'keyring',
  creds: 'creds',
  cwd: 'cwd',
  seccomp: 'seccomp',
  exec: 'exec',
  relay: 'relay',
} as const;

/** Descriptors of the direct mode. */
export const FD = { status: 3, env: 4 } as const;

/** The helper's own exit code when it failed. */
export const EXIT = { helperFailed: 125 } as const;

/**
 * Sizes: token, length prefix, request, direct-mode environment, v1
 * cgroups, private dirs, status line, a terminal's rows or columns (struct
 * winsize holds unsigned shorts).
 */
export const LIMIT = {
  tokenHex: 32,
  lengthBytes: 4,
  maxRequest: 4194304,
  maxEnvBytes: 1048576,
  maxCgroups: 16,
  maxPrivateDirs: 64,
  line: 256,
  maxTtyDimension: 65535,
} as const;

/** Most rows or columns of a job's terminal (the layers above validate against it). */
export const MAX_TERMINAL_DIMENSION = LIMIT.maxTtyDimension;

/** A terminal's window size. */
export interface WindowSize {
  readonly rows: number;
  readonly cols: number;
}

/** What one helper is to start: the fields of a launch request. */
export interface LaunchRequest {
  readonly cgroup1Dirs: readonly string[];
  readonly cgroup2Dir: string | null;
  /** Host directories the job gets an empty private tmpfs over (private-dirs.ts). */
  readonly privateDirs: readonly string[];
  readonly hostname: string;
  readonly uid: number;
  readonly gid: number;
  readonly cwd: string;
  readonly hostNetwork: boolean;
  /** The helper's fd 0 (a fourth connection) carries the job's input. */
  readonly stdin: boolean;
  /** A terminal of this size inside the job's namespaces (needs stdin); null: none. */
  readonly tty: WindowSize | null;
  readonly argv: readonly string[];
  readonly env: readonly string[];
}

/** Options that are flags: "1" in a launch request, a bare `--NAME` in the direct mode. */
const FLAGS: ReadonlySet<string> = new Set([FIELD.hostNetwork, FIELD.stdin]);

type Option = readonly [name: string, value: string];

/** The options of a launch, in a fixed order; the host network is a flag ("1"). */
function options(request: LaunchRequest): Option[] {
  const out: Option[] = request.cgroup1Dirs.map((dir) => [FIELD.cgroup1Dir, dir]);
  if (request.cgroup2Dir !== null) out.push([FIELD.cgroup2Dir, request.cgroup2Dir]);
  for (const dir of request.privateDirs) out.push([FIELD.privateDir, dir]);
  out.push([FIELD.hostname, request.hostname], [FIELD.uid, String(request.uid)]);
  out.push([FIELD.gid, String(request.gid)], [FIELD.cwd, request.cwd]);
  if (request.hostNetwork) out.push([FIELD.hostNetwork, '1']);
  if (request.stdin) out.push([FIELD.stdin, '1']);
  if (request.tty !== null) {
    out.push([FIELD.ttyRows, String(request.tty.rows)], [FIELD.ttyCols, String(request.tty.cols)]);
  }
  return out;
}

function refuse(what: string): never {
  // The job layer validates far tighter: reaching this is a bug, not a client error.
  throw new JobworkerError(ErrorCode.Internal, `a launch request with ${what}`);
}

/** NUL-terminated strings, refusing a NUL inside one (it would shift every later string). */
function nulTerminated(strings: readonly string[]): Buffer {
  if (strings.some((s) => s.includes('\0'))) refuse('a NUL byte in a field');
  return Buffer.from(strings.map((s) => `${s}\0`).join(''));
}

/** One request: its length (32-bit little-endian), then its strings. */
function frame(strings: readonly string[]): Buffer {
  const body = nulTerminated(strings);
  if (body.length > LIMIT.maxRequest) refuse(`${body.length} bytes`);
  const head = Buffer.alloc(LIMIT.lengthBytes);
  head.writeUInt32LE(body.length);
  return Buffer.concat([head, body]);
}

/** `launch TOKEN (FIELD VALUE)...`: the options, then each arg, then each env entry. */
export function encodeLaunch(token: string, request: LaunchRequest): Buffer {
  if (request.cgroup1Dirs.length > LIMIT.maxCgroups) {
    refuse(`${request.cgroup1Dirs.length} cgroup v1 directories`);
  }
  if (request.privateDirs.length > LIMIT.maxPrivateDirs) {
    refuse(`${request.privateDirs.length} private directories`);
  }
  if (request.tty !== null && !request.stdin) refuse('a terminal without stdin');
  const fields = [
    ...options(request),
    ...request.argv.map((arg) => [FIELD.arg, arg] as const),
    ...request.env.map((entry) => [FIELD.env, entry] as const),
  ];
  return frame([REQUEST.launch, token, ...fields.flat()]);
}

/** A control line for the status channel: a new window size, or the terminal's interrupt. */
export function encodeControl(control: { resize: WindowSize } | 'interrupt'): string {
  return control === 'interrupt'
    ? `${CONTROL.interrupt}\n`
    : `${CONTROL.resize} ${control.resize.rows} ${control.resize.cols}\n`;
}

/** `kill TOKEN SIGNAL WHOM`. */
export function encodeKill(token: string, signal: number, whom: Whom = 'group'): Buffer {
  return frame([REQUEST.kill, token, String(signal), String(WHOM[whom])]);
}

/** The direct mode's argv: `--NAME VALUE` options, `--parent-pid`, then `--` and the command. */
export function directArgv(request: LaunchRequest, parentPid: number): string[] {
  const out = options(request).flatMap(([name, value]) =>
    FLAGS.has(name) ? [`--${name}`] : [`--${name}`, value],
  );
  return [...out, '--parent-pid', String(parentPid), '--', ...request.argv];
}

/** The job's environment as the direct mode reads it on fd 4: NUL-terminated NAME=VALUE entries. */
export function encodeEnv(env: readonly string[]): Buffer {
  const bytes = nulTerminated(env);
  if (bytes.length > LIMIT.maxEnvBytes) refuse(`an environment of ${bytes.length} bytes`);
  return bytes;
}

/** Where the helper failed before the job ran: the stage, the syscall and its errno. */
export interface HelperFailure {
  readonly stage: string;
  readonly syscall: string;
  readonly errno: number;
}

/** One line of the status channel. */
export type HelperEvent =
  | { readonly type: 'started'; readonly pid: number }
  | ({ readonly type: 'error' } & HelperFailure)
  | { readonly type: 'exit'; readonly code: number }
  | { readonly type: 'signal'; readonly signal: number }
  /** Bytes the job wrote to each pipe, relayed or discarded (sent once, before the last line). */
  | { readonly type: 'output'; readonly stdout: number; readonly stderr: number };

const int = (s: string | undefined) => (s !== undefined && /^\d+$/.test(s) ? Number(s) : null);

/** Parses one status line; null for anything else (ignored, never trusted). */
export function parseHelperLine(line: string): HelperEvent | null {
  const [type, a, b, c] = line.trim().split(' ');
  switch (type) {
    case STATUS.started: {
      const pid = int(a);
      return pid === null ? null : { type, pid };
    }
    case STATUS.exit: {
      const code = int(a);
      return code === null ? null : { type, code };
    }
    case STATUS.signal: {
      const signal = int(a);
      return signal === null ? null : { type, signal };
    }
    case STATUS.output: {
      const stdout = int(a);
      const stderr = int(b);
      return stdout === null || stderr === null ? null : { type, stdout, stderr };
    }
    case STATUS.error: {
      const errno = int(c);
      return a === undefined || b === undefined || errno === null
        ? null
        : { type, stage: a, syscall: b, errno };
    }
    default:
      return null;
  }
}

/** One reply line of the fork server. */
export type Reply =
  | { readonly type: 'forked'; readonly token: string; readonly pid: number }
  | {
      readonly type: 'failed';
      readonly token: string;
      readonly stage: string;
      readonly errno: number;
    }
  | {
      readonly type: 'ended';
      readonly token: string;
      readonly how: 'exit' | 'signal';
      readonly value: number;
    };

/** Parses one reply line; null for anything else. */
export function parseReply(line: string): Reply | null {
  const [type, token = '', a, b] = line.split(' ');
  switch (type) {
    case REPLY.forked: {
      const pid = int(a);
      return pid === null ? null : { type, token, pid };
    }
    case REPLY.failed: {
      const errno = int(b);
      return a === undefined || errno === null ? null : { type, token, stage: a, errno };
    }
    case REPLY.ended: {
      const value = int(b);
      return (a === STATUS.exit || a === STATUS.signal) && value !== null
        ? { type, token, how: a, value }
        : null;
    }
    default:
      return null;
  }
}
