/**
 * One launch: create the job's cgroups (limits written), spawn the helper,
 * wait for `started` or a failure, then own the helper until the job is gone,
 * its usage read and its cgroups removed.
 */
import { constants } from 'node:os';
import { abortError, ErrorCode, JobworkerError, toJobworkerError } from '../errors.js';
import type { CgroupManager, JobCgroups } from './cgroup/manager.js';
import type { ForkServer, HelperProcess } from './fork-server.js';
import { helperError, launchRequest, readStatus } from './helper.js';
import type { HelperEvent } from './protocol.js';
import type { ExitReport, LaunchSpec, Sandbox } from './types.js';

/** What a launch needs from the isolation instance. */
export interface LaunchContext {
  readonly helper: string;
  /** The running fork server, started on first use and again if it died. */
  readonly forkServer: () => Promise<ForkServer>;
  readonly manager: CgroupManager;
  readonly uid: number;
  readonly gid: number;
  /** Reports a failure that must not fail the job (usage unreadable, cgroup not removable). */
  readonly warn: (err: JobworkerError) => void;
}

// How long to wait for the unified cgroup to report `populated 0` after the
// helper exited (processes killed with the PID namespace are still being torn
// down). A bound, not a synchronisation: removal then retries EBUSY.
const EMPTY_WAIT_MS = 10_000;

const ZERO_USAGE = { cpuTimeNs: 0, peakMemoryBytes: 0, ioReadBytes: 0, ioWriteBytes: 0 };

/** The helper process and what it reported, with one promise for its end. */
class HelperRun {
  readonly proc: HelperProcess;
  first: HelperEvent | null = null;
  last: HelperEvent | null = null;
  /** How the helper process ended ("exit code 0"), once it has. */
  how: string | null = null;
  /** Resolves once the helper has been reaped and its status channel has closed. */
  readonly done: Promise<void>;
  private onFirst: (() => void) | null = null;

  constructor(proc: HelperProcess) {
    this.proc = proc;
    const statusEnded = new Promise<void>((resolve) => {
      readStatus(
        proc.status,
        (event) => {
          this.first ??= event;
          this.last = event;
          this.onFirst?.();
        },
        resolve,
      );
    });
    this.done = Promise.all([
      proc.ended.then((how) => {
        this.how = how;
      }),
      statusEnded,
    ]).then(() => {
      this.onFirst?.();
    });
  }

  /** Resolves at the first status event or at the helper's end. */
  firstEvent(): Promise<void> {
    if (this.first !== null) return Promise.resolve();
    return Promise.race([this.done, new Promise<void>((resolve) => (this.onFirst = resolve))]);
  }
}

/**
 * Waits for `ready`; its rejection reason, or the abort's, as a value (null:
 * go ahead). An abort does not wait for `ready` to settle.
 */
