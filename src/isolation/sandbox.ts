/**
 * One launch in two phases. prepare: create the job's cgroups (limits
 * written) and fork the helper, whose init builds the namespaces while the
 * command waits for its go. start: let it go,
 * wait for `started` or a failure, then own the helper until the job is
 * gone, its usage read and its cgroups removed.
 */
import type { Socket } from 'node:net';
import { constants } from 'node:os';
import { ErrorCode, JobworkerError, toJobworkerError } from '../errors.js';
import { checkAborted, deadlineSignal, raceAbort } from '../signals.js';
import type { CgroupManager, JobCgroups } from './cgroup/manager.js';
import { describeEnd, type HelperEnd, type HelperProcess } from './fork-server.js';
import { helperError, launchRequest, readStatus } from './helper.js';
import { encodeControl, type HelperEvent, type LaunchRequest } from './protocol.js';
import type { ExitReport, LaunchSpec, PreparedSandbox, Sandbox, SandboxInput } from './types.js';

/** What a launch needs from the isolation instance. */
export interface LaunchContext {
  readonly helper: string;
  /** Forks a helper on the isolation's fork server (fork-server-slot.ts). */
  readonly fork: (request: LaunchRequest, signal?: AbortSignal) => Promise<HelperProcess>;
  readonly manager: CgroupManager;
  /** Host directories each job gets a private tmpfs over (private-dirs.ts), found at start. */
  readonly privateDirs: readonly string[];
  /** Defaults of a LaunchSpec without uid or gid. */
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
  /** The helper's count of the job's output bytes (its `output` line), once sent. */
  output: { stdout: number; stderr: number } | null = null;
  /** How the helper process ended, once it has. */
  end: HelperEnd | null = null;
  /** Resolves once the helper has been reaped and its status channel has closed. */
  readonly done: Promise<void>;
  private onFirst: (() => void) | null = null;

