/**
 * The host directories each job gets an empty private tmpfs over
 * (native/jobexec.c make_mounts): /tmp and /var/tmp always, and every other
 * directory that any job could reach and write, found once at start. There,
 * one tenant's job could read, change or delete what another's left (or
 * plant a Unix socket for it), and the files would stay on the host.
 *
 * A job has no supplementary groups, and its uid and gid own no host file
 * outside such directories, so the "other" permission bits are what it gets:
 * - the walk starts at /, follows no symlink, and enters a directory only if
 *   others may search it (o+x): below any other, nothing is reachable;
 * - a directory others may write and search (o+wx, sticky or not) on a
 *   read-write mount is listed, and not entered (its tmpfs hides what is below);
 * - a read-only mount is entered only on the way to a read-write mount below
 *   it: nothing on it can be written, whatever its modes (a read-only root
 *   over 9p took 146 s to walk in CI's emulated VM);
 * - not walked: /proc and /dev (each job mounts its own), /sys (sysfs and the
 *   pseudo file systems below it: nothing there is an unprivileged user's to
 *   create), /tmp and /var/tmp (always private), the state directory (its
 *   job directories would use up the bound), and autofs mounts (the walk
 *   would trigger them);
 * - bounded: SCAN_BOUNDS.maxDepth levels below /, maxVisited directories,
 *   maxFound found; a scan cut short warns, for what lies beyond stays shared.
 * A directory made world-writable after the start is shared until a restart.
 */
import { lstat, readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ErrorCode, JobworkerError } from '../errors.js';
import { type Mount, parseMountinfo } from './cgroup/detect.js';
import { LIMIT } from './protocol.js';

/** Private in every job whatever their mode: the job's scratch space. */
export const ALWAYS_PRIVATE: readonly string[] = ['/tmp', '/var/tmp'];

const NOT_WALKED = ['/proc', '/dev', '/sys'];
const NOT_WALKED_FSTYPES = new Set(['autofs']);

/** How far a scan goes. */
export interface ScanBounds {
  /** Levels below the root examined (/run/lock is level 2). */
  readonly maxDepth: number;
  readonly maxVisited: number;
  readonly maxFound: number;
}

/** The server's bounds: deep enough for /var/lib/php/sessions or /var/www/<site>/<dir>/uploads. */
export const SCAN_BOUNDS: ScanBounds = {
  maxDepth: 5,
  maxVisited: 20_000,
  maxFound: LIMIT.maxPrivateDirs - ALWAYS_PRIVATE.length,
};

/** What a scan found, and whether a bound cut it short. */
export interface ScanResult {
  readonly dirs: readonly string[];
  readonly truncated: boolean;
}

const readOnly = (mount: Mount) =>
  mount.options.includes('ro') || mount.superOptions.includes('ro');

/**
 * Lists the directories below `root` that others may write, as the module
 * comment says; `mounts` (mountinfo) tells read-only and autofs mounts. The
 * walk is breadth first, so that a bound cuts the deepest levels.
 */
export async function scanWorldWritable(
  root: string,
  skip: ReadonlySet<string>,
  mounts: readonly Mount[],
  bounds: ScanBounds,
): Promise<ScanResult> {
  // Later lines are mounted on top of earlier ones on the same path.
  const byPoint = new Map(mounts.map((m) => [m.mountPoint, m]));
  const writable = [...byPoint.values()].filter((m) => !readOnly(m)).map((m) => m.mountPoint);
  const leadsToWritable = (path: string) => writable.some((p) => p.startsWith(`${path}/`));
  const rootMount = byPoint.get(root);
  let level = [{ path: root, readOnly: rootMount !== undefined && readOnly(rootMount) }];
  const dirs: string[] = [];
  let visited = 0;
  for (let depth = 0; depth < bounds.maxDepth; depth++) {
    const next: typeof level = [];
    for (const parent of level) {
      const entries = await readdir(parent.path, { withFileTypes: true }).catch(() => []);
      const paths = entries
        .filter((e) => e.isDirectory())
        .map((e) => join(parent.path, e.name))
        .filter((path) => !skip.has(path));
      visited += paths.length;
      if (visited > bounds.maxVisited) return { dirs, truncated: true };
      const modes = await Promise.all(
        paths.map((p) =>
          lstat(p).then(
            (st) => st.mode,
            () => 0,
          ),
        ),
      );
      for (const [i, path] of paths.entries()) {
        const mount = byPoint.get(path);
        if (mount !== undefined && NOT_WALKED_FSTYPES.has(mount.fstype)) continue;
        const onReadOnly = mount !== undefined ? readOnly(mount) : parent.readOnly;
        const mode = modes[i] ?? 0;
        if ((mode & 0o003) === 0o003 && !onReadOnly) {
          if (dirs.length === bounds.maxFound) return { dirs, truncated: true };
          dirs.push(path);
        } else if ((mode & 0o001) !== 0 && (!onReadOnly || leadsToWritable(path))) {
          next.push({ path, readOnly: onReadOnly });
        }
      }
    }
    level = next;
  }
  return { dirs, truncated: false };
}

/** Scans the host for {@link ALWAYS_PRIVATE} and the world-writable directories; warns if cut short. */
export async function findPrivateDirs(
  stateDir: string,
  warn: (err: JobworkerError) => void,
): Promise<string[]> {
  const mounts = parseMountinfo(await readFile('/proc/self/mountinfo', 'utf8'));
  const skip = new Set([...NOT_WALKED, ...ALWAYS_PRIVATE, resolve(stateDir)]);
  const scan = await scanWorldWritable('/', skip, mounts, SCAN_BOUNDS);
  if (scan.truncated) {
    warn(
      new JobworkerError(
        ErrorCode.Internal,
        `the scan for world-writable host directories stopped at a bound (${SCAN_BOUNDS.maxVisited} visited, ${SCAN_BOUNDS.maxFound} found): any beyond are shared between jobs`,
      ),
    );
  }
  return [...ALWAYS_PRIVATE, ...scan.dirs];
}
