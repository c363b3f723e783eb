/**
 * Pages of ListJobs. A listing is ordered newest first by start time, then
 * id; a page token names the last job of the previous page by that key, so
 * a page boundary stays right when jobs start or are removed in between (a
 * job that starts meanwhile is newer than the first page and is not shown).
 * The token is opaque to clients (base64url) but carries nothing secret: a
 * start time and a job id the caller was already shown.
 */
import { ErrorCode, JobworkerError } from '../errors.js';
import type { JobStatus } from '../job/index.js';

/** Jobs per page when the client asks for none. TODO(configuration system). */
export const DEFAULT_PAGE_SIZE = 500;
/** Most jobs per page: bounds the response at about 0.2 KB x 1000 plus argv. */
export const MAX_PAGE_SIZE = 1000;

interface Key {
  readonly startedAtMs: number;
  readonly id: string;
}

const keyOf = (job: JobStatus): Key => ({ startedAtMs: job.startedAt.getTime(), id: job.id });

/** Negative when `a` comes first (is newer). */
function compare(a: Key, b: Key): number {
  if (a.startedAtMs !== b.startedAtMs) return b.startedAtMs - a.startedAtMs;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

function decodeToken(token: string): Key {
  const match = /^(\d{1,15})\.([a-z2-7]{26})$/.exec(Buffer.from(token, 'base64url').toString());
  if (match === null || match[1] === undefined || match[2] === undefined) {
    throw new JobworkerError(
      ErrorCode.InvalidArgument,
      `page_token ${JSON.stringify(token.slice(0, 64))} is not a token this server issued`,
    );
  }
  return { startedAtMs: Number(match[1]), id: match[2] };
}

const encodeToken = (key: Key): string =>
  Buffer.from(`${key.startedAtMs}.${key.id}`).toString('base64url');

/** One page of `jobs` (any order) after `token`, and the token of the next page ('' at the end). */
export function pageOf(
  jobs: readonly JobStatus[],
  pageSize: number,
  token: string,
): { page: JobStatus[]; next: string } {
  if (!Number.isInteger(pageSize) || pageSize < 0 || pageSize > MAX_PAGE_SIZE) {
    throw new JobworkerError(
      ErrorCode.InvalidArgument,
      `page_size ${pageSize} is out of range (0 for the default, at most ${MAX_PAGE_SIZE})`,
    );
  }
  const size = pageSize === 0 ? DEFAULT_PAGE_SIZE : pageSize;
  const after = token === '' ? null : decodeToken(token);
  const sorted = jobs
    .filter((job) => after === null || compare(keyOf(job), after) > 0)
    .sort((a, b) => compare(keyOf(a), keyOf(b)));
  const page = sorted.slice(0, size);
  const last = page.at(-1);
  return { page, next: sorted.length > size && last !== undefined ? encodeToken(keyOf(last)) : '' };
}
