/**
 * jobworkerd serve's budget flags: the host budget of all jobs together
 * (isolation's host-budget.ts) and each owner's (job's owner-budget.ts),
 * read and checked before anything starts.
 */
import type { ParseArgsConfig } from 'node:util';
import { ErrorCode, JobworkerError } from '../errors.js';
import {
  HOST_BUDGET_FLAGS,
  type HostBudget,
  readHostTotals,
  resolveHostBudget,
} from '../isolation/index.js';
import {
  DEFAULT_MAX_RUNNING_JOBS_PER_OWNER,
  OWNER_BUDGET_NAMES,
  type OwnerBudget,
} from '../job/index.js';
import { readSize } from '../sizes.js';

/** Reads a whole number of at least 1, or says what is wrong with it. */
function readCount(text: string): number | string {
  const n = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  return Number.isSafeInteger(n) && n >= 1 ? n : 'is not a whole number of at least 1';
}

/** An owner budget's flag: its name with dashes. */
const ownerFlag = (field: keyof OwnerBudget) =>
  `--${OWNER_BUDGET_NAMES[field].replaceAll('_', '-')}`;

const optionName = (flag: string) => flag.slice(2);

/** The flags, for serve's parseArgs table. */
export const budgetOptions: NonNullable<ParseArgsConfig['options']> = Object.fromEntries(
  [
    HOST_BUDGET_FLAGS.memoryBytes,
    HOST_BUDGET_FLAGS.pidsMax,
    ownerFlag('runningJobs'),
    ownerFlag('memoryBytes'),
    ownerFlag('pidsMax'),
  ].map((flag) => [optionName(flag), { type: 'string' }]),
);

/** The flags' part of serve's usage text. */
export const BUDGET_USAGE = `      Budgets (at most the host's total; see docs/rfd/0001-jobworker.md):
        ${HOST_BUDGET_FLAGS.memoryBytes} SIZE   all jobs together (default: half of MemTotal)
        ${HOST_BUDGET_FLAGS.pidsMax} N        all jobs' tasks (default: half of min(pid_max, threads-max))
        ${ownerFlag('runningJobs')} N   (default ${DEFAULT_MAX_RUNNING_JOBS_PER_OWNER})
        ${ownerFlag('memoryBytes')} SIZE      sum of an owner's memory limits (default: ${HOST_BUDGET_FLAGS.memoryBytes})
        ${ownerFlag('pidsMax')} N           sum of an owner's pids limits (default: ${HOST_BUDGET_FLAGS.pidsMax})
`;

/** The fields given (exactOptionalPropertyTypes: an absent field is left out, not undefined). */
function defined<T extends object>(fields: { [K in keyof T]: T[K] | undefined }): Partial<T> {
  return Object.fromEntries(
    Object.entries(fields).filter(([, value]) => value !== undefined),
  ) as Partial<T>;
}

/**
 * The budgets set by the flags in parsed `values`. Refuses (invalid_argument
 * naming the flag) a malformed value, a host budget above the host's total,
 * and an owner's sum above the host budget.
 */
export async function readBudgets(
  values: Readonly<Record<string, unknown>>,
): Promise<{ hostBudget: Partial<HostBudget>; ownerBudget: Partial<OwnerBudget> }> {
  const read = (flag: string, reader: (text: string) => number | string) => {
    const text = values[optionName(flag)];
    if (typeof text !== 'string') return undefined;
    const value = reader(text);
    if (typeof value === 'string') {
      throw new JobworkerError(
        ErrorCode.InvalidArgument,
        `${flag} ${JSON.stringify(text)} ${value}`,
      );
    }
    return value;
  };
  const hostBudget = defined<HostBudget>({
    memoryBytes: read(HOST_BUDGET_FLAGS.memoryBytes, readSize),
    pidsMax: read(HOST_BUDGET_FLAGS.pidsMax, readCount),
  });
  const ownerBudget = defined<OwnerBudget>({
    runningJobs: read(ownerFlag('runningJobs'), readCount),
    memoryBytes: read(ownerFlag('memoryBytes'), readSize),
    pidsMax: read(ownerFlag('pidsMax'), readCount),
  });
  const host = resolveHostBudget(await readHostTotals(), hostBudget);
  for (const field of ['memoryBytes', 'pidsMax'] as const) {
    const value = ownerBudget[field];
    if (value !== undefined && value > host[field]) {
      throw new JobworkerError(
        ErrorCode.InvalidArgument,
        `${ownerFlag(field)}: ${value} is above the host budget ${host[field]} (${HOST_BUDGET_FLAGS[field]})`,
      );
    }
  }
  return { hostBudget, ownerBudget };
}
