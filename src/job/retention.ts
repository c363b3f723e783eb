/**
 * Retention of finished jobs: which ones to remove, by age, by the disk
 * budget of their output, and by count (total and per owner: a job without
 * output still holds its record, argv included, in memory). Pure, so that the rules are tested without files
 * or clocks; the JobManager applies the result (retention-sweep in
 * manager.ts). Running jobs are never candidates: the caller passes finished
 * jobs only.
 */

/** How long a finished job and its output are kept. TODO(configuration): make it a server option. */
export const DEFAULT_RETENTION_MS = 24 * 60 * 60 * 1000;
/** Most output-log bytes kept for finished jobs together. TODO(configuration): make it a server option. */
export const DEFAULT_DISK_BUDGET_BYTES = 10 * 1024 * 1024 * 1024;
/** Most finished jobs kept together. TODO(configuration): make it a server option. */
export const DEFAULT_MAX_FINISHED_JOBS = 10_000;
/** Most finished jobs kept of one owner. TODO(configuration): make it a server option. */
export const DEFAULT_MAX_FINISHED_JOBS_PER_OWNER = 1000;
/**
 * Most bytes of argv and working directories kept in memory for finished
 * jobs together (an argv may be 128 KiB). TODO(configuration): make it a server option.
 */
export const DEFAULT_RECORD_BUDGET_BYTES = 256 * 1024 * 1024;
/**
 * Period of the age check. Time passing has no notification, so this one
 * timer exists; the budget rule runs when a job finishes instead.
 */
export const RETENTION_SWEEP_INTERVAL_MS = 60 * 60 * 1000;

/** What retention needs to know of one finished job. */
export interface RetentionCandidate {
  readonly id: string;
  readonly owner: string;
  readonly finishedAtMs: number;
  /** Bytes of its output log on disk. */
  readonly logBytes: number;
  /** Bytes its record holds in memory beyond a fixed size: its argv and working directory. */
  readonly recordBytes: number;
}

/** The rules, with their limits. */
export interface RetentionPolicy {
  readonly retentionMs: number;
  readonly diskBudgetBytes: number;
  readonly maxJobs: number;
  readonly maxJobsPerOwner: number;
  readonly recordBudgetBytes: number;
}

/** Every {@link RemovalReason}. */
export const REMOVAL_REASONS = [
  'age',
  'disk_budget',
  'owner_count',
  'count',
  'record_budget',
] as const;

/** Why retention removes a job (for the log and the metrics). */
export type RemovalReason = (typeof REMOVAL_REASONS)[number];

/**
 * Marks in `out`, oldest first, jobs of `byAge` not marked yet, while the
 * `weight` of the unmarked ones is above `limit`.
 */
function trim(
  byAge: readonly RetentionCandidate[],
  out: Map<string, RemovalReason>,
  reason: RemovalReason,
  weight: (job: RetentionCandidate) => number,
  limit: number,
): void {
  let total = 0;
  for (const job of byAge) if (!out.has(job.id)) total += weight(job);
  for (const job of byAge) {
    if (total <= limit) break;
    if (out.has(job.id)) continue;
    out.set(job.id, reason);
    total -= weight(job);
  }
}

/**
 * The jobs to remove now: every job finished at least `retentionMs` ago,
 * then, oldest finished first, as many more as needed to bring the total
 * log bytes of the rest within `diskBudgetBytes`, each owner's count within
 * `maxJobsPerOwner`, the count of all within `maxJobs`, and the bytes of
 * their records within `recordBudgetBytes`.
 */
export function selectForRemoval(
  finished: readonly RetentionCandidate[],
  now: number,
  policy: RetentionPolicy,
): Map<string, RemovalReason> {
  const out = new Map<string, RemovalReason>();
  // Oldest first; ties broken by id so that the choice is deterministic.
  const byAge = [...finished].sort(
    (a, b) => a.finishedAtMs - b.finishedAtMs || (a.id < b.id ? -1 : 1),
  );
  for (const job of byAge) if (now - job.finishedAtMs >= policy.retentionMs) out.set(job.id, 'age');
  trim(byAge, out, 'disk_budget', (job) => job.logBytes, policy.diskBudgetBytes);
  const byOwner = new Map<string, RetentionCandidate[]>();
  for (const job of byAge) {
    const own = byOwner.get(job.owner);
    if (own === undefined) byOwner.set(job.owner, [job]);
    else own.push(job);
  }
  for (const own of byOwner.values())
    trim(own, out, 'owner_count', () => 1, policy.maxJobsPerOwner);
  trim(byAge, out, 'count', () => 1, policy.maxJobs);
  trim(byAge, out, 'record_budget', (job) => job.recordBytes, policy.recordBudgetBytes);
  return out;
}
