/**
 * The parent side of spawner-child.ts: forks it, asks it to time one
 * baseline at a time, and always ends it: asked to close, it removes its
 * cgroups and runc bundle and exits; SIGKILL after a bound.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { LaunchSpec, Limits } from '../../src/isolation/index.js';

/** Options of the spawner child (argv[2] as JSON). */
export interface SpawnerOptions {
  /** The cgroup group of the helper floor's job cgroups. */
  readonly group: string;
  readonly limits: Limits;
  readonly spec: LaunchSpec;
  /** runc's path, or null when it is not installed. */
  readonly runcPath: string | null;
}

/** A request to the spawner: time one start of a variant. */
export interface SpawnerRequest {
  readonly op: 'time';
  readonly variant: 'spawn' | 'helper' | 'runc';
}

/** Replies of the spawner. */
export type SpawnerReply =
  | { readonly op: 'ready'; readonly runc: string }
  | { readonly op: 'timed'; readonly ms: number }
  | { readonly op: 'failed'; readonly message: string };

const childScript = fileURLToPath(new URL('./spawner-child.js', import.meta.url));
const STOP_TIMEOUT_MS = 30_000;

/** A running spawner. */
export interface Spawner {
  /** 'ok', 'absent', or why runc cannot be used. */
  readonly runc: string;
  /** Milliseconds of one start of `variant`, timed in the spawner. */
  time(variant: SpawnerRequest['variant']): Promise<number>;
  /** Ends the spawner once it has removed what it made. */
  close(): Promise<void>;
}

/** Forks the spawner and resolves once its cgroups (and runc bundle) are made. */
export async function startSpawner(options: SpawnerOptions): Promise<Spawner> {
  const child: ChildProcess = fork(childScript, [JSON.stringify(options)], {
    execArgv: ['--enable-source-maps'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = once(child, 'exit');
  const next = (): Promise<SpawnerReply> =>
    new Promise((resolve, reject) => {
      const onExit = (code: number | null): void => {
        child.off('message', onMessage);
        reject(new Error(`bench spawner exited with ${String(code)}`));
      };
      const onMessage = (reply: SpawnerReply): void => {
        child.off('exit', onExit);
        resolve(reply);
      };
      child.once('exit', onExit);
      child.once('message', onMessage);
    });
  const close = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    if (child.connected) child.send({ op: 'close' });
    else child.kill('SIGTERM');
    await exited;
    clearTimeout(timer);
  };
  const ready = await next().catch(async (err: unknown) => {
    await close();
    throw err;
  });
  if (ready.op !== 'ready') {
    await close();
    throw new Error(`bench spawner: ${ready.op === 'failed' ? ready.message : ready.op}`);
  }
  return {
    runc: ready.runc,
    async time(variant) {
      const reply = next();
      child.send({ op: 'time', variant } satisfies SpawnerRequest);
      const answer = await reply;
      if (answer.op !== 'timed')
        throw new Error(`bench spawner: ${answer.op === 'failed' ? answer.message : answer.op}`);
      return answer.ms;
    },
    close,
  };
}
