/**
 * What one owner's jobs may hold together: running jobs, and the sums of
 * their memory and task limits. Reserved when a start is accepted, given
 * back when the job has ended (or its start failed), so that one owner
 * cannot take every slot or the whole host budget from the others. The
 * kernel bounds the sum over all owners (the isolation's host budget).
 */
import { ErrorCode, JobworkerError } from '../errors.js';
import type { HostBudget, Limits } from '../isolation/index.js';
import { Budget, type BudgetRule, type Release } from './budget.js';

/** One owner's bounds; 0 leaves a field unbounded. */
export interface OwnerBudget {
  /** Jobs running or starting at once. */
  readonly runningJobs: number;
  /** Sum of the memory limits of those jobs. */
  readonly memoryBytes: number;
  /** Sum of their task limits. */
  readonly pidsMax: number;
}

/** Running jobs per owner by default: a quarter of the server's 256, so four owners can fill it. */
export const DEFAULT_MAX_RUNNING_JOBS_PER_OWNER = 64;

/** Each budget's name in messages; jobworkerd's flag is the same with dashes. */
export const OWNER_BUDGET_NAMES: Readonly<Record<keyof OwnerBudget, string>> = {
  runningJobs: 'max_running_jobs_per_owner',
  memoryBytes: 'max_memory_per_owner',
  pidsMax: 'max_pids_per_owner',
};

const NOUNS: Readonly<Record<keyof OwnerBudget, string>> = {
  runningJobs: 'running jobs',
  memoryBytes: 'bytes of memory limits',
  pidsMax: 'tasks of pids limits',
};

/**
 * The defaults: {@link DEFAULT_MAX_RUNNING_JOBS_PER_OWNER} jobs, and limit
 * sums up to the host budget (one owner alone may use all of it; unbounded
 * without one).
 */
export function defaultOwnerBudget(host: HostBudget | undefined): OwnerBudget {
  return {
    runningJobs: DEFAULT_MAX_RUNNING_JOBS_PER_OWNER,
    memoryBytes: host?.memoryBytes ?? 0,
    pidsMax: host?.pidsMax ?? 0,
  };
}

/** The owners' reservations against one {@link OwnerBudget}. */
export class OwnerBudgets {
  readonly #bounds: OwnerBudget;
  readonly #budget: Budget<keyof OwnerBudget>;

  constructor(bounds: OwnerBudget) {
    this.#bounds = bounds;
    const rule = (key: keyof OwnerBudget): BudgetRule => ({
      name: OWNER_BUDGET_NAMES[key],
      max: bounds[key],
      noun: NOUNS[key],
    });
    this.#budget = new Budget('owner', {
      runningJobs: rule('runningJobs'),
      memoryBytes: rule('memoryBytes'),
      pidsMax: rule('pidsMax'),
    });
  }

  /**
   * Reserves one running job with `limits` for `owner`. A limit that alone
   * exceeds its sum's bound could never fit: invalid_argument, naming the
   * field through `name`. Otherwise resource_exhausted when it does not fit now.
   */
  reserve(owner: string, limits: Limits, name: (field: keyof Limits) => string): Release {
    for (const field of ['memoryBytes', 'pidsMax'] as const) {
      const max = this.#bounds[field];
      if (max > 0 && limits[field] > max) {
        throw new JobworkerError(
          ErrorCode.InvalidArgument,
          `${name(field)}: ${limits[field]} is above the maximum ${max} (${OWNER_BUDGET_NAMES[field]})`,
        );
      }
    }
    return this.#budget.reserve(owner, {
      runningJobs: 1,
      memoryBytes: limits.memoryBytes,
      pidsMax: limits.pidsMax,
    });
  }

  /** What `owner` holds now (tests, diagnostics). */
  held(owner: string): OwnerBudget {
    return this.#budget.held(owner);
  }
}