async function waitReady(
  ready: Promise<unknown> | undefined,
  signal: AbortSignal | undefined,
): Promise<{ readonly reason: unknown } | null> {
  if (ready === undefined) return null;
  let onAbort = () => {};
  const aborted = new Promise<{ readonly reason: unknown }>((resolve) => {
    onAbort = () => {
      if (signal) resolve({ reason: abortError(signal, 'launch cancelled by the caller') });
    };
  });
  signal?.addEventListener('abort', onAbort, { once: true });
  if (signal?.aborted) onAbort();
  try {
    return await Promise.race([
      ready.then(
        () => null,
        (reason: unknown) => ({ reason }),
      ),
      aborted,
    ]);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

/** Waits for the cgroups to empty, bounded by EMPTY_WAIT_MS; the timer is always cleared. */
async function waitEmptyBounded(cgroups: JobCgroups): Promise<void> {
  const bound = new AbortController();
  const timer = setTimeout(() => {
    bound.abort();
  }, EMPTY_WAIT_MS);
  try {
    await cgroups.waitEmpty(bound.signal);
  } finally {
    clearTimeout(timer);
  }
}

/** Kills what is left, then removes the cgroups; errors are warnings. */
async function cleanUp(ctx: LaunchContext, cgroups: JobCgroups): Promise<void> {
  await cgroups.kill().catch((err: unknown) => {
    ctx.warn(toJobworkerError(err, 'cleaning up job cgroups'));
  });
  await waitEmptyBounded(cgroups);
  await cgroups.remove().catch((err: unknown) => {
    ctx.warn(toJobworkerError(err, 'removing job cgroups'));
  });
}

/** See {@link Isolation.launch}. */
export async function launch(
  ctx: LaunchContext,
  spec: LaunchSpec,
  signal?: AbortSignal,
  ready?: Promise<unknown>,
): Promise<Sandbox> {
  // Handled from the start: it may reject before the launch gets to it.
  ready?.catch(() => undefined);
  if (signal?.aborted) throw abortError(signal, 'launch cancelled by the caller');
  const cgroups = await ctx.manager.create(spec.jobId, spec.limits);
  let run: HelperRun;
  try {
    const request = launchRequest(spec, {
      cgroup1Dirs: cgroups.cgroup1Dirs,
      cgroup2Dir: cgroups.cgroup2Dir,
      uid: ctx.uid,
      gid: ctx.gid,
    });
    const server = await ctx.forkServer();
    let proc: HelperProcess;
    try {
      proc = await server.launch(request, signal);
    } catch (err) {
      // It died between the check and the request (nothing ran: a helper runs only once
      // the server holds its connections): once more on a new one.
      if (server.alive || signal?.aborted) throw err;
      proc = await (await ctx.forkServer()).launch(request, signal);
    }
    run = new HelperRun(proc);
  } catch (err) {
    await cleanUp(ctx, cgroups);
    if (signal?.aborted) throw abortError(signal, 'launch cancelled by the caller');
    throw toJobworkerError(err, `starting the sandbox helper ${ctx.helper}`);
  }
  // A cancelled launch kills the helper; its init and the namespace follow
  // through the parent-death signal.
  const onAbort = () => {
    run.proc.kill('SIGKILL');
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  if (signal?.aborted) onAbort(); // aborted while the helper connected
  // The helper waits (before its clone) until told to go: what the caller does
  // meanwhile (persisting the job) overlaps the cgroups and the fork.
  const notReady = await waitReady(ready, signal);
  try {
    if (notReady === null) {
      run.proc.go();
      await run.firstEvent();
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  const first = run.first;
  // Aborted but started anyway (the kill lost the race with the helper):
  // still a cancelled launch, and the helper is already being killed.
  if (notReady !== null || first?.type !== 'started' || signal?.aborted) {
    run.proc.kill('SIGKILL');
    // Nobody will read these: destroy them, or their fds stay open.
    run.proc.stdout.destroy();
    run.proc.stderr.destroy();
    await run.done;
    await cleanUp(ctx, cgroups);
    if (notReady !== null) throw notReady.reason;
    if (signal?.aborted) throw abortError(signal, 'launch cancelled by the caller');
    if (first?.type === 'error') throw helperError(first, spec);
    throw new JobworkerError(
      ErrorCode.Internal,
      `sandbox helper ${ctx.helper} ended without starting ${spec.argv[0] ?? ''}: ${
        run.how ?? 'no report'
      }`,
    );
  }
  return startedSandbox(ctx, spec, run, cgroups);
}

function startedSandbox(
  ctx: LaunchContext,
  spec: LaunchSpec,
  run: HelperRun,
  cgroups: JobCgroups,
): Sandbox {
  const { proc } = run;
  let finished = false;
  let terminated = false;
  let killing: Promise<void> | null = null;

  const exited = (async (): Promise<ExitReport> => {
    await run.done;
    finished = true;
    await waitEmptyBounded(cgroups);
    let data = { oomKilled: false, usage: ZERO_USAGE };
    try {
      data = await cgroups.report();
    } catch (err) {
      ctx.warn(toJobworkerError(err, `reading usage of job ${spec.jobId}`));
    }
    // Empty already (waited above, or the helper's exit on pure v1): no kill needed.
    await cgroups.remove().catch((err: unknown) => {
      ctx.warn(toJobworkerError(err, `removing the cgroups of job ${spec.jobId}`));
    });
    const last = run.last;
    if (last?.type === 'exit') return { exitCode: last.code, signal: null, ...data };
    if (last?.type === 'signal') return { exitCode: null, signal: last.signal, ...data };
    // The helper itself failed or was killed: the job is gone, how is unknown.
    ctx.warn(
      new JobworkerError(
        ErrorCode.Internal,
        `sandbox helper of job ${spec.jobId} ended without the job's status: ${
          last?.type === 'error' ? `${last.stage} ${last.syscall} errno ${last.errno}` : 'no report'
        }`,
      ),
    );
    return { exitCode: null, signal: constants.signals.SIGKILL, ...data };
  })();

  return {
    pid: proc.pid,
    stdout: proc.stdout,
    stderr: proc.stderr,
    exited,
    terminate() {
      if (finished || terminated) return;
      terminated = true;
      proc.kill('SIGTERM'); // the helper forwards it to init, init to the job's group
    },
    kill() {
      killing ??= (async () => {
        if (!finished) {
          try {
            await cgroups.kill();
          } catch (err) {
            ctx.warn(toJobworkerError(err, `killing job ${spec.jobId}`));
            proc.kill('SIGKILL'); // backstop: init dies with it, and the namespace with init
          }
        }
        await run.done;
      })();
      return killing;
    },
  };
}
