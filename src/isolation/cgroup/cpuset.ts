/**
 * v1 cpuset (cgroup-v1/cpusets.rst): no limit of ours, but a new cpuset has
 * no CPUs and no memory nodes, and no task may join it until it has some.
 */
import { type CgroupFs, writeControl } from './fs.js';

/**
 * Gives the group its parent's CPUs and memory nodes (unless it has some
 * already), and sets its cgroup.clone_children, so that the kernel starts
 * each job cgroup made in it with the same: nothing to write per job.
 */
export async function inheritCpuset(fs: CgroupFs, parent: string, group: string): Promise<void> {
  for (const file of ['cpuset.cpus', 'cpuset.mems']) {
    if ((await fs.read(`${group}/${file}`)).trim() !== '') continue;
    await writeControl(fs, `${group}/${file}`, (await fs.read(`${parent}/${file}`)).trim());
  }
  await writeControl(fs, `${group}/cgroup.clone_children`, '1');
}
