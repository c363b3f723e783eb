/**
 * Memory without swap. v1: memory.limit_in_bytes then
 * memory.memsw.limit_in_bytes (memsw must stay >= the limit, so on a fresh,
 * unlimited cgroup the limit is lowered first), OOM kills from the oom_kill
 * line of memory.oom_control (memory.failcnt stays 0 on an OOM kill),
 * memory.max_usage_in_bytes (cgroup-v1/memory.rst). v2: memory.max,
 * memory.swap.max=0 when swap accounting exists, memory.oom.group=1 (an OOM
 * kills the whole job), memory.events oom_kill and memory.peak
 * (cgroup-v2.rst "Memory").
 */
import type { Controller } from './controller.js';
import { parseLimit } from './controller.js';
import { parseKeyed, readOptional, writeControl } from './fs.js';

/** v1 "memory" hierarchy. */
export const memoryV1: Controller = {
  name: 'memory',
  async apply(fs, dir, limits) {
    const bytes = String(limits.memoryBytes);
    await writeControl(fs, `${dir}/memory.limit_in_bytes`, bytes);
    // memsw exists only with swap accounting (swapaccount=1); without it there is no swap to limit.
    if ((await readOptional(fs, `${dir}/memory.memsw.limit_in_bytes`)) !== null) {
      await writeControl(fs, `${dir}/memory.memsw.limit_in_bytes`, bytes);
    }
  },
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
