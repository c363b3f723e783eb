/**
 * The parent side of server-child.ts: forks a server, waits for its port,
 * sends it requests over IPC, reads its memory from /proc, and always ends
 * it (graceful stop, then SIGKILL after a bound) and removes its temp dirs.
 */
import type * as grpc from '@grpc/grpc-js';
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { clientCredentials, loadIdentity } from '../../src/api/index.js';
import { JobServiceClient } from '../../src/gen/jobworker/v1/job_service.js';

/** Options of a server child (argv[2] as JSON). */
export interface ServerChildOptions {
  readonly kind: 'jobworker' | 'baseline';
  readonly certsDir: string;
  readonly stateDir: string;
  /** Directory name of the job cgroups, distinct from the tests' and jobworkerd's. */
  readonly cgroupGroup: string;
  readonly outputCapBytes?: number;
}

/** Requests to a server child. */
export type ChildRequest =
  | { readonly op: 'memory'; readonly id: number; readonly gc: boolean }
  | {
      readonly op: 'populate';
      readonly id: number;
      readonly count: number;
      readonly concurrency: number;
      readonly argv: string[];
    }
  | { readonly op: 'stop'; readonly id: number };

/** Replies of a server child. */
export type ChildReply =
  | {
      readonly op: 'ready';
      readonly id: 0;
      readonly port: number;
      readonly groupDirs: readonly string[];
      readonly cgroupKind: string;
    }
  | {
      readonly op: 'memory';
      readonly id: number;
      readonly rss: number;
      readonly heapUsed: number;
      /** V8 heap committed (used or not). */
      readonly heapTotal: number;
      readonly external: number;
    }
  | {
      readonly op: 'populated';
      readonly id: number;
      readonly ms: number;
      readonly failed: number;
      readonly firstError: string | null;
    }
  | { readonly op: 'failed'; readonly id: number; readonly message: string };

const childScript = fileURLToPath(new URL('./server-child.js', import.meta.url));
/** How long a graceful stop may take before the child is killed. */
const STOP_TIMEOUT_MS = 60_000;

/** A running server child. */
export interface BenchServer {
  readonly pid: number;
  readonly port: number;
  /** "127.0.0.1:PORT" (clients set the TLS name to localhost). */
  readonly address: string;
  readonly certsDir: string;
  /** The server's state directory (jobs/<id>/output.log, ...). */
  readonly stateDir: string;
  /** The job cgroup group directories (empty for the baseline). */
  readonly groupDirs: readonly string[];
  readonly cgroupKind: string;
  /** A JobService client as `user`; close it with `.close()`. */
  client(user?: string, options?: grpc.ChannelOptions): Promise<JobServiceClient>;
  /** A request over IPC, resolved with its reply. */
  request<R extends ChildReply>(request: DistributiveOmit<ChildRequest, 'id'>): Promise<R>;
  /** A field of /proc/PID/status in bytes (VmHWM, VmRSS). */
  procStatusBytes(field: 'VmHWM' | 'VmRSS'): Promise<number>;
  /** Resets VmHWM to the current RSS (proc(5), clear_refs "5"). */
  resetPeak(): Promise<void>;
  /** Stops the server (gracefully, then SIGKILL) and removes its state directory. */
  close(): Promise<void>;
}

/** Omit over each member of a union. */
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** Forks a server child and resolves once it listens. */
export async function startBenchServer(
  kind: ServerChildOptions['kind'],
  certsDir: string,
  extra: { outputCapBytes?: number; cpuProfDir?: string | null } = {},
): Promise<BenchServer> {
  const stateDir = await mkdtemp(join(tmpdir(), 'jobworker-bench-state-'));
  const options: ServerChildOptions = {
    kind,
    certsDir,
    stateDir,
    cgroupGroup: `jobworker-bench-${String(process.pid)}`,
    ...(extra.outputCapBytes === undefined ? {} : { outputCapBytes: extra.outputCapBytes }),
  };
  const execArgv = ['--enable-source-maps', '--expose-gc'];
  if (extra.cpuProfDir != null) execArgv.push('--cpu-prof', `--cpu-prof-dir=${extra.cpuProfDir}`);
  const child: ChildProcess = fork(childScript, [JSON.stringify(options)], {
    execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = once(child, 'exit');
  let nextId = 1;
  const pending = new Map<number, (reply: ChildReply) => void>();
  child.on('message', (reply: ChildReply) => {
    pending.get(reply.id)?.(reply);
    pending.delete(reply.id);
  });
  const cleanUp = async (groupDirs: readonly string[]): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      if (child.connected) child.send({ op: 'stop', id: 0 });
      else child.kill('SIGTERM');
      await exited;
      clearTimeout(timer);
    }
    // The child removes these itself; this is the backstop for a child that was killed.
    await Promise.all(groupDirs.map((dir) => rmdir(dir).catch(() => undefined)));
    await rm(stateDir, { recursive: true, force: true });
  };
  let ready: Extract<ChildReply, { op: 'ready' }>;
  try {
    ready = await new Promise((resolve, reject) => {
      pending.set(0, (reply) => {
        if (reply.op === 'ready') resolve(reply);
      });
      child.once('exit', (code) => {
        reject(new Error(`bench ${kind} server exited with ${String(code)} before listening`));
      });
    });
  } catch (err) {
    await cleanUp([]);
    throw err;
  }
  const pid = child.pid ?? 0;
  const address = `127.0.0.1:${String(ready.port)}`;
  return {
    pid,
    port: ready.port,
    address,
    certsDir,
    stateDir,
    groupDirs: ready.groupDirs,
    cgroupKind: ready.cgroupKind,
    async client(user = 'alice', channelOptions = {}) {
      const identity = await loadIdentity(certsDir, user);
      return new JobServiceClient(address, clientCredentials(identity), {
        'grpc.ssl_target_name_override': 'localhost',
        'grpc.default_authority': 'localhost',
        ...channelOptions,
      });
    },
    request<R extends ChildReply>(request: DistributiveOmit<ChildRequest, 'id'>): Promise<R> {
      const id = nextId++;
      return new Promise<R>((resolve, reject) => {
        const onExit = (): void => {
          reject(new Error(`bench server exited during ${request.op}`));
        };
        child.once('exit', onExit);
        pending.set(id, (reply) => {
          child.off('exit', onExit);
          if (reply.op === 'failed') reject(new Error(`bench server: ${reply.message}`));
          else resolve(reply as R);
        });
        child.send({ ...request, id });
      });
    },
    async procStatusBytes(field) {
      const status = await readFile(`/proc/${String(pid)}/status`, 'utf8');
      const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status);
      if (match === null) throw new Error(`no ${field} in /proc/${String(pid)}/status`);
      return Number(match[1]) * 1024;
    },
    async resetPeak() {
      await writeFile(`/proc/${String(pid)}/clear_refs`, '5');
    },
    close: () => cleanUp(ready.groupDirs),
  };
}
