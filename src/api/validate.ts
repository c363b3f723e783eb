/**
 * Request validation: wire messages -> the job library's inputs. Every
 * failure is `invalid_argument` with a message naming the proto field. A job
 * spec's rules are the job library's (validateSpec); this layer checks only
 * what the wire alone can get wrong (unknown enum values, durations).
 */
import { constants } from 'node:os';
import { ErrorCode, JobworkerError } from '../errors.js';
import type { Duration } from '../gen/google/protobuf/duration.js';
import { MAX_STDIN_CHUNK_BYTES } from '../stdin-chunk.js';
import type {
  AttachStart,
  Terminal,
  WindowSize,
  ListJobsRequest,
  SignalJobRequest,
  StartJobRequest,
  StopJobRequest,
  StreamOutputRequest,
  WatchJobsRequest,
} from '../gen/jobworker/v1/job_service.js';
import {
  FORWARDED_SIGNALS,
  checkJobName,
  isValidJobId,
  isValidJobName,
  MAX_GRACE_MS,
  MAX_TERMINAL_DIMENSION,
  MAX_TAIL_LINES,
  MAX_TIMEOUT_MS,
  type ForwardedSignal,
  parseSelector,
  quote,
  validateSpec,
  type FieldNames,
  type JobSpec,
  type ListFilter,
  type OutputOptions,
  type StopOptions,
  type TerminalSpec,
  type WatchOptions,
} from '../job/index.js';
import { USER_NAME } from './authz.js';
import { STATE_FROM_PROTO, STREAM_FROM_PROTO } from './convert.js';

function invalid(message: string): JobworkerError {
  return new JobworkerError(ErrorCode.InvalidArgument, message);
}

/** What a `job_id` field holds: a job id, or the name of one of the caller's jobs. */
export type JobRef = { readonly id: string } | { readonly name: string };

/** The job id or name, checked before any lookup or path is built from it. */
export function checkJobRef(value: unknown): JobRef {
  if (typeof value !== 'string' || value === '') throw invalid('job_id is required');
  if (isValidJobId(value)) return { id: value };
  if (isValidJobName(value)) return { name: value };
  throw invalid(
    `job_id ${quote(value)} is neither a job id (26 characters of a-z, 2-7) nor a job name`,
  );
}

/** Each JobSpec field's proto field: the one place the two spellings meet. */
const PROTO_FIELD = {
  argv: 'command',
  env: 'env',
  cwd: 'workingDir',
  limits: 'limits',
  hostNetwork: 'hostNetwork',
  timeoutMs: 'timeout',
  name: 'metadata.name',
  labels: 'metadata.labels',
  stdin: 'stdin',
  tty: 'terminal',
} as const satisfies Record<keyof JobSpec, string>;

/** ts-proto's camelCase name back to the .proto's snake_case one. */
export const protoFieldName = (name: string): string =>
  name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

// The job validator names job-layer field paths; this renames them (via PROTO_FIELD) to the proto's.
/** Job-layer field paths spelled as the proto's (`limits.memoryBytes` -> `limits.memory_bytes`). */
export const protoNames: FieldNames = (field) => {
  const [head, ...rest] = field.split('.') as [keyof JobSpec, ...string[]];
  return [PROTO_FIELD[head], ...rest].map(protoFieldName).join('.');
};

/** StartJobRequest -> JobSpec, validated by the job library with the proto's field names. */
export function startSpec(request: StartJobRequest): JobSpec {
  const terminal = request[PROTO_FIELD.tty];
  const spec: JobSpec = {
    argv: request[PROTO_FIELD.argv],
    env: request[PROTO_FIELD.env],
    cwd: request[PROTO_FIELD.cwd],
    limits: request[PROTO_FIELD.limits] ?? {},
    hostNetwork: request[PROTO_FIELD.hostNetwork],
    timeoutMs: timeoutMs(request[PROTO_FIELD.timeoutMs]),
    name: request.metadata?.name ?? '',
    labels: request.metadata?.labels ?? {},
    // A terminal is the job's stdin: asking for one opens it.
    stdin: request[PROTO_FIELD.stdin] === true || terminal !== undefined,
    ...(terminal === undefined ? {} : { tty: terminalSpec(terminal) }),
  };
  validateSpec(spec, protoNames);
  return spec;
}

/** StartJobRequest.terminal -> the job's terminal; its size checked here, its TERM by the job library. */
function terminalSpec(terminal: Terminal): TerminalSpec {
  return { ...checkWindowSize(terminal, PROTO_FIELD.tty), term: terminal.term };
}

/** A window size with each side 1 to the job library's maximum, `field` naming the message in errors. */
export function checkWindowSize(size: WindowSize, field: string): WindowSize {
  for (const side of ['rows', 'cols'] as const) {
    const value = size[side];
    if (!(value >= 1 && value <= MAX_TERMINAL_DIMENSION)) {
      throw invalid(`${field}.${side} ${value} is not between 1 and ${MAX_TERMINAL_DIMENSION}`);
    }
  }
  return { rows: size.rows, cols: size.cols };
}

