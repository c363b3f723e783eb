/**
 * The fork server: `jobexec --serve` (native/fork-server.c), started once per
 * isolation, forks one helper per launch. Node's spawn() forks the whole
 * server on its event loop, for a time that grows with the server's memory
 * (docs/benchmarks.md); a fork of the small native process costs the same
 * whatever the server holds, and off its event loop.
 *
 * Node cannot receive descriptors over a Unix socket, so a forked helper
 * connects back to a socket this module listens on, three times (stdout,
 * stderr, status; a fourth, stdin, for a launch with stdin), each connection
 * opened with the launch's random token and its kind. The socket lives in a directory of its own, mode 0700, so that
 * only root can connect; a connection with an unknown token is closed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants } from 'node:os';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { ErrorCode, JobworkerError } from '../errors.js';
import { cancelled } from '../signals.js';
import {
  encodeKill,
  encodeLaunch,
  FAILED,
  HANDSHAKE,
  LIMIT,
  type LaunchRequest,
  parseReply,
  STATUS,
  type Whom,
} from './protocol.js';
import type { ForwardedSignal } from './types.js';

/** A helper forked by the fork server, with its connections (three, or four with stdin). */
export interface HelperProcess {
  /** Host pid of the helper. */
  readonly pid: number;
  readonly stdout: Socket;
  readonly stderr: Socket;
  /**
   * The job's input, for a launch with stdin (else null): what is written
   * reaches the job as its pipe or terminal takes it, and end() is its end.
   */
  readonly stdin: Socket | null;
  /** The status channel (see helper.ts); the server writes control lines on it (protocol.h). */
  readonly status: Socket;
  /** Resolves once the helper has been reaped, with how it ended. */
  readonly ended: Promise<HelperEnd>;
  /** Lets the helper start the job: it waits for this (see fork-server.c await_go). Once. */
  go(): void;
  /**
   * Signals the helper unless it has already been reaped (the fork server
   * checks, so no pid reuse); the helper forwards all but SIGKILL to init,
   * which sends it to `whom` of the job (default: its process group).
   */
  kill(signal: 'SIGKILL' | ForwardedSignal, whom?: Whom): void;
}

// The token, then one HANDSHAKE kind.
const HELLO_BYTES = LIMIT.tokenHex + 1;
// sockaddr_un.sun_path is 108 bytes with its terminating NUL.
const MAX_SOCKET_PATH = 107;
const SOCKET_DIR_PREFIX = '.jobexec-';
// A socket directory without a socket this old is not a server about to listen.
const STALE_AFTER_MS = 60_000;

/** Whether the helper socket of a fork server below `baseDir` fits a socket address. */
export function socketPathFits(baseDir: string): boolean {
  return Buffer.byteLength(join(baseDir, `${SOCKET_DIR_PREFIX}XXXXXX`, 's')) <= MAX_SOCKET_PATH;
}
type Kind = 'stdout' | 'stderr' | 'status' | 'stdin';
const KINDS = new Map<string, Kind>([
  [HANDSHAKE.stdout, 'stdout'],
  [HANDSHAKE.stderr, 'stderr'],
  [HANDSHAKE.status, 'status'],
  [HANDSHAKE.stdin, 'stdin'],
]);

/**
 * How a helper ended: reaped with an exit status or a signal, never forked
 * (the fork server refused the request or fork failed), or lost with the
 * fork server.
 */
export type HelperEnd =
  | { readonly kind: 'exit'; readonly code: number }
  | { readonly kind: 'signal'; readonly signal: number }
  | { readonly kind: 'not-forked'; readonly stage: string; readonly errno: number }
  | { readonly kind: 'fork-server-died' };

/** A helper's end in words, for messages and logs. */
export function describeEnd(end: HelperEnd): string {
  switch (end.kind) {
    case 'exit':
      return `exit code ${end.code}`;
    case 'signal':
      return `signal ${end.signal}`;
    case 'not-forked':
      return `${end.stage} failed: errno ${end.errno}`;
    case 'fork-server-died':
      return 'the sandbox fork server ended';
  }
}

