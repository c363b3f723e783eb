/**
 * One job: its record (a plain serializable object, persisted as is by
 * store.ts), its sandbox, its output log writer and its lifecycle:
 *
 *   running --stop()--> stopping --exited, streams ended, log closed--> finished
 *   running --exited, streams ended, log closed-----------------------> finished
 *
 * The job is finished only once the sandbox reported its exit AND both
 * output streams ended AND every byte is in the log (fsynced) AND its final
 * record is persisted, so a follower that sees "finished" has read every
 * byte, the digests are final, and a restart reports the same.
 */
import { setMaxListeners } from 'node:events';
import { ErrorCode, JobworkerError } from '../errors.js';
import type { ExitReport, ForwardedSignal, Limits, Sandbox, Usage } from '../isolation/index.js';
import type { LogSource } from './log-reader.js';
import { JobInput, readerAttachment, refuseWriter } from './stdin.js';
import { SharedBlocks } from './shared-blocks.js';
import type { OutputLogWriter } from './log-writer.js';
import type { Notifier } from './notifier.js';
import type { Labels } from './labels.js';
import type {
  Attachment,
  AttachOptions,
  EndReason,
  JobState,
  JobStatus,
  StreamName,
  StreamSummary,
  WatchChange,
} from './types.js';

/** A stream's summary in the persisted record (digest as hex). */
export interface StreamRecord {
  storedBytes: number;
  droppedBytes: number;
  sha256Hex: string | null;
  /** Stream offset from which output is missing after a failed log write; null when complete. */
  incompleteAt: number | null;
}

/** Everything known about a job, as plain JSON-serializable data. */
export interface JobRecord {
  readonly id: string;
  readonly owner: string;
  /** The owner's uid (and gid) the job ran as (owner-ids.ts). */
  readonly uid: number;
  readonly argv: readonly string[];
  readonly cwd: string;
  readonly hostNetwork: boolean;
  /** Started with stdin open (also with a terminal); its bytes are never stored. */
  readonly stdin: boolean;
  /** Started on a terminal of its own. */
  readonly tty: boolean;
  readonly limits: Limits;
  readonly startedAtMs: number;
  /** The job's name; null when it has none. */
  readonly name: string | null;
  readonly labels: Labels;
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
  /** A write to the log failed: output after each stream's `incompleteAt` is missing. */
  outputIncomplete: boolean;
  /** Length of the output log once the job has finished (its committed length); null before. */
  logBytes: number | null;
  /** Position of the log's last SYNC record once the job has finished; null before, or if it has none. */
  lastSyncAt: number | null;
  /** Maximum run time in ms from `startedAtMs`, then stopped as timed_out; 0: none. */
  readonly timeoutMs: number;
}

/** Everything a job is made of, once its sandbox runs. */
export interface JobInit {
  readonly record: JobRecord;
  readonly dir: string;
  readonly logPath: string;
  readonly writer: OutputLogWriter;
  readonly notifier: Notifier;
  readonly sandbox: Sandbox;
  /**
   * Persists the final record before the job is reported finished. Must not
   * reject: a failure is the persister's to report (the job still finishes
   * in memory, and after a restart it shows up as lost).
   */
  readonly persist: (record: JobRecord) => Promise<void>;
  /** Grace period of the stop a timeout makes. */
  readonly timeoutGraceMs: number;
  /** Told of each change of state after the start (stopping, finished), once the status shows it. */
  readonly onChange: (change: WatchChange) => void;
}

/** What a job's record says from its start: the request as applied. */
export type StartFields = Pick<
  JobRecord,
  | 'id'
  | 'owner'
  | 'uid'
  | 'argv'
  | 'cwd'
  | 'hostNetwork'
  | 'stdin'
  | 'tty'
  | 'limits'
  | 'startedAtMs'
  | 'timeoutMs'
  | 'name'
  | 'labels'
>;

const NO_OUTPUT: StreamRecord = {
  storedBytes: 0,
  droppedBytes: 0,
  sha256Hex: null,
  incompleteAt: null,
};

