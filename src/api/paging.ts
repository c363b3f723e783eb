/**
 * Pages of ListJobs. A listing is ordered newest first by start time, then
 * id (the job library keeps that order, so a page costs its own length); a
 * page token names the last job of the previous page by that key, so
 * a page boundary stays right when jobs start or are removed in between (a
 * job that starts meanwhile is newer than the first page and is not shown).
 * The token is opaque to clients (base64url) but carries nothing secret: a
 * start time and a job id the caller was already shown.
 */
import { ErrorCode, JobworkerError } from '../errors.js';
import { Job } from '../gen/jobworker/v1/job_service.js';
import type { JobStatus, ListCursor, ListFilter } from '../job/index.js';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from '../page-size.js';
import { toProtoJob } from './convert.js';
/**
 * Most bytes of the jobs of one page: the default receive limit of gRPC
 * clients (grpc-js, C-core) is 4 MiB per message, and a job's argv alone may
 * be 128 KiB. The rest of the 4 MiB is room for the token and field headers.
 */
export const MAX_PAGE_BYTES = 4 * 1024 * 1024 - 1024;
/** A repeated message field's header: its tag and a length of up to 3 bytes (below 2 MiB). */
const FIELD_HEADER_BYTES = 4;

function decodeToken(token: string): ListCursor {
  const match = /^(\d{1,15})\.([a-z2-7]{26})$/.exec(Buffer.from(token, 'base64url').toString());
  if (match === null || match[1] === undefined || match[2] === undefined) {
    throw new JobworkerError(
      ErrorCode.InvalidArgument,
      `page_token ${JSON.stringify(token.slice(0, 64))} is not a token this server issued`,
    );
  }
  return { startedAtMs: Number(match[1]), id: match[2] };
}

const encodeToken = (job: JobStatus): string =>
  Buffer.from(`${job.startedAt.getTime()}.${job.id}`).toString('base64url');

/**
 * One page of the listing `list` gives for `filter`, after `token`: at most
 * `pageSize` jobs and {@link MAX_PAGE_BYTES} bytes (a page ends early, with a
 * token, rather than exceed them), and the token of the next page ('' at the end).
 */
export function listPage(
  list: (filter: ListFilter) => JobStatus[],
  filter: ListFilter,
  pageSize: number,
  token: string,
): { jobs: Job[]; next: string } {
  if (!Number.isInteger(pageSize) || pageSize < 0 || pageSize > MAX_PAGE_SIZE) {
    throw new JobworkerError(
      ErrorCode.InvalidArgument,
      `page_size ${pageSize} is out of range (0 for the default, at most ${MAX_PAGE_SIZE})`,
    );
  }
  const size = pageSize === 0 ? DEFAULT_PAGE_SIZE : pageSize;
  const after = token === '' ? undefined : decodeToken(token);
  // One more than a page: whether there is a next page.
  const found = list({ ...filter, ...(after && { after }), limit: size + 1 });
  const jobs: Job[] = [];
  let bytes = 0;
  for (const status of found) {
    if (jobs.length === size) break;
    const job = toProtoJob(status);
    bytes += Job.encode(job).finish().length + FIELD_HEADER_BYTES;
    // A page holds at least one job, so that a listing always moves on.
    if (bytes > MAX_PAGE_BYTES && jobs.length > 0) break;
    jobs.push(job);
  }
  const last = found[jobs.length - 1];
  return { jobs, next: found.length > jobs.length && last !== undefined ? encodeToken(last) : '' };
}
