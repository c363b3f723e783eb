/**
 * Ending every process of a job's cgroups, and waiting for them to be gone.
 * cgroup2: `cgroup.kill` (Linux 5.14+) and `populated 0` in cgroup.events,
 * which raises a file-modified (inotify) event (cgroup-v2.rst "Core Interface
 * Files"). Pure v1 has neither: freeze, SIGKILL each member, thaw
 * (runc signalAllProcesses); the helper's exit after its init died then says
 * the job is gone.
 */
import { watch } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import { type CgroupFs, cgroupError, errnoOf, writeControl } from './fs.js';

/**
 * cgroup2: kills every process of the cgroup and its descendants.
 * TODO(old kernels): before Linux 5.14 there is no cgroup.kill; a freeze
 * (cgroup.freeze) + SIGKILL + thaw fallback like killV1's would be needed.
 */
export async function killUnified(fs: CgroupFs, dir: string): Promise<void> {
  try {
    await fs.write(`${dir}/cgroup.kill`, '1');
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return; // already removed: nothing left to kill
    throw cgroupError('write "1"', `${dir}/cgroup.kill`, err);
  }
}

// The v1 freezer has no notification for "frozen"; the kernel docs tell to
// re-read freezer.state. Bounded: 50 reads about 100 ms apart at most.
const FREEZE_READS = 50;

/** v1: freeze, SIGKILL every member of every hierarchy, thaw (the kill lands on thaw). */
export async function killV1(
  fs: CgroupFs,
  freezer: string | null,
  dirs: readonly string[],
): Promise<void> {
  if (freezer !== null) {
    await writeControl(fs, `${freezer}/freezer.state`, 'FROZEN');
    for (let i = 0; i < FREEZE_READS; i++) {
      if ((await fs.read(`${freezer}/freezer.state`)).trim() === 'FROZEN') break;
      await delay(Math.min(2 ** i, 100));
    }
  }
  try {
    for (const dir of [...(freezer === null ? [] : [freezer]), ...dirs]) {
      const procs = await fs.read(`${dir}/cgroup.procs`).catch(() => '');
      for (const pid of procs.split('\n').filter((p) => /^\d+$/.test(p))) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // ESRCH: it exited meanwhile.
        }
      }
    }
  } finally {
    if (freezer !== null) await writeControl(fs, `${freezer}/freezer.state`, 'THAWED');
  }
}

/** Whether cgroup.events says `populated 0`. */
function isEmpty(events: string): boolean {
  return /^populated 0$/m.test(events);
}

/**
 * Resolves once `dir`'s cgroup.events reads `populated 0`, or when the cgroup
 * is gone or `signal` aborts. Watching first and reading second closes the
 * race with a change between the two.
 */
export function waitPopulatedZero(fs: CgroupFs, dir: string, signal?: AbortSignal): Promise<void> {
  const file = `${dir}/cgroup.events`;
  return new Promise<void>((resolve) => {
    let done = false;
    let watcher: ReturnType<typeof watch> | null = null;
    const finish = () => {
      if (done) return;
      done = true;
      watcher?.close();
      signal?.removeEventListener('abort', finish);
      resolve();
    };
    const check = () => {
      fs.read(file).then(
        (text) => {
          if (isEmpty(text)) finish();
        },
        finish, // ENOENT: removed, hence empty
      );
    };
    if (signal?.aborted) {
      finish();
      return;
    }
    signal?.addEventListener('abort', finish, { once: true });
    try {
      // Persistent: a pending wait must keep the process alive; finish() closes it.
      watcher = watch(file, check);
      watcher.on('error', finish);
    } catch {
      finish();
      return;
    }
    check();
  });
}
