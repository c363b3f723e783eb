/**
 * TEST-ONLY Isolation that runs the command as a plain child process: its own
 * process group (detached), no namespaces, no cgroups, no limits. It lets the
 * job library be tested with real processes independently of the real
 * isolation. kill() SIGKILLs the process group, which does not reach a
 * process that called setsid: tests of that need the real isolation.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { stat } from 'node:fs/promises';
import { constants } from 'node:os';
import { ErrorCode, JobworkerError } from '../../src/errors.js';
import { checkAborted } from '../../src/signals.js';
import type {
  ExitReport,
  Isolation,
  LaunchSpec,
  Limits,
  PreparedSandbox,
  Sandbox,
} from '../../src/isolation/index.js';

/** The limits every plain job reports (none is applied). */
export const PLAIN_LIMITS: Limits = {
  cpuMillis: 1000,
  memoryBytes: 512 * 1024 * 1024,
  ioReadBps: 0,
  ioWriteBps: 0,
  pidsMax: 1024,
};

function signalNumber(name: NodeJS.Signals | null): number | null {
  return name === null ? null : constants.signals[name];
}

/** Signals the job's process group, ignoring "no such process" (it has already gone). */
function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** A plain-process {@link Isolation} for tests. */
export class PlainIsolation implements Isolation {
  /** Limits are not applied here: every job gets the same record of them. */
  resolveLimits(): Limits {
    return PLAIN_LIMITS;
  }

  prepare(spec: LaunchSpec, signal?: AbortSignal): Promise<PreparedSandbox> {
    checkAborted(signal, 'launch');
    // Nothing to make ahead: the process is spawned by start(), once.
    let starting: Promise<Sandbox> | null = null;
    let cancelled = false;
    return Promise.resolve({
      start: () => {
        starting ??= cancelled
          ? Promise.reject(new JobworkerError(ErrorCode.Cancelled, 'launch cancelled'))
          : this.#start(spec, signal);
        return starting;
      },
      cancel: async () => {
        cancelled = true;
        await starting?.catch(() => undefined);
      },
    });
  }

  async #start(spec: LaunchSpec, signal: AbortSignal | undefined): Promise<Sandbox> {
    checkAborted(signal, 'launch');
    // libuv reports a bad cwd as ENOENT like a missing command: check it first to tell them apart.
    const dir = await stat(spec.cwd).catch(() => null);
    if (dir?.isDirectory() !== true) {
      throw new JobworkerError(
        ErrorCode.StartFailed,
        `working directory ${spec.cwd} does not exist`,
      );
    }
    const env = Object.fromEntries(
      spec.env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]),
    );
    const [file, ...args] = spec.argv;
    if (file === undefined) throw new JobworkerError(ErrorCode.InvalidArgument, 'argv is empty');
    // A terminal needs the helper (its own devpts): the tests of terminals run on the real one.
    if (spec.tty !== undefined)
      throw new JobworkerError(ErrorCode.Internal, 'the plain isolation has no terminals');
    const child = spawn(file, args, {
      cwd: spec.cwd,
      env,
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    try {
      await once(child, 'spawn');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const what =
        code === 'EACCES'
          ? 'not executable'
          : code === 'ENOENT'
            ? 'command not found'
            : `spawn failed (${code ?? '?'})`;
      throw new JobworkerError(ErrorCode.StartFailed, `${what}: ${file}`, { cause: err });
    }
    const pid = child.pid;
    if (pid === undefined) throw new JobworkerError(ErrorCode.Internal, `no pid for ${file}`);
    const exited = new Promise<ExitReport>((resolve) => {
      child.once('exit', (code, sig) => {
        // Like a PID namespace whose init ended: what is left in the group goes too.
        signalGroup(pid, 'SIGKILL');
        resolve({
          exitCode: code,
          signal: signalNumber(sig),
          oomKilled: false,
          usage: { cpuTimeNs: 0, peakMemoryBytes: 0, ioReadBytes: 0, ioWriteBytes: 0 },
        });
      });
    });
    const ended = exited.then(() => {
      child.stdin.destroy(); // as the sandbox does: nothing reads it any more
    });
    // Always a pipe (a fixed stdio keeps the streams' types); closed at once without stdin.
    const input = spec.stdin === true ? child.stdin : null;
    if (input === null) child.stdin.end();
    child.stdin.on('error', () => undefined); // EPIPE once the child is gone: `gone` says so
    return {
      pid,
      stdout: child.stdout,
      stderr: child.stderr,
      stdin:
        input === null
          ? null
          : {
              stream: input,
              tty: false,
              resize: () => undefined,
              interrupt: () => undefined,
            },
      ended,
      exited,
      terminate: () => {
        signalGroup(pid, 'SIGTERM');
      },
      // Plain processes have no init: the main process is the group's leader.
      signal: (signal, all) => {
        if (all) signalGroup(pid, signal);
        else if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      },
      kill: async () => {
        signalGroup(pid, 'SIGKILL');
        await exited;
      },
    };
  }
}
