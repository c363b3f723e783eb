/**
 * Default limits and server maxima, and the resolution of a client's request
 * against them. The server's configuration overrides the defaults and maxima
 * (createIsolation's options; `limits.*` in src/api/config-schema.ts).
 */
import { availableParallelism } from 'node:os';
import { ErrorCode, JobworkerError } from '../errors.js';
import type { HostBudget } from './host-budget.js';
import type { Limits, RequestedLimits } from './types.js';

const MiB = 1024 * 1024;

/** Limits of a job that asks for none: one core, 512 MiB, 1024 tasks, IO unlimited (0). */
export const DEFAULT_LIMITS: Limits = {
  cpuMillis: 1000,
  memoryBytes: 512 * MiB,
  ioReadBps: 0,
  ioWriteBps: 0,
  pidsMax: 1024,
};

/**
 * Smallest values the kernel accepts or a job can live with: CFS rejects a
 * quota below 1 ms (10 millicores of a 100 ms period); below a few MiB even
 * the helper's init is OOM-killed; init, the job and one child of a shell
 * (`sh -c 'a; b'` forks for `a`) are three tasks.
 */
export const MIN_LIMITS: Limits = {
  cpuMillis: 10,
  memoryBytes: 4 * MiB,
  ioReadBps: 0,
  ioWriteBps: 0,
  pidsMax: 3,
};

/**
 * The server maxima of this host: all cores, the host budget's memory and
 * tasks (no one job may ask for more than all jobs together get), IO not
 * capped (0).
 */
export function hostMaxima(budget: HostBudget): Limits {
  return {
    cpuMillis: availableParallelism() * 1000,
    memoryBytes: budget.memoryBytes,
    ioReadBps: 0,
    ioWriteBps: 0,
    pidsMax: budget.pidsMax,
  };
}

const FIELDS = ['cpuMillis', 'memoryBytes', 'ioReadBps', 'ioWriteBps', 'pidsMax'] as const;

/** How a caller names a limit in messages (the API: the proto's field path). */
export type LimitName = (field: keyof Limits) => string;

const ownName: LimitName = (field) => `limits.${field}`;

function outOfRange(field: string, value: number, bound: string, limit: number): JobworkerError {
  return new JobworkerError(ErrorCode.InvalidArgument, `${field}: ${value} is ${bound} ${limit}`);
}

/**
 * Fills in defaults (absent or 0) and refuses, rather than clamps, a value
 * outside [minimum, maximum] (a maximum of 0 means uncapped): a job that ran
 * with other limits than asked would be measured against the wrong ones.
 * The job layer has checked that each value is a non-negative integer
 * (validateSpec).
 */
export function resolveLimits(
  requested: RequestedLimits,
  defaults: Limits,
  maxima: Limits,
  name: LimitName = ownName,
): Limits {
  const out: Record<(typeof FIELDS)[number], number> = { ...defaults };
  for (const field of FIELDS) {
    const value = requested[field];
    if (value === undefined || value === 0) continue;
    const max = maxima[field];
    if (max > 0 && value > max) throw outOfRange(name(field), value, 'above the maximum', max);
    if (value < MIN_LIMITS[field])
      throw outOfRange(name(field), value, 'below the minimum', MIN_LIMITS[field]);
    out[field] = value;
  }
  return out;
}
