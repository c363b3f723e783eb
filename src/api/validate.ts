/**
 * Request validation: wire messages -> the job library's inputs. Every
 * failure is `invalid_argument` with a message naming the proto field. The
 * job library validates again (argv/env caps and syntax, working directory,
 * limits against the host); this layer checks what only the wire can get
 * wrong (unknown enum values, durations) and what names fields the way the
 * client spelled them.
 */
import { ErrorCode, JobworkerError } from '../errors.js';
import type { Duration } from '../gen/google/protobuf/duration.js';
import type {
  ListJobsRequest,
  StartJobRequest,
  StopJobRequest,
  StreamOutputRequest,
} from '../gen/jobworker/v1/job_service.js';
import {
  isValidJobId,
  MAX_GRACE_MS,
  quote,
  type JobSpec,
  type ListFilter,
  type OutputOptions,
  type StopOptions,
} from '../job/index.js';
import { USER_NAME } from './authz.js';
import { STATE_FROM_PROTO, STREAM_FROM_PROTO } from './convert.js';

function invalid(message: string): JobworkerError {
  return new JobworkerError(ErrorCode.InvalidArgument, message);
}

/** The job id, checked before any lookup or path is built from it. */
export function checkJobId(value: unknown): string {
  if (typeof value !== 'string' || value === '') throw invalid('job_id is required');
  if (!isValidJobId(value))
    throw invalid(`job_id ${quote(value)} is not a job id (26 characters of a-z, 2-7)`);
  return value;
}

/** Zero means "the server's default": such fields are left out; ranges are the isolation layer's (resolveLimits). */
function checkLimits(limits: StartJobRequest['limits']): JobSpec['limits'] {
  if (limits === undefined) return {};
  return Object.fromEntries(Object.entries(limits).filter(([, value]) => value !== 0));
}

/** StartJobRequest -> JobSpec. */
export function startSpec(request: StartJobRequest): JobSpec {
  const command = request.command;
  if (command.length === 0) throw invalid('command is required');
  if (command[0] === '') throw invalid('command[0] is empty');
  const nul = command.findIndex((arg) => arg.includes('\0'));
  if (nul >= 0) throw invalid(`command[${nul}] contains a NUL byte`);
  const cwd = request.workingDir;
  if (cwd.includes('\0')) throw invalid('working_dir contains a NUL byte');
  if (cwd !== '' && !cwd.startsWith('/'))
    throw invalid(`working_dir ${quote(cwd)} is not an absolute path`);
  return {
    argv: command,
    env: request.env,
    cwd,
    limits: checkLimits(request.limits),
    hostNetwork: request.hostNetwork,
  };
}

/** A Duration in milliseconds, checked: non-negative, normalized, at most `maxMs`. */
function durationMs(field: string, value: Duration, maxMs: number): number {
  const { seconds, nanos } = value;
  if (seconds < 0 || nanos < 0 || nanos > 999_999_999) {
    throw invalid(`${field} ${seconds}s ${nanos}ns is negative or not normalized`);
  }
  const ms = seconds * 1000 + Math.ceil(nanos / 1e6);
  if (ms > maxMs) throw invalid(`${field} ${seconds}s exceeds the maximum of ${maxMs / 1000}s`);
  return ms;
}

/** StopJobRequest -> stop options (the job id is checked by the seam). */
export function stopOptions(request: StopJobRequest, signal: AbortSignal): StopOptions {
  if (request.gracePeriod === undefined) return { signal };
  return { graceMs: durationMs('grace_period', request.gracePeriod, MAX_GRACE_MS), signal };
}

/** ListJobsRequest -> filter (before the caller's scope is applied). */
export function listFilter(request: ListJobsRequest): ListFilter {
  const filter: { owner?: string; state?: NonNullable<ListFilter['state']> } = {};
  if (request.state !== 0) {
    const state = STATE_FROM_PROTO.get(request.state);
    if (state === undefined) throw invalid(`state ${request.state} is not a known JobState`);
    filter.state = state;
  }
  if (request.owner !== '') {
    if (!USER_NAME.test(request.owner))
      throw invalid(`owner ${quote(request.owner)} is not a valid user name`);
    filter.owner = request.owner;
  }
  return filter;
}

/** StreamOutputRequest -> output options. */
export function outputOptions(request: StreamOutputRequest, signal: AbortSignal): OutputOptions {
  const options: { -readonly [K in keyof OutputOptions]: OutputOptions[K] } = {
    follow: request.follow,
    stdoutOffset: request.stdoutOffset,
    stderrOffset: request.stderrOffset,
    signal,
  };
  if (request.stream !== 0) {
    const stream = STREAM_FROM_PROTO.get(request.stream);
    if (stream === undefined) throw invalid(`stream ${request.stream} is not a known OutputStream`);
    options.stream = stream;
  }
  return options;
}
