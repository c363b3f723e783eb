/**
 * Memory without swap. v1: memory.limit_in_bytes and
 * memory.memsw.limit_in_bytes (memsw must stay >= the limit, so the limit is
 * lowered first unless memsw is below the new value, as in a group kept from
 * a previous run with a smaller budget), OOM kills from the oom_kill
 * line of memory.oom_control (memory.failcnt stays 0 on an OOM kill),
 * memory.max_usage_in_bytes (cgroup-v1/memory.rst). v2: memory.max,
 * memory.swap.max=0 when swap accounting exists, memory.oom.group=1 (an OOM
 * kills the whole job), memory.events oom_kill and memory.peak
 * (cgroup-v2.rst "Memory").
 */
import type { Controller } from './controller.js';
import { parseLimit } from './controller.js';
import { type CgroupFs, parseKeyed, readOptional, writeControl } from './fs.js';

/** Sets a v1 memory limit and, with swap accounting, the same memory+swap limit. */
async function limitV1(fs: CgroupFs, dir: string, bytes: number): Promise<void> {
  const limit = `${dir}/memory.limit_in_bytes`;
  const memsw = `${dir}/memory.memsw.limit_in_bytes`;
  // memsw exists only with swap accounting (swapaccount=1); without it there is no swap to limit.
  const current = await readOptional(fs, memsw);
  if (current === null) return writeControl(fs, limit, String(bytes));
  const order = bytes > Number(current.trim()) ? [memsw, limit] : [limit, memsw];
  for (const file of order) await writeControl(fs, file, String(bytes));
}

/** v1 "memory" hierarchy. */
export const memoryV1: Controller = {
  name: 'memory',
  apply: (fs, dir, limits) => limitV1(fs, dir, limits.memoryBytes),
  applyBudget: (fs, dir, budget) => limitV1(fs, dir, budget.memoryBytes),
  async readLimits(fs, dir) {
    return { memoryBytes: parseLimit(await fs.read(`${dir}/memory.limit_in_bytes`)) };
  },
  async usage(fs, dir) {
    const oom = parseKeyed(await fs.read(`${dir}/memory.oom_control`));
    return {
      peakMemoryBytes: Number((await fs.read(`${dir}/memory.max_usage_in_bytes`)).trim()),
      oomKills: oom.get('oom_kill') ?? 0,
    };
  },
};

/** v2 "memory" controller. */
export const memoryV2: Controller = {
  name: 'memory',
  async apply(fs, dir, limits) {
    await writeControl(fs, `${dir}/memory.max`, String(limits.memoryBytes));
    if ((await readOptional(fs, `${dir}/memory.swap.max`)) !== null) {
      await writeControl(fs, `${dir}/memory.swap.max`, '0');
    }
    await writeControl(fs, `${dir}/memory.oom.group`, '1');
  },
  // No memory.oom.group on the group: an OOM there kills one job, not all of them.
  async applyBudget(fs, dir, budget) {
    await writeControl(fs, `${dir}/memory.max`, String(budget.memoryBytes));
  },
  async readLimits(fs, dir) {
    return { memoryBytes: parseLimit(await fs.read(`${dir}/memory.max`)) };
  },
  async usage(fs, dir) {
    const events = parseKeyed(await fs.read(`${dir}/memory.events`));
    // memory.peak appeared in Linux 5.19; older kernels report 0.
    const peak = await readOptional(fs, `${dir}/memory.peak`);
    return {
      peakMemoryBytes: peak === null ? 0 : parseLimit(peak),
      oomKills: events.get('oom_kill') ?? 0,
    };
  },
};