/** The record of a job that has just started: running, no end, no output yet (its end: `LiveJob#finalRecord`). */
export function startRecord(start: StartFields): JobRecord {
  return {
    ...start,
    state: 'running',
    endReason: null,
    exitCode: null,
    signal: null,
    oomKilled: false,
    stoppedBy: null,
    finishedAtMs: null,
    usage: null,
    stdout: { ...NO_OUTPUT },
    stderr: { ...NO_OUTPUT },
    outputTruncated: false,
    outputIncomplete: false,
    logBytes: null,
    lastSyncAt: null,
  };
}

/** Exit report used when a sandbox broke its promise that `exited` never rejects. */
const LOST_REPORT: ExitReport = {
  exitCode: null,
  signal: null,
  oomKilled: false,
  usage: { cpuTimeNs: 0, peakMemoryBytes: 0, ioReadBytes: 0, ioWriteBytes: 0 },
};

/** Recorded as `stoppedBy` for a job stopped by its timeout. */
export const TIMEOUT_STOPPER = 'jobworkerd timeout';

function endReasonOf(report: ExitReport, stopper: string | null, escalated: boolean): EndReason {
  if (report.oomKilled) return 'oom_killed';
  if (stopper === TIMEOUT_STOPPER) return 'timed_out';
  if (stopper !== null) return escalated ? 'stop_escalated' : 'stopped';
  if (report.signal !== null) return 'signaled';
  return 'exited';
}

function summaryOf(s: StreamRecord): StreamSummary {
  return {
    storedBytes: s.storedBytes,
    droppedBytes: s.droppedBytes,
    sha256: s.sha256Hex === null ? null : Buffer.from(s.sha256Hex, 'hex'),
    incompleteAt: s.incompleteAt,
  };
}

/** The frozen status a job's record says (finished jobs, live and restored; a running job adds its live output). */
export function statusOfRecord(r: JobRecord): JobStatus {
  return Object.freeze({
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
    finishedAt: r.finishedAtMs === null ? null : new Date(r.finishedAtMs),
    limits: r.limits,
    usage: r.usage,
    stdout: summaryOf(r.stdout),
    stderr: summaryOf(r.stderr),
    outputTruncated: r.outputTruncated,
    outputIncomplete: r.outputIncomplete,
    timeoutMs: r.timeoutMs,
    name: r.name,
    labels: r.labels,
    stdin: r.stdin,
    tty: r.tty,
  });
}

/**
 * The controller of a job's removal signal. Each follower listens on it, and
 * a thousand followers of one job are normal, not a leak worth a warning.
 */
export function removalController(): AbortController {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  return controller;
}

/** Who removed a job: retention, or a client's DeleteJob. */
export type Remover = 'retention' | 'request';

/** The error a follower or waiter of a removed job ends with. */
export function removedError(id: string, by: Remover): JobworkerError {
  const how = by === 'retention' ? 'by retention' : 'on request';
  return new JobworkerError(ErrorCode.NotFound, `job ${id} was removed ${how}`);
}

