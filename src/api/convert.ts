/**
 * Conversions between the job library's types and the generated protobuf
 * messages. Library -> wire is total; wire -> library lives in validate.ts.
 */
import type {
  EndReason as LibEndReason,
  JobState as LibJobState,
  JobStatus,
  OutputEvent,
  StreamName,
  WatchEvent,
} from '../job/index.js';
import {
  EndReason,
  JobState,
  OutputStream,
  WatchEventType,
  type Job,
  type WatchJobsResponse,
  type StreamOutputResponse,
  type StreamSummary,
} from '../gen/jobworker/v1/job_service.js';
import type { Duration } from '../gen/google/protobuf/duration.js';

const STATE: Record<LibJobState, JobState> = {
  running: JobState.JOB_STATE_RUNNING,
  stopping: JobState.JOB_STATE_STOPPING,
  finished: JobState.JOB_STATE_FINISHED,
};

const END_REASON: Record<LibEndReason, EndReason> = {
  exited: EndReason.END_REASON_EXITED,
  signaled: EndReason.END_REASON_SIGNALED,
  oom_killed: EndReason.END_REASON_OOM_KILLED,
  stopped: EndReason.END_REASON_STOPPED,
  stop_escalated: EndReason.END_REASON_STOP_ESCALATED,
  lost: EndReason.END_REASON_LOST,
  timed_out: EndReason.END_REASON_TIMED_OUT,
};

const STREAM: Record<StreamName, OutputStream> = {
  stdout: OutputStream.OUTPUT_STREAM_STDOUT,
  stderr: OutputStream.OUTPUT_STREAM_STDERR,
};

/** proto JobState -> library state, for filters (UNSPECIFIED and unknown values are not in it). */
export const STATE_FROM_PROTO = new Map<number, LibJobState>(
  Object.entries(STATE).map(([name, value]) => [value, name as LibJobState]),
);

/** proto OutputStream -> library stream name. */
export const STREAM_FROM_PROTO = new Map<number, StreamName>(
  Object.entries(STREAM).map(([name, value]) => [value, name as StreamName]),
);

function summary(s: JobStatus['stdout']): StreamSummary {
  return {
    storedBytes: s.storedBytes,
    droppedBytes: s.droppedBytes,
    sha256: s.sha256 ?? Buffer.alloc(0),
    ...(s.incompleteAt == null ? {} : { incompleteAt: s.incompleteAt }),
  };
}

function durationOfMs(ms: number): Duration {
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
}

/** A job's status as a protobuf Job. */
export function toProtoJob(job: JobStatus): Job {
  return {
    id: job.id,
    owner: job.owner,
    command: [...job.argv],
    state: STATE[job.state],
    endReason:
      job.endReason === null ? EndReason.END_REASON_UNSPECIFIED : END_REASON[job.endReason],
    ...(job.exitCode === null ? {} : { exitCode: job.exitCode }),
    ...(job.signal === null ? {} : { signal: job.signal }),
    oomKilled: job.oomKilled,
    stoppedBy: job.stoppedBy ?? '',
    startedAt: job.startedAt,
    ...(job.finishedAt === null ? {} : { finishedAt: job.finishedAt }),
    limits: { ...job.limits },
    ...(job.usage === null
      ? {}
      : {
          usage: {
            cpuTime: {
              seconds: Math.floor(job.usage.cpuTimeNs / 1e9),
              nanos: Math.round(job.usage.cpuTimeNs % 1e9),
            },
            peakMemoryBytes: job.usage.peakMemoryBytes,
            ioReadBytes: job.usage.ioReadBytes,
            ioWriteBytes: job.usage.ioWriteBytes,
          },
        }),
    stdout: summary(job.stdout),
    stderr: summary(job.stderr),
    outputTruncated: job.outputTruncated,
    hostNetwork: job.hostNetwork,
    workingDir: job.cwd,
    outputIncomplete: job.outputIncomplete ?? false,
    ...(job.timeoutMs ? { timeout: durationOfMs(job.timeoutMs) } : {}),
    metadata: { name: job.name ?? '', labels: { ...job.labels } },
    stdin: job.stdin,
    tty: job.tty,
  };
}

const WATCH_EVENT: Record<WatchEvent['type'], WatchEventType> = {
  existing: WatchEventType.WATCH_EVENT_TYPE_EXISTING,
  synced: WatchEventType.WATCH_EVENT_TYPE_SYNCED,
  started: WatchEventType.WATCH_EVENT_TYPE_STARTED,
  stopping: WatchEventType.WATCH_EVENT_TYPE_STOPPING,
  finished: WatchEventType.WATCH_EVENT_TYPE_FINISHED,
  resync: WatchEventType.WATCH_EVENT_TYPE_RESYNC,
};

/** One watch event as a stream message. */
export function toWatchResponse(event: WatchEvent): WatchJobsResponse {
  return {
    type: WATCH_EVENT[event.type],
    ...('job' in event ? { job: toProtoJob(event.job) } : {}),
  };
}

/** One output event as a stream message. */
export function toStreamResponse(event: OutputEvent): StreamOutputResponse {
  switch (event.type) {
    case 'chunk':
      return {
        event: {
          $case: 'chunk',
          value: {
            stream: STREAM[event.stream],
            offset: event.offset,
            data: event.data,
            storedAt: event.storedAtMs === null ? undefined : new Date(event.storedAtMs),
          },
        },
      };
    case 'truncated':
      return { event: { $case: 'truncated', value: { capBytes: event.capBytes } } };
    case 'finished':
      return { event: { $case: 'finished', value: toProtoJob(event.job) } };
  }
}