  constructor(proc: HelperProcess) {
    this.proc = proc;
    const statusEnded = new Promise<void>((resolve) => {
      readStatus(
        proc.status,
        (event) => {
          // Not a status of the job: sent before the last line, kept apart from it.
          if (event.type === 'output') {
            this.output = { stdout: event.stdout, stderr: event.stderr };
            return;
          }
          this.first ??= event;
          this.last = event;
          this.onFirst?.();
        },
        resolve,
      );
    });
    this.done = Promise.all([
      proc.ended.then((end) => {
        this.end = end;
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

/** Waits for the cgroups to empty, bounded by EMPTY_WAIT_MS; the timer is always cleared. */
async function waitEmptyBounded(cgroups: JobCgroups): Promise<void> {
  const bound = deadlineSignal(EMPTY_WAIT_MS, 'emptying the job cgroups');
  try {
    await cgroups.waitEmpty(bound.signal);
  } finally {
    bound.dispose();
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

/** See {@link Isolation.prepare}. */
export async function prepare(
  ctx: LaunchContext,
  spec: LaunchSpec,
  signal?: AbortSignal,
): Promise<PreparedSandbox> {
  checkAborted(signal, 'launch');
  const cgroups = await ctx.manager.create(spec.jobId, spec.limits);
  let run: HelperRun;
  try {
    const request = launchRequest(spec, {
      cgroup1Dirs: cgroups.cgroup1Dirs,
      cgroup2Dir: cgroups.cgroup2Dir,
      privateDirs: ctx.privateDirs,
      uid: spec.uid ?? ctx.uid,
      gid: spec.gid ?? ctx.gid,
    });
    run = new HelperRun(await ctx.fork(request, signal));
  } catch (err) {
    await cleanUp(ctx, cgroups);
    checkAborted(signal, 'launch');
    throw toJobworkerError(err, `starting the sandbox helper ${ctx.helper}`);
  }
  let starting: Promise<Sandbox> | null = null;
  let undoing: Promise<void> | null = null;
  // The command waits for the helper's go, so killing the helper ends
  // everything: its init and the namespace follow through the parent-death signal.
  const undo = (): Promise<void> => {
    undoing ??= (async () => {
      run.proc.kill('SIGKILL');
      // Nobody will read these: destroy them, or their fds stay open.
      run.proc.stdout.destroy();
      run.proc.stderr.destroy();
      run.proc.stdin?.destroy();
      await run.done;
      await cleanUp(ctx, cgroups);
    })();
    return undoing;
  };
  const start = async (): Promise<Sandbox> => {
    if (undoing !== null) {
      throw new JobworkerError(ErrorCode.Cancelled, 'launch cancelled before its start');
    }
    if (!signal?.aborted) {
      run.proc.go();
      // An abort ends the wait; the undo below kills the helper.
      await raceAbort(run.firstEvent(), signal).catch(() => undefined);
    }
    const first = run.first;
    // Aborted but started anyway (the abort lost the race with the helper):
    // still a cancelled launch.
    if (first?.type !== 'started' || signal?.aborted) {
      await undo();
      checkAborted(signal, 'launch');
      if (first?.type === 'error') throw helperError(first, spec);
      throw new JobworkerError(
        ErrorCode.Internal,
        `sandbox helper ${ctx.helper} ended without starting ${spec.argv[0] ?? ''}: ${
          run.end ? describeEnd(run.end) : 'no report'
        }`,
      );
    }
    return startedSandbox(ctx, spec, run, cgroups);
  };
  return {
    start() {
      starting ??= start();
      return starting;
    },
    cancel() {
      if (starting !== null) return starting.then(noop, noop);
      return undo();
    },
  };
}

const noop = (): void => undefined;

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

  const stdin =
    proc.stdin === null
      ? null
      : sandboxInput(proc, proc.stdin, spec.tty !== undefined, () => !finished);
  const exited = (async (): Promise<ExitReport> => {
    await run.done;
    finished = true;
    // The job has ended: nothing will read its input any more.
    proc.stdin?.destroy();
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
    const counted = run.output === null ? {} : { outputBytes: run.output };
    if (last?.type === 'exit') return { exitCode: last.code, signal: null, ...data, ...counted };
    if (last?.type === 'signal') {
      return { exitCode: null, signal: last.signal, ...data, ...counted };
    }
    // The helper itself failed or was killed: the job is gone, how is unknown.
    ctx.warn(
      new JobworkerError(
        ErrorCode.Internal,
        `sandbox helper of job ${spec.jobId} ended without the job's status: ${
          last?.type === 'error' ? `${last.stage} ${last.syscall} errno ${last.errno}` : 'no report'
        }`,
      ),
    );
    return { exitCode: null, signal: constants.signals.SIGKILL, ...data, ...counted };
  })();

  return {
    pid: proc.pid,
    stdout: proc.stdout,
    stderr: proc.stderr,
    stdin,
    ended: run.done,
    exited,
    terminate() {
      if (finished || terminated) return;
      terminated = true;
      proc.kill('SIGTERM'); // the helper forwards it to init, init to the job's group
    },
    signal(signal, all) {
      if (!finished) proc.kill(signal, all ? 'all' : 'main');
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
    discardOutput() {
      // The helper's next splice fails with EPIPE: it discards the rest itself,
      // spliced into /dev/null, and counts it in its `output` line.
      proc.stdout.destroy();
      proc.stderr.destroy();
    },
  };
}

/** The input side of a started sandbox: its stdin connection, and control lines on the status one. */
function sandboxInput(
  proc: HelperProcess,
  stream: Socket,
  tty: boolean,
  running: () => boolean,
): SandboxInput {
  // Nothing comes back on it; flowing, its end (the helper closed fd 0) is seen, and
  // 'close' follows. A failed write is no news: only the job's end ends the input.
  stream.resume();
  stream.on('error', () => undefined);
  return {
    stream,
    tty,
    resize(size) {
      if (tty && running()) proc.status.write(encodeControl({ resize: size }));
    },
    interrupt() {
      if (tty && running()) proc.status.write(encodeControl('interrupt'));
    },
  };
}