/** A running or finished job. Owned by the JobManager. */
export class LiveJob implements LogSource {
  readonly record: JobRecord;
  readonly dir: string;
  readonly path: string;
  readonly notifier: Notifier;
  /** Resolves once the job is finished (never rejects). */
  readonly done: Promise<void>;
  /**
   * What only a running job needs: dropped once it has finished, so that a
   * finished job costs its record and final status only (no helper process
   * object, pipes, file handle or hash state held for its retention time).
   */
  #live: {
    readonly writer: OutputLogWriter;
    readonly sandbox: Sandbox;
    readonly blocks: SharedBlocks;
  } | null;
  /** The log's final length, once `#live` is gone. */
  #finalLength = 0;
  readonly #persist: (record: JobRecord) => Promise<void>;
  readonly #onChange: (change: WatchChange) => void;
  readonly #removed = removalController();
  readonly #exited: Promise<{ report: ExitReport; lost: boolean }>;
  #exitSeen = false;
  #stop: Promise<void> | null = null;
  /** Who asked for the stop under way (the timeout, a client, the shutdown). */
  #stopper: string | null = null;
  #escalated = false;
  /** Stops the job at its deadline; cleared once its process has ended. */
  #deadline: NodeJS.Timeout | undefined;
  #followers = 0;
  #finalStatus: JobStatus | null = null;
  /** The job's input and writer seat, while its process runs (with stdin or a terminal). */
  #input: JobInput | null;

  constructor(init: JobInit) {
    this.record = init.record;
    this.dir = init.dir;
    this.path = init.logPath;
    this.notifier = init.notifier;
    this.#live = { writer: init.writer, sandbox: init.sandbox, blocks: new SharedBlocks() };
    this.#persist = init.persist;
    this.#onChange = init.onChange;
    this.#input =
      init.sandbox.stdin === null ? null : new JobInput(init.record.id, init.sandbox.stdin);
    // A stop after this would signal nothing: the job ended by itself.
    const seen = (): void => {
      this.#exitSeen = true;
      // Nothing reads its input any more: pending writes reject, the writer's seat is freed.
      this.#input?.finish();
      this.#input = null;
    };
    void init.sandbox.ended.then(seen, seen);
    this.#exited = init.sandbox.exited.then(
      (report) => ({ report, lost: false }),
      () => ({ report: LOST_REPORT, lost: true }),
    );
    if (init.record.timeoutMs > 0) {
      const left = init.record.startedAtMs + init.record.timeoutMs - Date.now();
      this.#deadline = setTimeout(
        () => {
          // A job already ended by itself (draining its output) did not time out.
          if (!this.#exitSeen) void this.stop(TIMEOUT_STOPPER, init.timeoutGraceMs);
        },
        Math.max(0, left),
      );
    }
    this.done = this.#run(init.writer, init.sandbox);
  }

  /** Id of the job. */
  get jobId(): string {
    return this.record.id;
  }

  /**
   * Whether the job's process has ended (the job may still be draining
   * output, its usage being read and its cgroups removed).
   */
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
    // Alone, a follower shares with nobody: keep no blocks for it.
    if (this.#followers < 2) this.#live?.blocks.clear();
  }

  /** {@link LogSource.sharedBlocks}: while it runs (its followers are then at the tail). */
  sharedBlocks(): SharedBlocks | null {
    return this.#followers > 1 ? (this.#live?.blocks ?? null) : null;
  }

  /** {@link LogSource.committedLength}. */
  committedLength(): number {
    return this.#live?.writer.committedLength ?? this.#finalLength;
  }

  /** {@link LogSource.lastSyncAt}. */
  lastSyncAt(): number | null {
    return this.#live?.writer.lastSyncAt ?? this.record.lastSyncAt;
  }

  /** {@link LogSource.removed}. */
  get removed(): AbortSignal {
    return this.#removed.signal;
  }

  /** Ends every follower and waiter with not_found and closes their files (the job is removed). */
  markRemoved(by: Remover): void {
    this.#removed.abort(removedError(this.record.id, by));
  }

  /**
   * Sends `signal` to the main process, or to every process with `all`;
   * false when its process has ended (nothing left to signal).
   */
  signal(signal: ForwardedSignal, all: boolean): boolean {
    const sandbox = this.#live?.sandbox;
    if (sandbox === undefined || this.#exitSeen) return false;
    sandbox.signal(signal, all);
    return true;
  }

  /** {@link Jobs.attach} on this job: a reader, or its one stdin writer. */
  attach(options: AttachOptions): Attachment {
    const facts = { id: this.record.id, tty: this.record.tty, ended: () => this.#exitSeen };
    if (!options.write) return readerAttachment(facts);
    if (this.#input === null) refuseWriter(facts);
    return this.#input.attach(options, this.record.tty);
  }

  /** {@link LogSource.finishedStatus}. */
  finishedStatus(): JobStatus | null {
    return this.#finalStatus;
  }

  /** A snapshot of the job's status. */
  status(): JobStatus {
    if (this.#finalStatus !== null) return this.#finalStatus;
    // #live is dropped only after #finalStatus is set.
    const writer = this.#live?.writer;
    if (writer === undefined) {
      throw new JobworkerError(ErrorCode.Internal, `job ${this.record.id} has no status`);
    }
    const failed = writer.writeError !== null;
    const live = (stream: StreamName): StreamSummary => {
      const s = writer.summary(stream);
      return {
        storedBytes: s.storedBytes,
        droppedBytes: s.droppedBytes,
        sha256: null,
        incompleteAt: failed ? s.storedBytes : null,
      };
    };
    // The record of a running job says "no end yet" in every end field; the
    // output fields come from the live writer.
    return {
      ...statusOfRecord(this.record),
      stdout: live('stdout'),
      stderr: live('stderr'),
      outputTruncated: writer.truncated,
      outputIncomplete: failed,
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
    this.#stopper = by;
    this.record.state = 'stopping';
    this.record.stoppedBy = by;
    this.#onChange('stopping');
    try {
      this.#live?.sandbox.terminate();
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
      await this.#live?.sandbox.kill().catch(() => undefined);
    }
    await this.done;
  }

  async #run(writer: OutputLogWriter, sandbox: Sandbox): Promise<void> {
    // Past the cap the sandbox discards and counts the rest (ExitReport.outputBytes):
    // reading it here only to count it kept a core busy (docs/benchmarks.md, scenario 8).
    writer.onTruncated(() => {
      sandbox.discardOutput();
    });
    const streams = Promise.all([
      writer.consume('stdout', sandbox.stdout),
      writer.consume('stderr', sandbox.stderr),
    ]);
    // Closed (its fsync) as soon as both streams ended, while the sandbox still
    // reads the usage and removes the cgroups. close() never rejects.
    const closed = streams.then(() => writer.close());
    const { report, lost } = await this.#exited;
    this.#exitSeen = true;
    this.#input?.finish();
    this.#input = null;
    clearTimeout(this.#deadline);
    await closed;
    const final = this.#finalRecord(writer, report, lost);
    // Persisted before anyone sees "finished": a client told the job ended
    // finds the same report after a restart. Until then the job reads as
    // running (or stopping), as it did while draining its output.
    await this.#persist(final);
    Object.assign(this.record, final);
    this.#finalStatus = statusOfRecord(this.record);
    this.#finalLength = writer.committedLength;
    // Followers now read alone: a stalled one must not keep the blocks alive.
    this.#live?.blocks.clear();
    this.#live = null;
    // Wakes followers waiting for the end: they now see the final status.
    this.notifier.notify();
    this.#onChange('finished');
  }

  #finalRecord(writer: OutputLogWriter, report: ExitReport, lost: boolean): JobRecord {
    const failed = writer.writeError !== null;
    const stream = (name: StreamName): StreamRecord => {
      const s = writer.summary(name);
      // What the job wrote but the log never received (discarded by the sandbox) is dropped too.
      const written = report.outputBytes?.[name] ?? 0;
      writer.noteDiscarded(written - s.storedBytes - s.droppedBytes);
      return {
        storedBytes: s.storedBytes,
        droppedBytes: Math.max(s.droppedBytes, written - s.storedBytes),
        sha256Hex: s.sha256?.toString('hex') ?? null,
        incompleteAt: failed ? s.storedBytes : null,
      };
    };
    return {
      ...this.record,
      state: 'finished',
      endReason: lost ? 'lost' : endReasonOf(report, this.#stopper, this.#escalated),
      exitCode: report.exitCode,
      signal: report.signal,
      oomKilled: report.oomKilled,
      finishedAtMs: Date.now(),
      usage: report.usage,
      stdout: stream('stdout'),
      stderr: stream('stderr'),
      outputTruncated: writer.truncated,
      outputIncomplete: failed,
      logBytes: writer.committedLength,
      lastSyncAt: writer.lastSyncAt,
    };
  }
}
