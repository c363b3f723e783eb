/**
 * Baseline (b) of start latency: the native helper alone. The job's cgroups
 * are made once with the isolation's own cgroup manager (same hierarchies,
 * same limits); each sample spawns the helper with the isolation's own argv
 * into them and waits for its exit and the close of its status channel,
 * which is the floor any jobworker start pays. The cgroups are reused: an
 * empty cgroup can be joined again. Timed in spawner-child.ts, a small
 * process of its own.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { NOBODY, type LaunchSpec, type Limits } from '../../src/isolation/index.js';
import { blockDeviceOf } from '../../src/isolation/cgroup/block-device.js';
import { detectLayout } from '../../src/isolation/cgroup/detect.js';
import { nodeCgroupFs } from '../../src/isolation/cgroup/fs.js';
import { createManager, type JobCgroups } from '../../src/isolation/cgroup/manager.js';
import { spawnHelper } from '../../src/isolation/helper.js';
import { findPrivateDirs } from '../../src/isolation/private-dirs.js';
import { msSince } from './stats.js';
import { HELPER_PATH } from './leftovers.js';

/** The helper spawned directly into cgroups made once. */
export class HelperFloor {
  readonly #cgroups: JobCgroups;
  readonly #spec: LaunchSpec;
  readonly #privateDirs: readonly string[];

  private constructor(cgroups: JobCgroups, spec: LaunchSpec, privateDirs: readonly string[]) {
    this.#cgroups = cgroups;
    this.#spec = spec;
    this.#privateDirs = privateDirs;
  }

  /** Makes the job cgroups `<own>/<group>/<spec.jobId>` with `limits`. */
  static async create(group: string, limits: Limits, spec: LaunchSpec): Promise<HelperFloor> {
    const manager = await createManager(await detectLayout(), {
      fs: nodeCgroupFs,
      group,
      context: { ioDevice: await blockDeviceOf(tmpdir()) },
      selfPid: process.pid,
    });
    const privateDirs = await findPrivateDirs(tmpdir(), () => undefined);
    return new HelperFloor(await manager.create(spec.jobId, limits), spec, privateDirs);
  }

  /** One start of /bin/true, in milliseconds from spawn to the helper's end. */
  async timeOne(): Promise<number> {
    const start = process.hrtime.bigint();
    const child: ChildProcess = spawnHelper(HELPER_PATH, this.#spec, {
      cgroup1Dirs: this.#cgroups.cgroup1Dirs,
      cgroup2Dir: this.#cgroups.cgroup2Dir,
      privateDirs: this.#privateDirs,
      uid: NOBODY,
      gid: NOBODY,
    });
    let status = '';
    const channel = child.stdio[3];
    channel?.on('data', (chunk: Buffer) => (status += chunk.toString()));
    child.stdout?.resume();
    child.stderr?.resume();
    const closed = channel ? once(channel, 'close') : Promise.resolve();
    await Promise.all([once(child, 'exit'), closed]);
    const ms = msSince(start);
    if (!/^exit 0$/m.test(status))
      throw new Error(`native helper reported: ${JSON.stringify(status)}`);
    return ms;
  }

  /** Removes the cgroups. */
  async close(): Promise<void> {
    await this.#cgroups.remove();
  }
}
