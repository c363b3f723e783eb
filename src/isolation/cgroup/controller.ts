import type { HostBudget } from '../host-budget.js';
import type { Limits } from '../types.js';
import type { CgroupFs } from './fs.js';

/** What a controller contributes to the exit report. */
export interface ControllerUsage {
  cpuTimeNs?: number;
  peakMemoryBytes?: number;
  ioReadBytes?: number;
  ioWriteBytes?: number;
  /** The kernel's oom_kill counter of the job's cgroup. */
  oomKills?: number;
}

/** Facts about the host a controller needs to write its limits. */
export interface ControllerContext {
  /** "MAJ:MIN" of the whole disk backing the state directory, or null (then IO limits are refused). */
  readonly ioDevice: string | null;
}

/**
 * One cgroup controller in one cgroup version: writes the limits of a job's
 * cgroup before the job runs, reads them back, and reads usage afterwards.
 * One file per controller mirrors the kernel documents
 * (Documentation/admin-guide/cgroup-v1/*.rst, cgroup-v2.rst).
 */
export interface Controller {
  /** The controller's name in /proc/self/cgroup (v1) or cgroup.controllers (v2). */
  readonly name: string;
  apply(fs: CgroupFs, dir: string, limits: Limits, ctx: ControllerContext): Promise<void>;
  /**
   * Writes the host budget on the group directory, the parent of every job
   * cgroup (memory and pids only): the kernel then bounds the jobs' sum.
   */
  applyBudget?(fs: CgroupFs, dir: string, budget: HostBudget): Promise<void>;
  /** The limits as the kernel now holds them (for checks and tests). */
  readLimits(fs: CgroupFs, dir: string): Promise<Partial<Limits>>;
  usage(fs: CgroupFs, dir: string): Promise<ControllerUsage>;
}

/** Parses a non-negative integer control value; "max" reads as 0 (no limit). */
export function parseLimit(text: string): number {
  const value = text.trim();
  return value === 'max' || value === '-1' ? 0 : Number(value);
}
