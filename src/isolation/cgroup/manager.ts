/**
 * One small interface over the job cgroups, with the implementation (v1,
 * hybrid or v2 hierarchies) chosen once from the detected layout. Each job
 * gets `<own cgroup>/<group>/<job id>` in every hierarchy used; limits are
 * written before the helper puts the job in (fail closed), and everything
 * created is removed again on every path.
 */
import type { HostBudget } from '../host-budget.js';
import type { Limits, Usage } from '../types.js';
import type { ControllerContext, ControllerUsage } from './controller.js';
import type { CgroupKind, CgroupLayout } from './detect.js';
import { type CgroupFs, cgroupError, errnoOf, removeCgroup } from './fs.js';
import { type Hierarchy, prepareHierarchies } from './hierarchies.js';
import { killV1, killUnified, waitPopulatedZero } from './kill.js';

/** The cgroups of one job. */
export interface JobCgroups {
  /** Directories whose cgroup.procs the helper writes the job's pid into (v1). */
  readonly cgroup1Dirs: readonly string[];
  /** The cgroup2 directory for CLONE_INTO_CGROUP (v2 and hybrid), else null. */
  readonly cgroup2Dir: string | null;
  /** Every directory created for the job. */
  readonly dirs: readonly string[];
  /** The limits as the kernel holds them. */
  readLimits(): Promise<Partial<Limits>>;
  /** Kills every process in the job's cgroups (v2 cgroup.kill; v1 freeze, SIGKILL, thaw). */
  kill(): Promise<void>;
  /**
   * Resolves once the unified cgroup reports `populated 0` (an inotify event,
   * not polling); resolves at once without a unified cgroup (pure v1: the
   * helper's exit, or the kill before the removal, is the signal; the removal
   * retries EBUSY) or when `signal` aborts.
   */
  waitEmpty(signal?: AbortSignal): Promise<void>;
  /** OOM kills and usage, read before removal. */
  report(): Promise<{ oomKilled: boolean; usage: Usage }>;
  /** Removes every directory (retrying EBUSY, bounded). */
  remove(): Promise<void>;
}

/** Creates and sweeps job cgroups. */
export interface CgroupManager {
  readonly kind: CgroupKind;
  /**
   * Creates the job's cgroups and writes its limits; on failure removes what
   * it created. A group directory found missing is set up again, once.
   */
  create(jobId: string, limits: Limits): Promise<JobCgroups>;
  /** Kills and removes every job cgroup left below the group (a previous run's); returns how many. */
  sweep(): Promise<number>;
  /** The group directories (`<own>/<group>`) in every hierarchy. */
  readonly groupDirs: readonly string[];
  /**
   * Removes the group directories, which must hold no job cgroup any more
   * (call after every job has ended). The v2 leaf the server moved itself
   * into stays: it holds the server.
   */
  close(): Promise<void>;
}

/** Options of {@link createManager}. */
export interface ManagerOptions {
  readonly fs: CgroupFs;
  /** Name of the directory holding the job cgroups below the server's own cgroup. */
  readonly group: string;
  readonly context: ControllerContext;
  /** The server's pid, moved into a leaf on cgroup v2 (no-internal-processes rule). */
  readonly selfPid: number;
  /** The host budget written on the group directories (hierarchies.ts). */
  readonly budget?: HostBudget;
}

/** Picks the implementation once for the layout, creating the group directories. */
export async function createManager(
  layout: CgroupLayout,
  options: ManagerOptions,
): Promise<CgroupManager> {
  const hierarchies = await prepareHierarchies(layout, options);
  return new Manager(layout, hierarchies, options);
}

class Manager implements CgroupManager {
  readonly kind: CgroupKind;
  readonly groupDirs: readonly string[];
  private readonly layout: CgroupLayout;
  private readonly hierarchies: readonly Hierarchy[];
  private readonly options: ManagerOptions;

  constructor(layout: CgroupLayout, hierarchies: readonly Hierarchy[], options: ManagerOptions) {
    this.kind = layout.kind;
    this.layout = layout;
    this.hierarchies = hierarchies;
    this.options = options;
    this.groupDirs = hierarchies.map((h) => h.group);
  }

  create(jobId: string, limits: Limits): Promise<JobCgroups> {
    return this.createOnce(jobId, limits, true);
  }

