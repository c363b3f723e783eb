/**
 * Human output of jobs: aligned tables, shell-quoted commands, signal names
 * and the one-line summary of how a job ended. Pure functions over the
 * generated jobworker.v1 types, so they are tested without a server.
 */
import { constants } from 'node:os';
import { EndReason, JobState, type Job } from '../gen/jobworker/v1/job_service.js';
import { durationMs, formatAge, formatDuration } from './units.js';
import { hasControl, visible } from './visible.js';

export { columnWidths, formatRow, formatTable } from './table.js';

/** `key: value` lines with the values aligned, as `kubectl describe`. */
export function formatFields(fields: readonly (readonly [string, string])[]): string {
  const width = Math.max(...fields.map(([key]) => key.length)) + 2;
  return fields.map(([key, value]) => `${`${key}:`.padEnd(width)}${value}`.trimEnd()).join('\n');
}

/**
 * Quotes argv so that a shell would read it back: `sh -c 'exit 3'`; an
 * argument with control characters as `$'...'` with them escaped.
 */
export function shellQuote(argv: readonly string[]): string {
  return argv
    .map((arg) => {
      if (/^[\w@%+=:,./-]+$/.test(arg)) return arg;
      if (!hasControl(arg)) return `'${arg.replaceAll("'", `'\\''`)}'`;
      return `$'${visible(arg.replace(/[\\']/g, '\\$&'))}'`;
    })
    .join(' ');
}

const signalNames = new Map<number, string>(
  Object.entries(constants.signals).map(([name, number]) => [number, name]),
);

/** `SIGTERM` for 15; `signal 99` for a number this platform does not name. */
export function signalName(signal: number): string {
  return signalNames.get(signal) ?? `signal ${signal}`;
}

/** The state as a lowercase word: running, stopping, finished. */
export function stateName(state: JobState): string {
  switch (state) {
    case JobState.JOB_STATE_RUNNING:
      return 'running';
    case JobState.JOB_STATE_STOPPING:
      return 'stopping';
    case JobState.JOB_STATE_FINISHED:
      return 'finished';
    default:
      return 'unknown';
  }
}

/** The EXIT column of `jobctl list`: the code, the signal name, or `-` while running. */
export function exitColumn(job: Job): string {
  if (job.exitCode !== undefined) return String(job.exitCode);
  if (job.signal !== undefined) return signalName(job.signal);
  return job.endReason === EndReason.END_REASON_LOST ? 'lost' : '-';
}

/** How the job ended, as a phrase: `exited with code 3`, `stopped by alice (SIGTERM)`. */
export function outcome(job: Job): string {
  const by = job.stoppedBy === '' ? '' : ` by ${visible(job.stoppedBy)}`;
  const code = job.exitCode === undefined ? '' : `, exit code ${job.exitCode}`;
  const sig = job.signal === undefined ? '' : ` (${signalName(job.signal)})`;
  switch (job.endReason) {
    case EndReason.END_REASON_EXITED:
      return `exited with code ${job.exitCode ?? '?'}`;
    case EndReason.END_REASON_SIGNALED:
      return `killed by ${job.signal === undefined ? 'a signal' : signalName(job.signal)}`;
    case EndReason.END_REASON_OOM_KILLED:
      // On cgroup v2 (memory.oom.group) the kill takes the whole job; on v1
      // only the offender dies, and the job may go on and exit by itself.
      return job.exitCode === undefined
        ? `killed by the OOM killer at its memory limit${sig}`
        : `exited with code ${job.exitCode} after the OOM killer killed one of its processes at its memory limit`;
    case EndReason.END_REASON_STOPPED:
      return `stopped${by}${sig}${code}`;
    case EndReason.END_REASON_STOP_ESCALATED:
      return `stopped${by}, killed after the grace period${sig}`;
    case EndReason.END_REASON_LOST:
      return 'lost: the server ended while it ran; exit status unknown';
    case EndReason.END_REASON_TIMED_OUT:
      return `timed out after ${job.timeout ? formatDuration(durationMs(job.timeout)) : '?'}${sig}`;
    default:
      return stateName(job.state);
  }
}

/** How long the job ran (or has been running, at `now`), in milliseconds. */
export function runtimeMs(job: Job, now: Date): number {
  const start = job.startedAt?.getTime() ?? now.getTime();
  return Math.max(0, (job.finishedAt ?? now).getTime() - start);
}

/** One line for `jobctl stop`: `ID finished: stopped by alice (SIGTERM) after 1.2s`. */
export function summaryLine(job: Job, now = new Date()): string {
  const state = stateName(job.state);
  const detail = job.state === JobState.JOB_STATE_FINISHED ? `: ${outcome(job)}` : '';
  const verb = job.state === JobState.JOB_STATE_FINISHED ? 'after' : 'for';
  return `${job.id} ${state}${detail} ${verb} ${formatDuration(runtimeMs(job, now))}`;
}

/** The columns of `jobctl list`; `-o wide` adds {@link WIDE_COLUMNS}. */
export const LIST_COLUMNS = ['ID', 'OWNER', 'STATE', 'EXIT', 'AGE', 'COMMAND'] as const;
/** The columns of `jobctl list -o wide`. */
export const WIDE_COLUMNS = ['ID', 'NAME', 'OWNER', 'STATE', 'EXIT', 'AGE', 'LABELS', 'COMMAND'];

/** A job's labels as `k=v,k2=v2` (sorted), `-` when it has none. */
export function labelsText(job: Job): string {
  const labels = Object.entries(job.metadata?.labels ?? {}).sort(([a], [b]) => (a < b ? -1 : 1));
  return labels.length === 0 ? '-' : visible(labels.map(([k, v]) => `${k}=${v}`).join(','));
}

/** The row of `jobctl list -o wide` for one job: every column, nothing truncated. */
export function wideRow(job: Job, now: Date): string[] {
  const [id, owner, state, exit, age, command] = listRow(job, now, Infinity);
  const name = job.metadata?.name ?? '';
  return [
    id ?? '',
    name === '' ? '-' : visible(name),
    owner ?? '',
    state ?? '',
    exit ?? '',
    age ?? '',
    labelsText(job),
    command ?? '',
  ];
}

/** The row of `jobctl list` for one job; the command cut to `commandWidth` characters. */
export function listRow(job: Job, now: Date, commandWidth = 60): string[] {
  const age =
    job.startedAt === undefined ? '-' : formatAge(now.getTime() - job.startedAt.getTime());
  const command = shellQuote(job.command);
  return [
    job.id,
    visible(job.owner),
    stateName(job.state),
    exitColumn(job),
    age,
    truncate(command, commandWidth),
  ];
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 3)}...`;
}
