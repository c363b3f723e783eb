/**
 * Finds the cgroup layout of the host and the cgroups the server runs in, from
 * /proc/self/mountinfo (fstype `cgroup` with controller options, or `cgroup2`)
 * and /proc/self/cgroup (`N:ctrl,ctrl:/path`, or `0::/path` for v2); see
 * proc(5) and cgroups(7). v1 controllers next to a cgroup2 mount is "hybrid":
 * each controller is used where it is mounted, and the cgroup2 mount only for
 * cgroup.kill and populated events (as runc does).
 */
import { readFile } from 'node:fs/promises';
import { ErrorCode, JobworkerError } from '../../errors.js';

/** The cgroup versions a host can run. */
export type CgroupKind = 'v1' | 'v2' | 'hybrid';

/** Where the server's own cgroups are: the directory to create job cgroups below. */
export interface CgroupLayout {
  readonly kind: CgroupKind;
  /** v1 controller name -> the server's own cgroup directory in that hierarchy. */
  readonly v1: ReadonlyMap<string, string>;
  /** The server's own cgroup directory on the cgroup2 mount, if one is mounted. */
  readonly unified: string | null;
}

/** One line of mountinfo (proc(5)). */
export interface Mount {
  readonly root: string;
  readonly mountPoint: string;
  /** Per-mount options (rw or ro, nosuid, ...). */
  readonly options: readonly string[];
  readonly fstype: string;
  readonly superOptions: readonly string[];
}

/** Octal escapes of mountinfo (space is \040). */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** The mounts listed in a mountinfo text, in its order (a later mount on a path is on top). */
export function parseMountinfo(text: string): Mount[] {
  const mounts: Mount[] = [];
  for (const line of text.split('\n')) {
    const [left, right] = line.split(' - ');
    if (left === undefined || right === undefined) continue;
    const fields = left.split(' ');
    const [fstype, , superOpts = ''] = right.split(' ');
    const root = fields[3];
    const mountPoint = fields[4];
    if (root === undefined || mountPoint === undefined || fstype === undefined) continue;
    mounts.push({
      root: unescape(root),
      mountPoint: unescape(mountPoint),
      options: (fields[5] ?? '').split(','),
      fstype,
      superOptions: superOpts.split(','),
    });
  }
  return mounts;
}

/** /proc/self/cgroup as hierarchy key ("" for v2, else the comma list) -> path. */
export function parseProcCgroup(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const match = /^(\d+):([^:]*):(.*)$/.exec(line.trim());
    if (match?.[2] !== undefined && match[3] !== undefined) out.set(match[2], match[3]);
  }
  return out;
}

/** The directory of `path` (from /proc/self/cgroup) under a mount whose root is `root`. */
function dirUnder(mount: Mount, path: string): string {
  const root = mount.root === '/' ? '' : mount.root;
  // A path outside the mount's root (another namespace's view) cannot be reached here.
  if (root !== '' && path !== root && !path.startsWith(`${root}/`)) {
    throw new JobworkerError(
      ErrorCode.Internal,
      `own cgroup ${path} is outside the root ${mount.root} of ${mount.mountPoint}`,
    );
  }
  const rel = path.slice(root.length);
  return `${mount.mountPoint}${rel === '/' ? '' : rel}`;
}

/** Computes the layout from the two proc files' texts (pure, for unit tests). */
export function layoutFrom(mountinfo: string, procCgroup: string): CgroupLayout {
  const own = parseProcCgroup(procCgroup);
  const v1 = new Map<string, string>();
  let unified: string | null = null;
  for (const mount of parseMountinfo(mountinfo)) {
    if (mount.fstype === 'cgroup2') {
      const path = own.get('');
      if (path !== undefined && unified === null) unified = dirUnder(mount, path);
      continue;
    }
    if (mount.fstype !== 'cgroup') continue;
    // v1 superblock options list the controllers (and rw, name=..., etc.).
    for (const [key, path] of own) {
      const controllers = key.split(',');
      if (key === '' || !controllers.every((c) => mount.superOptions.includes(c))) continue;
      for (const c of controllers) if (!v1.has(c)) v1.set(c, dirUnder(mount, path));
    }
  }
  if (v1.size === 0 && unified === null) {
    throw new JobworkerError(ErrorCode.Internal, 'no cgroup file system is mounted');
  }
  const kind: CgroupKind = v1.size === 0 ? 'v2' : unified === null ? 'v1' : 'hybrid';
  return { kind, v1, unified };
}

/** Reads this process's layout from /proc. */
export async function detectLayout(): Promise<CgroupLayout> {
  const [mountinfo, procCgroup] = await Promise.all([
    readFile('/proc/self/mountinfo', 'utf8'),
    readFile('/proc/self/cgroup', 'utf8'),
  ]);
  return layoutFrom(mountinfo, procCgroup);
}
