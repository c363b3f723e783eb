/**
 * What a server left behind: job cgroups still present below its group
 * directories, and processes still running as its children or running the
 * native helper. Read from cgroupfs and /proc after its jobs have ended. The
 * server's own fork server (`jobexec --serve`, its child for as long as the
 * server runs) is no leftover; a helper it forked is.
 */
import { readdir, readFile, readlink, realpath } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

/** The native helper binary of this package (native/build/jobexec). */
export const HELPER_PATH = fileURLToPath(new URL('../../../native/build/jobexec', import.meta.url));

/** Leftovers of one server. */
export interface Leftovers {
  /** Job cgroup directories still present. */
  readonly cgroups: readonly string[];
  /** "pid command" of processes whose parent is the server, or that run the helper. */
  readonly processes: readonly string[];
}

async function subdirs(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isDirectory()).map((e) => `${dir}/${e.name}`);
}

/** Finds what the server `serverPid` with job cgroup groups `groupDirs` left. */
export async function findLeftovers(
  serverPid: number,
  groupDirs: readonly string[],
): Promise<Leftovers> {
  const cgroups = (await Promise.all(groupDirs.map(subdirs))).flat();
  const helper = await realpath(HELPER_PATH).catch(() => HELPER_PATH);
  const processes: string[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    // A process may end between readdir and read: skip it.
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => null);
    if (stat === null) continue;
    // Field 4 (ppid) follows the command in parentheses, which may contain spaces.
    const afterComm = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ppid = Number(afterComm[1]);
    const exe = await readlink(`/proc/${name}/exe`).catch(() => '');
    const cmdline = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '');
    const forkServer = ppid === serverPid && cmdline.split('\0')[1] === '--serve';
    if ((ppid === serverPid || exe === helper) && !forkServer) {
      const args = cmdline.split('\0').slice(1, 3).join(' ');
      processes.push(
        `${name} ${stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))} ${args} (parent ${String(ppid)})`,
      );
    }
  }
  return { cgroups, processes };
}
