/**
 * CPU bandwidth. v1: cpu.cfs_period_us / cpu.cfs_quota_us and cpuacct.usage
 * (cgroup-v1/cpuacct.rst, scheduler/sched-bwc.rst); v2: cpu.max "QUOTA PERIOD"
 * and cpu.stat usage_usec (cgroup-v2.rst "CPU").
 */
import type { Controller } from './controller.js';
import { parseKeyed, writeControl } from './fs.js';

/** CFS period: 100 ms, the kernel default; the quota is this times the core fraction. */
export const CFS_PERIOD_US = 100_000;

function quotaUs(cpuMillis: number): number {
  return Math.round((cpuMillis * CFS_PERIOD_US) / 1000);
}

/** v1 "cpu" hierarchy. */
export const cpuV1: Controller = {
  name: 'cpu',
  async apply(fs, dir, limits) {
    await writeControl(fs, `${dir}/cpu.cfs_period_us`, String(CFS_PERIOD_US));
    await writeControl(fs, `${dir}/cpu.cfs_quota_us`, String(quotaUs(limits.cpuMillis)));
  },
  async readLimits(fs, dir) {
    const quota = Number((await fs.read(`${dir}/cpu.cfs_quota_us`)).trim());
    const period = Number((await fs.read(`${dir}/cpu.cfs_period_us`)).trim());
    return { cpuMillis: quota < 0 ? 0 : Math.round((quota * 1000) / period) };
  },
  usage() {
    return Promise.resolve({}); // read from cpuacct
  },
};

/** v1 "cpuacct" hierarchy: accounting only. */
export const cpuacctV1: Controller = {
  name: 'cpuacct',
  apply() {
    return Promise.resolve();
  },
  readLimits() {
    return Promise.resolve({});
  },
  async usage(fs, dir) {
    return { cpuTimeNs: Number((await fs.read(`${dir}/cpuacct.usage`)).trim()) };
  },
};

/** v2 "cpu" controller. */
export const cpuV2: Controller = {
  name: 'cpu',
  async apply(fs, dir, limits) {
    await writeControl(fs, `${dir}/cpu.max`, `${quotaUs(limits.cpuMillis)} ${CFS_PERIOD_US}`);
  },
  async readLimits(fs, dir) {
    const [quota = 'max', period = String(CFS_PERIOD_US)] = (await fs.read(`${dir}/cpu.max`))
      .trim()
      .split(/\s+/);
    return { cpuMillis: quota === 'max' ? 0 : Math.round((Number(quota) * 1000) / Number(period)) };
  },
  async usage(fs, dir) {
    const stat = parseKeyed(await fs.read(`${dir}/cpu.stat`));
    return { cpuTimeNs: (stat.get('usage_usec') ?? 0) * 1000 };
  },
};
