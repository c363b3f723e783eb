/**
 * One job: its record (a plain serializable object, so that issue 7 can
 * persist it as is), its sandbox, its output log writer and its lifecycle:
 *
 *   running --stop()--> stopping --exited, streams ended, log closed--> finished
 *   running --exited, streams ended, log closed-----------------------> finished
 *
 * The job is finished only once the sandbox reported its exit AND both
 * output streams ended AND every byte is in the log, so a follower that sees
 * "finished" has read every byte, and the digests are final.
 */
import type { ExitReport, Limits, Sandbox, Usage } from '../isolation/index.js';
import type { LogSource } from './log-reader.js';
import type { OutputLogWriter } from './log-writer.js';
import type { Notifier } from './notifier.js';
import type { EndReason, JobState, JobStatus, StreamName, StreamSummary } from './types.js';

/** A stream's summary in the persisted record (digest as hex). */
export interface StreamRecord {
  storedBytes: number;
  droppedBytes: number;
  sha256Hex: string | null;
}

/** Everything known about a job, as plain JSON-serializable data. */
export interface JobRecord {
  readonly id: string;
  readonly owner: string;
  readonly argv: readonly string[];
  readonly cwd: string;
  readonly hostNetwork: boolean;
  readonly limits: Limits;
  readonly startedAtMs: number;
  state: JobState;
  endReason: EndReason | null;
  exitCode: number | null;
  signal: number | null;
  oomKilled: boolean;
  stoppedBy: string | null;
  finishedAtMs: number | null;
  usage: Usage | null;
  stdout: StreamRecord;
  stderr: StreamRecord;
  outputTruncated: boolean;
  /** A write to the log failed: output after the stored bytes is missing (issue 7 refines). */
  outputIncomplete: boolean;
}

/** Everything a job is made of, once its sandbox runs. */
export interface JobInit {
  readonly record: JobRecord;
  readonly dir: string;
  readonly logPath: string;
  readonly writer: OutputLogWriter;
  readonly notifier: Notifier;
  readonly sandbox: Sandbox;
}

/** Exit report used when a sandbox broke its promise that `exited` never rejects. */
const LOST_REPORT: ExitReport = {
  exitCode: null,
  signal: null,
  oomKilled: false,
  usage: { cpuTimeNs: 0, peakMemoryBytes: 0, ioReadBytes: 0, ioWriteBytes: 0 },
};

function endReasonOf(report: ExitReport, stopRequested: boolean, escalated: boolean): EndReason {
  if (report.oomKilled) return 'oom_killed';
  if (stopRequested) return escalated ? 'stop_escalated' : 'stopped';
  if (report.signal !== null) return 'signaled';
  return 'exited';
}

function summaryOf(s: StreamRecord): StreamSummary {
  return {
    storedBytes: s.storedBytes,
    droppedBytes: s.droppedBytes,
    sha256: s.sha256Hex === null ? null : Buffer.from(s.sha256Hex, 'hex'),
  };
}

/** A running or finished job. Owned by the JobManager. */
export class Job implements LogSource {
  readonly record: JobRecord;
  readonly dir: string;
  readonly path: string;
  readonly notifier: Notifier;
  /** Resolves once the job is finished (never rejects). */
  readonly done: Promise<void>;
  readonly #writer: OutputLogWriter;
  readonly #sandbox: Sandbox;
  readonly #exited: Promise<{ report: ExitReport; lost: boolean }>;
  #exitSeen = false;
  #stop: Promise<void> | null = null;
  #escalated = false;
  #followers = 0;
  #finalStatus: JobStatus | null = null;

