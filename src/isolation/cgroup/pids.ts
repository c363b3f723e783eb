/** Task count: pids.max, the same file in v1 and v2 (cgroup-v1/pids.rst, cgroup-v2.rst "PID"). */
import type { Controller } from './controller.js';
import { parseLimit } from './controller.js';
import { writeControl } from './fs.js';

function pids(): Controller {
  return {
    name: 'pids',
    async apply(fs, dir, limits) {
      await writeControl(fs, `${dir}/pids.max`, String(limits.pidsMax));
    },
    async applyBudget(fs, dir, budget) {
      await writeControl(fs, `${dir}/pids.max`, String(budget.pidsMax));
    },
    async readLimits(fs, dir) {
      return { pidsMax: parseLimit(await fs.read(`${dir}/pids.max`)) };
    },
    usage() {
      return Promise.resolve({});
    },
  };
}

/** v1 "pids" hierarchy. */
export const pidsV1: Controller = pids();
/** v2 "pids" controller. */
export const pidsV2: Controller = pids();