/** AttachStart, checked (its job_id is resolved by the seam's resolveJob). */
export function attachStart(start: AttachStart): AttachStart {
  if (start.tailLines !== undefined && start.tailLines > MAX_TAIL_LINES) {
    throw invalid(`start.tail_lines ${start.tailLines} exceeds the maximum of ${MAX_TAIL_LINES}`);
  }
  return start;
}

/** An AttachRequest's stdin bytes, at most {@link MAX_STDIN_CHUNK_BYTES}. */
export function stdinChunk(data: Uint8Array): Uint8Array {
  if (data.length > MAX_STDIN_CHUNK_BYTES) {
    throw invalid(
      `stdin of ${data.length} bytes exceeds the maximum of ${MAX_STDIN_CHUNK_BYTES} per message`,
    );
  }
  return data;
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

/** StartJobRequest.timeout in ms; unset is none (0). */
function timeoutMs(value: Duration | undefined): number {
  return value === undefined ? 0 : durationMs(protoNames('timeoutMs'), value, MAX_TIMEOUT_MS);
}

/**
 * SignalJobRequest.signal: a name of {@link FORWARDED_SIGNALS} with or
 * without "SIG", in any case, or its number.
 */
export function jobSignal(request: SignalJobRequest): ForwardedSignal {
  const text = request.signal.trim().toUpperCase();
  const name = /^\d+$/.test(text)
    ? Object.entries(constants.signals).find(([, n]) => String(n) === text)?.[0]
    : text.startsWith('SIG')
      ? text
      : `SIG${text}`;
  const allowed = FORWARDED_SIGNALS.find((s) => s === name);
  if (allowed === undefined) {
    throw invalid(
      `signal ${quote(request.signal)} is not one SignalJob may send (${FORWARDED_SIGNALS.join(', ')})`,
    );
  }
  return allowed;
}

/** StopJobRequest -> stop options (the job id is checked by the seam). */
export function stopOptions(request: StopJobRequest, signal: AbortSignal): StopOptions {
  if (request.gracePeriod === undefined) return { signal };
  return { graceMs: durationMs('grace_period', request.gracePeriod, MAX_GRACE_MS), signal };
}

/** The filter fields ListJobsRequest and WatchJobsRequest share -> filter (before the caller's scope is applied). */
export function listFilter(request: ListJobsRequest | WatchJobsRequest): ListFilter {
  const filter: { -readonly [K in keyof ListFilter]: ListFilter[K] } = {};
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
  const { name = '', labelSelector = '' } = request.selector ?? {};
  if (name !== '') {
    checkJobName(name, 'selector.name');
    filter.name = name;
  }
  if (labelSelector !== '')
    filter.selector = parseSelector(labelSelector, 'selector.label_selector');
  return filter;
}

/** The range of google.protobuf.Timestamp (0001-01-01 to 9999-12-31), in ms since the epoch. */
const TIMESTAMP_MIN_MS = -62_135_596_800_000;
const TIMESTAMP_MAX_MS = 253_402_300_799_999;
/** WatchJobsRequest -> watch options (before the caller's scope is applied). */
export function watchOptions(request: WatchJobsRequest, signal: AbortSignal): WatchOptions {
  return { filter: listFilter(request), initial: request.initial, signal };
}

/** StreamOutputRequest -> output options. */
export function outputOptions(request: StreamOutputRequest, signal: AbortSignal): OutputOptions {
  const options: { -readonly [K in keyof OutputOptions]: OutputOptions[K] } = {
    follow: request.follow,
    stdoutOffset: request.stdoutOffset,
    stderrOffset: request.stderrOffset,
    signal,
  };
  if (request.tailLines !== undefined) {
    if (request.tailLines > MAX_TAIL_LINES) {
      throw invalid(`tail_lines ${request.tailLines} exceeds the maximum of ${MAX_TAIL_LINES}`);
    }
    options.tailLines = request.tailLines;
  }
  if (request.since !== undefined) {
    const ms = request.since.getTime();
    if (!(ms >= TIMESTAMP_MIN_MS && ms <= TIMESTAMP_MAX_MS)) {
      const value = Number.isNaN(ms) ? 'a time no date can hold' : request.since.toISOString();
      throw invalid(`since ${value} is outside the years 1 to 9999`);
    }
    options.sinceMs = ms;
  }
  if (request.stream !== 0) {
    const stream = STREAM_FROM_PROTO.get(request.stream);
    if (stream === undefined) throw invalid(`stream ${request.stream} is not a known OutputStream`);
    options.stream = stream;
  }
  return options;
}