  constructor(init: JobInit) {
    this.record = init.record;
    this.dir = init.dir;
    this.path = init.logPath;
    this.notifier = init.notifier;
    this.#writer = init.writer;
    this.#sandbox = init.sandbox;
    this.#exited = init.sandbox.exited.then(
      (report) => ({ report, lost: false }),
      () => ({ report: LOST_REPORT, lost: true }),
    );
    this.done = this.#run();
  }

  /** Id of the job. */
  get jobId(): string {
    return this.record.id;
  }

  /** Whether the sandbox has reported its exit (the job may still be draining output). */
  get exitSeen(): boolean {
    return this.#exitSeen;
  }

  /** Number of open followers of this job's output. */
  get followers(): number {
    return this.#followers;
  }

  /** {@link LogSource.followerCount}. */
  followerCount(delta: 1 | -1): void {
    this.#followers += delta;
  }

  /** {@link LogSource.committedLength}. */
  committedLength(): number {
    return this.#writer.committedLength;
  }

  /** {@link LogSource.finishedStatus}. */
  finishedStatus(): JobStatus | null {
    return this.#finalStatus;
  }

  /** A snapshot of the job's status. */
  status(): JobStatus {
    if (this.#finalStatus !== null) return this.#finalStatus;
    const r = this.record;
    const live = (stream: StreamName): StreamSummary => {
      const s = this.#writer.summary(stream);
      return { storedBytes: s.storedBytes, droppedBytes: s.droppedBytes, sha256: null };
    };
    return {
      id: r.id,
      owner: r.owner,
      argv: r.argv,
      cwd: r.cwd,
      hostNetwork: r.hostNetwork,
      state: r.state,
      endReason: null,
      exitCode: null,
      signal: null,
      oomKilled: false,
      stoppedBy: r.stoppedBy,
      startedAt: new Date(r.startedAtMs),
      finishedAt: null,
      limits: r.limits,
      usage: null,
      stdout: live('stdout'),
      stderr: live('stderr'),
      outputTruncated: this.#writer.truncated,
      outputIncomplete: this.#writer.writeError !== null,
    };
  }

  /**
   * Stops the job: SIGTERM, then after `graceMs` kill everything left.
   * Concurrent calls share one stop. Resolves once the job is finished.
   */
  stop(by: string, graceMs: number): Promise<void> {
    this.#stop ??= this.#runStop(by, graceMs);
    return this.#stop;
  }

  async #runStop(by: string, graceMs: number): Promise<void> {
    this.record.state = 'stopping';
    this.record.stoppedBy = by;
    try {
      this.#sandbox.terminate();
    } catch {
      // Nothing to signal (e.g. the helper has just exited): the grace period and kill() still apply.
    }
    // The grace timer belongs to this job alone and is cleared on exit.
    let timer: NodeJS.Timeout | undefined;
    const expired = await new Promise<boolean>((resolve) => {
      timer = setTimeout(resolve, graceMs, true);
      void this.#exited.then(() => {
        resolve(false);
      });
    });
    clearTimeout(timer);
    if (expired) {
      this.#escalated = true;
      // kill() resolves when nothing is left; a failure still ends in `exited`.
      await this.#sandbox.kill().catch(() => undefined);
    }
    await this.done;
  }

  async #run(): Promise<void> {
    const streams = Promise.all([
      this.#writer.consume('stdout', this.#sandbox.stdout),
      this.#writer.consume('stderr', this.#sandbox.stderr),
    ]);
    const { report, lost } = await this.#exited;
    this.#exitSeen = true;
    await streams;
    await this.#writer.close();
    this.#finish(report, lost);
  }

  #finish(report: ExitReport, lost: boolean): void {
    const r = this.record;
    const stream = (name: StreamName): StreamRecord => {
      const s = this.#writer.summary(name);
      return {
        storedBytes: s.storedBytes,
        droppedBytes: s.droppedBytes,
        sha256Hex: s.sha256?.toString('hex') ?? null,
      };
    };
    r.state = 'finished';
    r.endReason = lost ? 'lost' : endReasonOf(report, this.#stop !== null, this.#escalated);
    r.exitCode = report.exitCode;
    r.signal = report.signal;
    r.oomKilled = report.oomKilled;
    r.finishedAtMs = Date.now();
    r.usage = report.usage;
    r.stdout = stream('stdout');
    r.stderr = stream('stderr');
    r.outputTruncated = this.#writer.truncated;
    r.outputIncomplete = this.#writer.writeError !== null;
    // Frozen: one final snapshot is handed to every caller and follower.
    this.#finalStatus = Object.freeze({
      id: r.id,
      owner: r.owner,
      argv: r.argv,
      cwd: r.cwd,
      hostNetwork: r.hostNetwork,
      state: r.state,
      endReason: r.endReason,
      exitCode: r.exitCode,
      signal: r.signal,
      oomKilled: r.oomKilled,
      stoppedBy: r.stoppedBy,
      startedAt: new Date(r.startedAtMs),
      finishedAt: new Date(r.finishedAtMs),
      limits: r.limits,
      usage: r.usage,
      stdout: summaryOf(r.stdout),
      stderr: summaryOf(r.stderr),
      outputTruncated: r.outputTruncated,
      outputIncomplete: r.outputIncomplete,
    });
    // Wakes followers waiting for the end: they now see the final status.
    this.notifier.notify();
  }
}
