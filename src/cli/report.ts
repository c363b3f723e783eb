/**
 * The readable exit report of `jobctl status`: what ran, how it ended, when,
 * within which limits, what it used, and what it wrote (sizes and SHA-256,
 * so that a copy fetched with `jobctl logs` can be checked).
 */
import {
  JobState,
  type Job,
  type ResourceLimits,
  type StreamSummary,
} from '../gen/jobworker/v1/job_service.js';
import { formatFields, outcome, runtimeMs, shellQuote, signalName, stateName } from './format.js';
import { visible } from './visible.js';
import { durationMs, formatBytes, formatDuration } from './units.js';

/** Formats `job` as aligned `Field: value` lines (no trailing newline). */
export function formatReport(job: Job, now = new Date()): string {
  const finished = job.state === JobState.JOB_STATE_FINISHED;
  const fields: [string, string][] = [
    ['ID', job.id],
    ['Owner', visible(job.owner)],
    ['Command', shellQuote(job.command)],
    ['Working dir', visible(job.workingDir || '/')],
    ['Network', job.hostNetwork ? 'host' : 'isolated (loopback only)'],
    ['State', stateName(job.state)],
  ];
  if (finished) {
    fields.push(['Result', outcome(job)]);
    if (job.exitCode !== undefined) fields.push(['Exit code', String(job.exitCode)]);
    if (job.signal !== undefined)
      fields.push(['Signal', `${signalName(job.signal)} (${job.signal})`]);
  }
  if (job.stoppedBy !== '') fields.push(['Stopped by', visible(job.stoppedBy)]);
  if (job.oomKilled) fields.push(['OOM killed', 'yes: a process reached the memory limit']);
  fields.push(['Started', job.startedAt?.toISOString() ?? '-']);
  fields.push(['Finished', job.finishedAt?.toISOString() ?? '-']);
  fields.push([finished ? 'Duration' : 'Running for', formatDuration(runtimeMs(job, now))]);
  if (job.timeout !== undefined) fields.push(['Timeout', formatDuration(durationMs(job.timeout))]);
  fields.push(['Limits', formatLimits(job.limits)]);
  if (job.usage !== undefined) {
    fields.push([
      'CPU time',
      formatDuration(job.usage.cpuTime ? durationMs(job.usage.cpuTime) : 0),
    ]);
    fields.push(['Peak memory', formatBytes(job.usage.peakMemoryBytes)]);
    fields.push([
      'IO',
      `read ${formatBytes(job.usage.ioReadBytes)}, written ${formatBytes(job.usage.ioWriteBytes)}`,
    ]);
  }
  fields.push(['Stdout', formatStream(job.stdout)]);
  fields.push(['Stderr', formatStream(job.stderr)]);
  fields.push(['Truncated', job.outputTruncated ? 'yes: output beyond the cap was dropped' : 'no']);
  if (job.outputIncomplete) {
    const from = (s: StreamSummary | undefined) =>
      s?.incompleteAt === undefined ? 'complete' : `missing from byte ${s.incompleteAt}`;
    fields.push([
      'Incomplete',
      `the server could not store all output: stdout ${from(job.stdout)}, stderr ${from(job.stderr)}`,
    ]);
  }
  return formatFields(fields);
}

/** `cpu 0.5 cores, memory 256 MiB, io read 10 MiB/s, io write 10 MiB/s, pids 100`. */
export function formatLimits(limits: ResourceLimits | undefined): string {
  if (limits === undefined) return '-';
  const parts: string[] = [];
  if (limits.cpuMillis > 0)
    parts.push(`cpu ${limits.cpuMillis / 1000} ${limits.cpuMillis === 1000 ? 'core' : 'cores'}`);
  if (limits.memoryBytes > 0) parts.push(`memory ${formatBytes(limits.memoryBytes)}`);
  if (limits.ioReadBps > 0) parts.push(`io read ${formatBytes(limits.ioReadBps)}/s`);
  if (limits.ioWriteBps > 0) parts.push(`io write ${formatBytes(limits.ioWriteBps)}/s`);
  if (limits.pidsMax > 0) parts.push(`pids ${limits.pidsMax}`);
  return parts.length === 0 ? 'none' : parts.join(', ');
}

function formatStream(stream: StreamSummary | undefined): string {
  if (stream === undefined) return '-';
  // Exact byte counts matter here: they are what `jobctl logs` must reproduce.
  const size =
    stream.storedBytes < 1024
      ? `${stream.storedBytes} bytes`
      : `${formatBytes(stream.storedBytes)} (${stream.storedBytes} bytes)`;
  const dropped = stream.droppedBytes > 0 ? `, ${stream.droppedBytes} bytes dropped` : '';
  const sha = stream.sha256.length > 0 ? `, sha256 ${stream.sha256.toString('hex')}` : '';
  return `${size}${dropped}${sha}`;
}