/** One launch, from its request until the helper is reaped. */
interface Entry {
  pid: number | null;
  readonly sockets: Partial<Record<Kind, Socket>>;
  /** The connections the helper makes: stdin too for a launch with stdin. */
  readonly kinds: readonly Kind[];
  /** Why the launch cannot complete (fork or connect failed, helper died early). */
  failure: string | null;
  /** How the helper ended, once reaped. */
  end: HelperEnd | null;
  /** launch() is still waiting for it: keep it in the map even once ended. */
  collecting: boolean;
  readonly resolveEnded: (end: HelperEnd) => void;
  readonly ended: Promise<HelperEnd>;
  /** Wakes the launch waiting for this entry. */
  wake: () => void;
}

/**
 * Removes the socket directories below `baseDir` that a server killed
 * outright left behind: those whose socket refuses connections (nobody
 * listens), or that have had no socket for a minute. A live server's
 * socket accepts (its listener closes a connection that says nothing): its
 * directory stays. Returns how many were removed.
 */
export async function removeStaleSocketDirs(baseDir: string): Promise<number> {
  let removed = 0;
  const names = await readdir(baseDir).catch(() => []);
  for (const name of names.filter((n) => n.startsWith(SOCKET_DIR_PREFIX))) {
    const dir = join(baseDir, name);
    const refused = await new Promise<'ECONNREFUSED' | 'ENOENT' | null>((resolve) => {
      const probe = connect(join(dir, 's'));
      probe.once('connect', () => {
        probe.destroy();
        resolve(null);
      });
      probe.once('error', (err: NodeJS.ErrnoException) => {
        resolve(err.code === 'ECONNREFUSED' || err.code === 'ENOENT' ? err.code : null);
      });
    });
    // No socket yet may be a server between making its directory and listening (a
    // second server on this state directory): only an old directory is stale then.
    const young = await stat(dir).then(
      (st) => Date.now() - st.mtimeMs < STALE_AFTER_MS,
      () => false,
    );
    if (refused === 'ENOENT' && young) continue;
    if (refused !== null) {
      await rm(dir, { recursive: true, force: true });
      removed++;
    }
  }
  return removed;
}

/** A running `jobexec --serve` and its socket. */
export class ForkServer {
  readonly #child: ChildProcess;
  readonly #listener: Server;
  readonly #dir: string;
  readonly #entries = new Map<string, Entry>();
  /** Connections that have not yet said who they are; closed with the server. */
  readonly #unidentified = new Set<Socket>();
  /** Resolves when the fork server process has exited. */
  readonly #exited: Promise<void>;
  #dead = false;
  #closing: Promise<void> | null = null;

