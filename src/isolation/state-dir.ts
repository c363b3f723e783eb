/**
 * What a server owns of its state directory: the directory's lock, so that
 * one server at a time uses it, and the name of its cgroup group, so that a
 * server only ever sweeps or removes job cgroups it made.
 *
 * The lock is an exclusive flock(2) on `<stateDir>/jobworkerd.lock`. Node has
 * no flock: the native helper's `--lock` mode takes it on a descriptor it
 * shares with this process (native/lock.c). A flock lock belongs to the open
 * file description, so it stays held after the helper exits, until this
 * process closes its descriptor or dies: a crashed server leaves no stale
 * lock. Node opens every file O_CLOEXEC, so neither the fork server nor a job
 * inherits the descriptor (a job outliving a crash would otherwise hold it).
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, JobworkerError } from '../errors.js';
import { checkAborted } from '../signals.js';
import { runHelperMode } from './helper-mode.js';

/** The lock file's name in the state directory; it holds the locking server's pid. */
export const LOCK_FILE = 'jobworkerd.lock';

// native/lock.c's exit codes.
const LOCKED = 0;
const HELD = 1;

/** Another server holds the state directory's lock. */
export class StateDirInUseError extends JobworkerError {
  /** The holder's pid as it wrote it in the lock file, if it did. */
  readonly holderPid: number | null;

  constructor(stateDir: string, holderPid: number | null) {
    super(
      ErrorCode.Unavailable,
      `state directory ${stateDir} is in use by another jobworkerd (pid ${holderPid ?? 'not recorded yet'}); stop that one or use another state directory`,
    );
    this.holderPid = holderPid;
  }
}

/** A held flock lock. */
export interface FileLock {
  /** Empties the lock file and closes it, which releases the lock. Idempotent. */
  release(): Promise<void>;
}

/** How {@link lockFile} takes its lock. */
export interface LockFileOptions {
  /** Wait for another holder to release it (default: refuse at once, `held`). */
  readonly wait?: boolean;
  /** Ends a wait: the helper is killed and the lock is not taken. */
  readonly signal?: AbortSignal;
}

/**
 * Takes an exclusive flock on `file` (created 0600) through `helper`'s
 * `--lock` mode and writes this process's pid in it. Resolves with the lock,
 * or with `held` and the pid the holder wrote (null if none yet) when
 * another open file description holds it and `wait` is not set. Rejects
 * (internal) if the helper cannot take it, or with the signal's reason.
 */
export async function lockFile(
  file: string,
  helper: string,
  options: LockFileOptions = {},
): Promise<FileLock | { readonly held: number | null }> {
  const handle = await open(
    file,
    constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW,
    0o600,
  );
  try {
    checkAborted(options.signal);
    // A helper still waiting in flock is killed: then the lock is not taken.
    const { code, stderr } = await runHelperMode(
      helper,
      options.wait === true ? ['--lock', '--wait'] : ['--lock'],
      { fd3: handle.fd, signal: options.signal },
    );
    checkAborted(options.signal);
    if (code === HELD) {
      const text = (await handle.readFile('utf8')).trim();
      await handle.close();
      return { held: /^[1-9]\d*$/.test(text) ? Number(text) : null };
    }
    if (code !== LOCKED) {
      throw new JobworkerError(
        ErrorCode.Internal,
        `cannot lock ${file}: the native helper exited with ${code ?? 'a signal'}: ${stderr}`,
      );
    }
    await handle.truncate(0);
    await handle.write(`${process.pid}\n`, 0);
  } catch (err) {
    await handle.close();
    throw err;
  }
  let released: Promise<void> | null = null;
  return {
    release() {
      released ??= (async () => {
        try {
          await handle.truncate(0);
        } finally {
          await handle.close();
        }
      })();
      return released;
    },
  };
}

/**
 * Takes the state directory's lock without waiting; rejects with
 * {@link StateDirInUseError} if another server holds it, `internal` if the
 * helper cannot take it.
 */
export async function lockStateDir(stateDir: string, helper: string): Promise<FileLock> {
  const lock = await lockFile(join(stateDir, LOCK_FILE), helper);
  if ('held' in lock) throw new StateDirInUseError(stateDir, lock.held);
  return lock;
}

/**
 * The cgroup group of a state directory: `jobworker-` and a short hash of its
 * real path (tests and benchmarks name theirs `jobworker-test-...`, never hex).
 */
export async function groupOfStateDir(stateDir: string): Promise<string> {
  const digest = createHash('sha256')
    .update(await realpath(stateDir))
    .digest('hex');
  return `jobworker-${digest.slice(0, 12)}`;
}
