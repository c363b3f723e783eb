/**
 * The file-system seam of the cgroup code: every cgroupfs access goes through
 * {@link CgroupFs}, so that the cgroup v2 code path can run against a fake
 * cgroupfs (tests/helpers/fake-cgroupfs.ts) that refuses what the kernel
 * refuses, on hosts without cgroup v2 controllers.
 */
import { mkdir, readFile, readdir, rmdir, writeFile } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { ErrorCode, JobworkerError } from '../../errors.js';

/** The operations the cgroup managers perform on a cgroup file system. */
export interface CgroupFs {
  /** Creates a cgroup directory (its parent must exist). EEXIST is an error. */
  mkdir(dir: string): Promise<void>;
  /** Removes an empty cgroup directory; fails with EBUSY while it has members. */
  rmdir(dir: string): Promise<void>;
  /** Writes one value to a cgroup control file (never creates it). */
  write(file: string, value: string): Promise<void>;
  read(file: string): Promise<string>;
  /** Names of the child cgroups of `dir`. */
  children(dir: string): Promise<string[]>;
}

/** The real cgroupfs, through node:fs. */
export const nodeCgroupFs: CgroupFs = {
  async mkdir(dir) {
    await mkdir(dir);
  },
  async rmdir(dir) {
    await rmdir(dir);
  },
  async write(file, value) {
    // 'r+' never creates a file: a missing control file is ENOENT, as on the kernel.
    await writeFile(file, value, { flag: 'r+' });
  },
  async read(file) {
    return readFile(file, 'utf8');
  },
  async children(dir) {
    const entries = await readdir(dir, { withFileTypes: true });
    return entries.filter((e) => e.isDirectory()).map((e) => e.name);
  },
};

/** The errno code of a Node system error, if any. */
export function errnoOf(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string'
    ? err.code
    : undefined;
}

/**
 * A failed cgroupfs operation as `internal` (the host, not the request, is
 * at fault): names the operation (`mkdir`, `rmdir`, `read`, `write "<value>"`),
 * the path and the errno code, with the system error as its cause.
 */
export function cgroupError(op: string, path: string, err: unknown): JobworkerError {
  return new JobworkerError(
    ErrorCode.Internal,
    `cgroup ${op} ${path} failed: ${errnoOf(err) ?? String(err)}`,
    { cause: err },
  );
}

/** Writes a control file; a failure becomes {@link cgroupError} (fail closed). */
export async function writeControl(fs: CgroupFs, file: string, value: string): Promise<void> {
  try {
    await fs.write(file, value);
  } catch (err) {
    throw cgroupError(`write ${JSON.stringify(value)}`, file, err);
  }
}

/** Reads a control file, or null when it does not exist (an optional kernel feature). */
export async function readOptional(fs: CgroupFs, file: string): Promise<string | null> {
  try {
    return await fs.read(file);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return null;
    throw err;
  }
}

/** Parses "key value" lines (memory.events, cpu.stat, memory.oom_control) into numbers. */
export function parseKeyed(text: string | null): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of (text ?? '').split('\n')) {
    const [key, value] = line.trim().split(/\s+/);
    if (key && value !== undefined && /^\d+$/.test(value)) out.set(key, Number(value));
  }
  return out;
}

// Bounded retry of rmdir on EBUSY: a cgroup stays busy for a moment after its
// last task exits (opencontainers/cgroups utils.go RemovePath does the same).
const RMDIR_ATTEMPTS = 12;
const RMDIR_FIRST_DELAY_MS = 2;

/**
 * Removes a cgroup directory and its child cgroups (deepest first), retrying
 * EBUSY with a bounded backoff. A missing directory counts as removed.
 */
export async function removeCgroup(fs: CgroupFs, dir: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await fs.rmdir(dir);
      return;
    } catch (err) {
      const code = errnoOf(err);
      if (code === 'ENOENT') return;
      if (code !== 'EBUSY' || attempt + 1 >= RMDIR_ATTEMPTS) {
        throw cgroupError('rmdir', dir, err);
      }
      // Busy with child cgroups (a leftover a job made as root): remove them
      // first. Otherwise its last tasks are still exiting: back off, retry.
      const children = await fs.children(dir).catch(() => []);
      for (const child of children) await removeCgroup(fs, `${dir}/${child}`);
      if (children.length === 0) await delay(RMDIR_FIRST_DELAY_MS * 2 ** attempt);
    }
  }
}