  private constructor(child: ChildProcess, listener: Server, dir: string) {
    this.#child = child;
    this.#listener = listener;
    this.#dir = dir;
    listener.on('connection', (socket) => {
      this.#identify(socket);
    });
    // A listener error after listen() must not crash the server: the helper that needed
    // the connection fails its launch. (EMFILE on accept is no error: libuv closes the
    // waiting connection, and that helper ends without running anything.)
    listener.on('error', () => undefined);
    let pending = '';
    const replies = child.stdout;
    replies?.setEncoding('utf8');
    replies?.on('data', (chunk: string) => {
      pending += chunk;
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        this.#onReply(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
      }
    });
    // EPIPE when the fork server died: its 'exit' says so.
    child.stdin?.on('error', () => undefined);
    this.#exited = new Promise((resolve) => {
      child.once('exit', () => {
        this.#onDeath();
        resolve();
      });
    });
    // The isolation owns it and ends it in close(); idle, it must not by itself keep alive
    // a process that forgot to. While a helper runs, #holdLoop keeps the loop alive.
    (child.stdin as Socket | null)?.unref();
    (child.stdout as Socket | null)?.unref();
    this.#holdLoop(false);
    listener.unref();
  }

  /**
   * Starts `helper --serve` with a fresh socket directory below `baseDir`
   * (the state directory: its own, so nothing cleans the socket away).
   */
  static async start(helper: string, baseDir: string): Promise<ForkServer> {
    const dir = await mkdtemp(join(baseDir, SOCKET_DIR_PREFIX)); // mode 0700
    const path = join(dir, 's');
    const listener = createServer({ pauseOnConnect: false });
    try {
      await new Promise<void>((resolve, reject) => {
        listener.once('error', reject);
        listener.listen({ path, readableAll: false, writableAll: false }, () => {
          listener.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw new JobworkerError(
        ErrorCode.Internal,
        `listening on the helper socket ${path}: ${(err as Error).message}`,
      );
    }
    const child = spawn(helper, ['--serve', path, '--parent-pid', String(process.pid)], {
      env: {},
      stdio: ['pipe', 'pipe', 'inherit'],
      // Its own session, as the helpers had: a Ctrl-C at a foreground server's terminal
      // reaches the server, which stops jobs with their grace period.
      detached: true,
    });
    const server = new ForkServer(child, listener, dir);
    const spawned = await new Promise<Error | null>((resolve) => {
      child.once('spawn', () => {
        resolve(null);
      });
      child.once('error', resolve);
    });
    if (spawned !== null) {
      await server.close();
      throw new JobworkerError(
        ErrorCode.Internal,
        `starting the sandbox fork server ${helper}: ${spawned.message}`,
      );
    }
    child.on('error', () => undefined); // a later error (a failed kill) is no crash
    return server;
  }

  /** Whether it can take launches (it died: a new one must be started). */
  get alive(): boolean {
    return !this.#dead;
  }

  /**
   * Forks a helper for `request`; resolves once all its connections are
   * in. A failed or aborted launch has no process left.
   */
  async launch(request: LaunchRequest, signal?: AbortSignal): Promise<HelperProcess> {
    if (this.#dead) {
      throw new JobworkerError(ErrorCode.Internal, 'the sandbox fork server has ended');
    }
    // A function: TypeScript would narrow a plain check for the rest of the method.
    const aborted = () => signal?.aborted === true;
    if (signal && aborted()) throw cancelled(signal, 'launch');
    const token = randomBytes(LIMIT.tokenHex / 2).toString('hex');
    const frame = encodeLaunch(token, request);
    let resolveEnded: (end: HelperEnd) => void = () => undefined;
    const ended = new Promise<HelperEnd>((resolve) => (resolveEnded = resolve));
    const entry: Entry = {
      pid: null,
      sockets: {},
      kinds: request.stdin
        ? ['stdout', 'stderr', 'status', 'stdin']
        : ['stdout', 'stderr', 'status'],
      failure: null,
      end: null,
      collecting: true,
      ended,
      resolveEnded,
      wake: () => undefined,
    };
    this.#entries.set(token, entry);
    this.#holdLoop(true);
    this.#child.stdin?.write(frame);
    const ready = () => entry.pid !== null && allConnected(entry);
    const onAbort = () => {
      entry.wake();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      while (!ready() && entry.failure === null && !aborted()) {
        await new Promise<void>((resolve) => (entry.wake = resolve));
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      entry.wake = () => undefined;
      entry.collecting = false;
      if (entry.end !== null) this.#forget(token);
    }
    if (entry.failure === null && !aborted()) {
      const { stdout, stderr, status } = entry.sockets;
      if (entry.pid !== null && stdout && stderr && status) {
        status.write(HANDSHAKE.held);
        return {
          go: () => {
            status.write(HANDSHAKE.go);
          },
          pid: entry.pid,
          stdout,
          stderr,
          stdin: entry.sockets.stdin ?? null,
          status,
          ended: entry.ended,
          kill: (sig, whom) => {
            this.#kill(token, entry, sig, whom);
          },
        };
      }
    }
    // Failed or aborted: nothing may be left running or open.
    this.#kill(token, entry, 'SIGKILL');
    await entry.ended;
    this.#forget(token);
    for (const socket of Object.values(entry.sockets)) socket.destroy();
    if (signal && aborted()) throw cancelled(signal, 'launch');
    throw new JobworkerError(
      ErrorCode.Internal,
      `sandbox helper did not start: ${entry.failure ?? (entry.end ? describeEnd(entry.end) : 'unknown')}`,
    );
  }

  /** Ends the fork server (call once every job has ended) and removes its socket. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#child.ref(); // its exit is now awaited
    this.#child.stdin?.end();
    if (this.#child.pid !== undefined) await this.#exited;
    // Not awaited: its callback waits for every connection it ever accepted to close.
    this.#listener.close();
    for (const socket of this.#unidentified) socket.destroy();
    await rm(this.#dir, { recursive: true, force: true });
  }

  #kill(token: string, entry: Entry, signal: 'SIGKILL' | ForwardedSignal, whom?: Whom): void {
    if (entry.end !== null || this.#dead) return;
    this.#child.stdin?.write(encodeKill(token, constants.signals[signal], whom));
  }

  /** Reads the 33-byte hello (token, kind), then hands the socket to its launch. */
  #identify(socket: Socket): void {
    this.#unidentified.add(socket);
    socket.once('close', () => this.#unidentified.delete(socket));
    // Permanent: a read error ends the stream ('close'), which is how its consumer learns
    // of it; with no listener at all it would crash the server.
    socket.on('error', () => undefined);
    const drop = () => {
      socket.destroy();
    };
    const onReadable = () => {
      const hello = socket.read(HELLO_BYTES) as Buffer | null;
      if (hello === null) return; // not all of it yet
      socket.off('readable', onReadable);
      socket.off('end', drop);
      this.#unidentified.delete(socket);
      if (hello.length !== HELLO_BYTES) {
        drop(); // cut short by its end
        return;
      }
      const token = hello.subarray(0, LIMIT.tokenHex).toString('latin1');
      const kind = KINDS.get(hello.subarray(LIMIT.tokenHex).toString('latin1'));
      const entry = this.#entries.get(token);
      if (
        entry === undefined ||
        kind === undefined ||
        !entry.kinds.includes(kind) ||
        entry.sockets[kind] !== undefined
      ) {
        socket.destroy();
        return;
      }
      entry.sockets[kind] = socket;
      entry.wake();
    };
    socket.on('readable', onReadable);
    socket.once('end', drop);
  }

  #onReply(line: string): void {
    const reply = parseReply(line);
    const token = reply?.token ?? '';
    const entry = this.#entries.get(token);
    if (reply === null || entry === undefined) return;
    if (reply.type === 'forked') {
      entry.pid = reply.pid;
    } else if (reply.type === 'failed') {
      const end: HelperEnd = { kind: 'not-forked', stage: reply.stage, errno: reply.errno };
      entry.failure = describeEnd(end);
      // A refused request or a failed fork: no helper, so no `ended` will follow.
      if (reply.stage === FAILED.fork || reply.stage === FAILED.request) {
        this.#ended(token, entry, end);
      }
    } else {
      const end: HelperEnd =
        reply.how === STATUS.exit
          ? { kind: 'exit', code: reply.value }
          : { kind: 'signal', signal: reply.value };
      // A helper waits for 'h', sent only once all its connections are in: one that
      // ended before that never ran anything, and its missing connections never come.
      if (!allConnected(entry)) {
        entry.failure ??= `helper ended (${describeEnd(end)}) before it connected`;
      }
      this.#ended(token, entry, end);
    }
    entry.wake();
  }

  /** Records the end; the entry is forgotten unless launch() still collects it. */
  #ended(token: string, entry: Entry, end: HelperEnd): void {
    entry.end = end;
    entry.resolveEnded(end);
    if (!entry.collecting) this.#forget(token);
  }

  #forget(token: string): void {
    this.#entries.delete(token);
    if (this.#entries.size === 0) this.#holdLoop(false);
  }

  /**
   * Refs the fork server's process while a launch or a helper is pending:
   * its end comes in a reply or, once it died, only with its exit, which
   * libuv may deliver after the reply pipe and the helper's connections have
   * closed. close() keeps it ref'd while it waits for that exit.
   */
  #holdLoop(hold: boolean): void {
    if (hold) this.#child.ref();
    else if (this.#closing === null) this.#child.unref();
  }

  /** Every helper dies with it (their death signal); every launch learns so. */
  #onDeath(): void {
    this.#dead = true;
    for (const entry of this.#entries.values()) {
      entry.end = { kind: 'fork-server-died' };
      entry.failure ??= describeEnd(entry.end);
      entry.resolveEnded(entry.end);
      entry.wake();
    }
    this.#entries.clear();
    this.#holdLoop(false);
  }
}

function allConnected(entry: Entry): boolean {
  return entry.kinds.every((kind) => entry.sockets[kind] !== undefined);
}
