/**
 * The host-wide budget of all of a server's jobs together, written on its
 * cgroup group (the parent of every job cgroup), so that the kernel bounds
 * their sum whatever each job asked for: by default half of the host's tasks
 * and half of its memory, the other half kept for the host (sshd, the server,
 * its fork server and helpers, which live outside the group). A job's own
 * limits are at most the budget (limits.ts).
 */
import { readFile } from 'node:fs/promises';
import { totalmem } from 'node:os';
import { ErrorCode, JobworkerError } from '../errors.js';

/** What the group's cgroup holds for all jobs together. */
export interface HostBudget {
  /** Memory of all jobs together, without swap (v1 memory.limit_in_bytes and memsw; v2 memory.max). */
  readonly memoryBytes: number;
  /** Tasks of all jobs together (pids.max). */
  readonly pidsMax: number;
}

/** Share of the host's totals the budget takes when the operator sets none. */
export const HOST_BUDGET_SHARE = 0.5;

/** The operator's names of the budget's fields (jobworkerd serve flags). */
export const HOST_BUDGET_FLAGS: Readonly<Record<keyof HostBudget, string>> = {
  memoryBytes: '--host-memory',
  pidsMax: '--host-pids',
};

const PAGE = 4096;

/**
 * The host's totals: MemTotal, and the fewest tasks the kernel allows, the
 * smaller of kernel.pid_max (pids) and kernel.threads-max (tasks).
 */
export async function readHostTotals(): Promise<HostBudget> {
  const read = async (name: string) =>
    Number((await readFile(`/proc/sys/kernel/${name}`, 'utf8')).trim());
  const [pidMax, threadsMax] = await Promise.all([read('pid_max'), read('threads-max')]);
  return { memoryBytes: totalmem(), pidsMax: Math.min(pidMax, threadsMax) };
}

/**
 * The budget: each field as the operator set it, or {@link HOST_BUDGET_SHARE}
 * of the host's total (memory rounded down to whole pages). Refuses
 * (invalid_argument, naming the flag) a value above the host's total, where
 * the budget would keep nothing for the host.
 */
export function resolveHostBudget(
  totals: HostBudget,
  requested: Partial<HostBudget> = {},
): HostBudget {
  const pick = (field: keyof HostBudget, fallback: number): number => {
    const value = requested[field];
    if (value === undefined) return fallback;
    if (!(Number.isSafeInteger(value) && value >= 1 && value <= totals[field])) {
      throw new JobworkerError(
        ErrorCode.InvalidArgument,
        `${HOST_BUDGET_FLAGS[field]}: ${value} is not between 1 and the host's total ${totals[field]}`,
      );
    }
    return value;
  };
  return {
    memoryBytes: pick(
      'memoryBytes',
      Math.floor((totals.memoryBytes * HOST_BUDGET_SHARE) / PAGE) * PAGE,
    ),
    pidsMax: pick('pidsMax', Math.floor(totals.pidsMax * HOST_BUDGET_SHARE)),
  };
}