  private async createOnce(
    jobId: string,
    limits: Limits,
    mayRecreate: boolean,
  ): Promise<JobCgroups> {
    const { fs, context } = this.options;
    const created: string[] = [];
    const missing: string[] = []; // job dirs whose group directory is gone
    // Hierarchies are independent: set them up side by side (the thread pool
    // runs the writes in parallel); within one, mkdir comes before its limits.
    const results = await Promise.allSettled(
      this.hierarchies.map(async (h) => {
        const dir = `${h.group}/${jobId}`;
        await fs.mkdir(dir).catch((err: unknown) => {
          if (errnoOf(err) === 'ENOENT') missing.push(dir);
          throw cgroupError('mkdir', dir, err);
        });
        created.push(dir);
        for (const c of h.controllers) await c.apply(fs, dir, limits, context);
      }),
    );
    const failed = results.find((r) => r.status === 'rejected');
    if (failed?.status === 'rejected') {
      await Promise.allSettled(created.map((dir) => removeCgroup(fs, dir)));
      if (missing.length === 0 || !mayRecreate) throw failed.reason;
      // The group was removed under the running server (by hand, or by an
      // older server sharing it): set it up again as at start-up, once.
      await prepareHierarchies(this.layout, this.options);
      return this.createOnce(jobId, limits, false);
    }
    return this.job(jobId);
  }

  private job(jobId: string): CgroupsOfJob {
    const dirs = this.hierarchies.map((h) => ({ ...h, dir: `${h.group}/${jobId}` }));
    return new CgroupsOfJob(dirs, this.options.fs);
  }

  async close(): Promise<void> {
    const results = await Promise.allSettled(
      this.groupDirs.map((dir) => removeCgroup(this.options.fs, dir)),
    );
    const failed = results.find((r) => r.status === 'rejected');
    if (failed?.status === 'rejected') throw failed.reason;
  }

  async sweep(): Promise<number> {
    const { fs } = this.options;
    const ids = new Set<string>();
    for (const h of this.hierarchies) {
      for (const name of await fs.children(h.group).catch(() => [])) ids.add(name);
    }
    for (const id of ids) {
      const job = this.job(id);
      await job.kill().catch(() => undefined); // a half-removed leftover may lack some dirs
      await job.remove();
    }
    return ids.size;
  }
}

class CgroupsOfJob implements JobCgroups {
  readonly cgroup1Dirs: readonly string[];
  readonly cgroup2Dir: string | null;
  readonly dirs: readonly string[];
  private readonly hierarchies: readonly (Hierarchy & { dir: string })[];
  private readonly fs: CgroupFs;

  constructor(hierarchies: readonly (Hierarchy & { dir: string })[], fs: CgroupFs) {
    this.hierarchies = hierarchies;
    this.fs = fs;
    this.cgroup1Dirs = hierarchies.filter((h) => h.join === 'procs').map((h) => h.dir);
    this.cgroup2Dir = hierarchies.find((h) => h.join === 'clone')?.dir ?? null;
    this.dirs = hierarchies.map((h) => h.dir);
  }

  async readLimits(): Promise<Partial<Limits>> {
    let out: Partial<Limits> = {};
    for (const h of this.hierarchies) {
      for (const c of h.controllers) out = { ...out, ...(await c.readLimits(this.fs, h.dir)) };
    }
    return out;
  }

  async kill(): Promise<void> {
    if (this.cgroup2Dir !== null) {
      await killUnified(this.fs, this.cgroup2Dir);
      return;
    }
    const freezer = this.hierarchies.find((h) => h.controllers.some((c) => c.name === 'freezer'));
    await killV1(this.fs, freezer?.dir ?? null, this.cgroup1Dirs);
  }

  waitEmpty(signal?: AbortSignal): Promise<void> {
    if (this.cgroup2Dir === null) return Promise.resolve();
    return waitPopulatedZero(this.fs, this.cgroup2Dir, signal);
  }

  async report(): Promise<{ oomKilled: boolean; usage: Usage }> {
    const parts = await Promise.all(
      this.hierarchies.flatMap((h) => h.controllers.map((c) => c.usage(this.fs, h.dir))),
    );
    const merged: ControllerUsage = Object.assign({}, ...parts) as ControllerUsage;
    return {
      oomKilled: (merged.oomKills ?? 0) > 0,
      usage: {
        cpuTimeNs: merged.cpuTimeNs ?? 0,
        peakMemoryBytes: merged.peakMemoryBytes ?? 0,
        ioReadBytes: merged.ioReadBytes ?? 0,
        ioWriteBytes: merged.ioWriteBytes ?? 0,
      },
    };
  }

  async remove(): Promise<void> {
    const results = await Promise.allSettled(this.dirs.map((dir) => removeCgroup(this.fs, dir)));
    const failed = results.find((r) => r.status === 'rejected');
    if (failed?.status === 'rejected') throw failed.reason;
  }
}
