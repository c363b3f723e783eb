/**
 * The hierarchies a job's cgroups live in, prepared once at start-up: which
 * controllers are written where, how the helper joins each, and (cgroup v2)
 * the delegation of controllers down to the job cgroups.
 */
import { ErrorCode, JobworkerError } from '../../errors.js';
import type { HostBudget } from '../host-budget.js';
import type { Controller } from './controller.js';
import { cpuacctV1, cpuV1, cpuV2 } from './cpu.js';
import { inheritCpuset } from './cpuset.js';
import type { CgroupLayout } from './detect.js';
import { type CgroupFs, cgroupError, errnoOf, writeControl } from './fs.js';
import { freezerV1 } from './freezer.js';
import { blkioV1, ioV2 } from './io.js';
import { memoryV1, memoryV2 } from './memory.js';
import { pidsV1, pidsV2 } from './pids.js';

/** What preparing the hierarchies needs. */
export interface PrepareOptions {
  readonly fs: CgroupFs;
  /** Name of the directory holding the job cgroups below the server's own cgroup. */
  readonly group: string;
  /** The server's pid, moved into a leaf on cgroup v2 (no-internal-processes rule). */
  readonly selfPid: number;
  /** Written on the group directories; without it the group is unlimited (tests of the fake). */
  readonly budget?: HostBudget;
}

/** One hierarchy as used for jobs: its group directory and the controllers written there. */
export interface Hierarchy {
  readonly group: string;
  readonly controllers: readonly Controller[];
  /** How the helper joins it: CLONE_INTO_CGROUP (the cgroup2 dir) or a cgroup.procs write. */
  readonly join: 'clone' | 'procs';
}

const V1_CONTROLLERS: readonly Controller[] = [cpuV1, cpuacctV1, memoryV1, blkioV1, pidsV1];
const V2_CONTROLLERS: readonly Controller[] = [cpuV2, memoryV2, ioV2, pidsV2];

/** Writes the host budget on a group directory through its controllers that take one. */
async function applyBudget(
  options: PrepareOptions,
  group: string,
  controllers: readonly Controller[],
): Promise<void> {
  const { budget } = options;
  if (budget === undefined) return;
  for (const c of controllers) await c.applyBudget?.(options.fs, group, budget);
}

/** mkdir that accepts an existing directory (group directories survive restarts). */
export async function ensureDir(fs: CgroupFs, dir: string): Promise<void> {
  try {
    await fs.mkdir(dir);
  } catch (err) {
    if (errnoOf(err) !== 'EEXIST') throw cgroupError('mkdir', dir, err);
  }
}

async function prepareV1(layout: CgroupLayout, options: PrepareOptions): Promise<Hierarchy[]> {
  const byDir = new Map<string, Controller[]>();
  // Without cgroup2, stopping uses the v1 freezer.
  const wanted = layout.unified === null ? [...V1_CONTROLLERS, freezerV1] : V1_CONTROLLERS;
  for (const controller of wanted) {
    const own = layout.v1.get(controller.name);
    if (own === undefined) {
      throw new JobworkerError(
        ErrorCode.Internal,
        `cgroup v1 controller "${controller.name}" is not mounted: job limits cannot be enforced`,
      );
    }
    // Co-mounted controllers (cpu,cpuacct) share one directory.
    const list = byDir.get(own) ?? [];
    list.push(controller);
    byDir.set(own, list);
  }
  // Every other mounted hierarchy too (cpuset, devices, name=systemd, ...), with
  // nothing written: there the job would otherwise stay in the server's cgroup.
  for (const own of layout.v1.values()) if (!byDir.has(own)) byDir.set(own, []);
  const hierarchies: Hierarchy[] = [];
  for (const [own, controllers] of byDir) {
    const group = `${own}/${options.group}`;
    await ensureDir(options.fs, group);
    if (layout.v1.get('cpuset') === own) await inheritCpuset(options.fs, own, group);
    await applyBudget(options, group, controllers);
    hierarchies.push({ group, controllers, join: 'procs' });
  }
  if (layout.unified !== null) {
    const group = `${layout.unified}/${options.group}`;
    await ensureDir(options.fs, group);
    hierarchies.push({ group, controllers: [], join: 'clone' });
  }
  return hierarchies;
}

/**
 * cgroup v2 delegation: controllers must be enabled in the subtree_control of
 * every ancestor, and a non-root cgroup with processes cannot enable any
 * ("no internal processes"): the server first moves itself into a leaf
 * `<own>/<group>.server`.
 */
async function prepareV2(layout: CgroupLayout, options: PrepareOptions): Promise<Hierarchy[]> {
  const { fs } = options;
  const own = layout.unified ?? '';
  const names = V2_CONTROLLERS.map((c) => c.name);
  const available = (await fs.read(`${own}/cgroup.controllers`)).trim().split(/\s+/);
  const missing = names.filter((n) => !available.includes(n));
  if (missing.length > 0) {
    throw new JobworkerError(
      ErrorCode.Internal,
      `cgroup v2 controllers missing in ${own}/cgroup.controllers: ${missing.join(' ')}`,
    );
  }
  const enable = names.map((n) => `+${n}`).join(' ');
  try {
    await fs.write(`${own}/cgroup.subtree_control`, enable);
  } catch (err) {
    if (errnoOf(err) !== 'EBUSY') {
      throw cgroupError(`write ${JSON.stringify(enable)}`, `${own}/cgroup.subtree_control`, err);
    }
    const leaf = `${own}/${options.group}.server`;
    await ensureDir(fs, leaf);
    await writeControl(fs, `${leaf}/cgroup.procs`, String(options.selfPid));
    await fs.write(`${own}/cgroup.subtree_control`, enable).catch((again: unknown) => {
      if (errnoOf(again) !== 'EBUSY') {
        throw cgroupError(
          `write ${JSON.stringify(enable)}`,
          `${own}/cgroup.subtree_control`,
          again,
        );
      }
      // Still busy with the server out: other processes share its cgroup (a
      // login session's scope, say). Only the operator can fix that.
      throw new JobworkerError(
        ErrorCode.Internal,
        `cgroup v2: ${own} holds processes other than jobworkerd, so it cannot delegate controllers to job cgroups (the kernel's no-internal-processes rule): start jobworkerd in a cgroup of its own, as deploy/jobworkerd.service does`,
        { cause: again },
      );
    });
  }
  const group = `${own}/${options.group}`;
  await ensureDir(fs, group);
  await writeControl(fs, `${group}/cgroup.subtree_control`, enable);
  await applyBudget(options, group, V2_CONTROLLERS);
  return [{ group, controllers: V2_CONTROLLERS, join: 'clone' }];
}

/** Creates the group directories of the layout's hierarchies (v2: with delegation). */
export function prepareHierarchies(
  layout: CgroupLayout,
  options: PrepareOptions,
): Promise<Hierarchy[]> {
  return layout.kind === 'v2' ? prepareV2(layout, options) : prepareV1(layout, options);
}
