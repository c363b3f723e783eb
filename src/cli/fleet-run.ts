/**
 * `jobctl run --context a,b,c` (or `--context-selector SEL`): one job on
 * several hosts at once, pdsh-style. Each host's output lines come prefixed
 * with its context's name (`a: line`, off with `--no-prefix`), whole lines
 * only, control characters escaped; then a summary on stderr, one row per
 * context: its job id and how it ended, or why it never ran. The exit status
 * is 0 when every job exited 0, else the first failing context's status in
 * the order the contexts were named (a selector's: sorted by name), as
 * `jobctl wait` does for several jobs. Ctrl-C stops every job and keeps
 * following them; a second Ctrl-C detaches. Each host has its own connection
 * and a bounded dial, so one that is down or silent cannot hold the others.
 */
import { ErrorCode, JobworkerError } from '../errors.js';
import { OutputStream, type Job, type StartJobRequest } from '../gen/jobworker/v1/job_service.js';
import { onAbort, type Dispose } from '../signals.js';
import { println, type Io } from './command.js';
import { Connection, dialTimeoutMs } from './connection.js';
import { resolveTargets, type NamedTarget } from './contexts.js';
import type { ConnectionFlags } from './args.js';
import { ExitCode, exitCodeForError, exitCodeForJob } from './exit-codes.js';
import { formatTable, outcome } from './format.js';
import { Detached, listenForInterrupts, type Interrupts } from './interrupt.js';
import { formatLines, LineSplitter } from './lines.js';
import { forEachChunk, write } from './output.js';
import { visible } from './visible.js';

/** One context of the run. */
export interface FleetHost {
  readonly name: string;
  readonly target: NamedTarget['target'];
}

/** How one context's run ended. */
interface HostOutcome {
  readonly name: string;
  jobId?: string;
  job?: Job | undefined;
  error?: unknown;
}

/**
 * The contexts `run` runs on when it runs on several: those of a
 * `--context-selector`, or of a `--context` (or JOBCTL_CONTEXT) list with
 * more than one name; undefined for an ordinary one-host run.
 */
export async function fleetOf(
  flags: ConnectionFlags,
  env: NodeJS.ProcessEnv,
): Promise<FleetHost[] | undefined> {
  const named = flags.context ?? env['JOBCTL_CONTEXT'] ?? '';
  if (flags.contextSelector === undefined && !named.includes(',')) return undefined;
  const targets = await resolveTargets('run', flags, env, true);
  return targets.map(({ name, target }) => ({ name: name ?? '', target }));
}

/** Runs `request` on every host at once; returns the exit status. */
export async function runOnFleet(
  hosts: readonly FleetHost[],
  request: StartJobRequest,
  noPrefix: boolean,
  io: Io,
): Promise<number> {
  const interrupts = listenForInterrupts(io, () => {
    println(
      io.stderr,
      `jobctl: stopping the jobs on ${hosts.length} contexts; press Ctrl-C again to detach`,
    );
  });
  let outcomes: HostOutcome[];
  try {
    outcomes = await Promise.all(
      hosts.map((host) =>
        runOnHost(host, request, noPrefix ? undefined : host.name, interrupts, io),
      ),
    );
  } finally {
    interrupts.dispose();
  }
  println(io.stderr, summary(outcomes));
  const failed = outcomes.map(exitStatus).find((status) => status !== ExitCode.Ok);
  return failed ?? ExitCode.Ok;
}

async function runOnHost(
  host: FleetHost,
  request: StartJobRequest,
  prefix: string | undefined,
  interrupts: Interrupts,
  io: Io,
): Promise<HostOutcome> {
  const result: HostOutcome = { name: host.name };
  let connection: Connection | undefined;
  let stopListening: Dispose = () => undefined;
  // The StopJob of the first Ctrl-C; it never rejects.
  let stopping: Promise<void> | undefined;
  try {
    connection = await Connection.to(host.target);
    await connection.dial(dialTimeoutMs, interrupts.detach);
    // Interrupted while dialing: nothing was started, so nothing is to be stopped.
    if (interrupts.stop.aborted) throw interrupts.stop.reason as Error;
    const job = await connection.startJob(request, interrupts.detach);
    result.jobId = job.id;
    const started = connection;
    stopListening = onAbort(interrupts.stop, () => {
      stopping = stopJob(started, host.name, job.id, interrupts.detach, io);
    });
    const lines = { stdout: new LineSplitter(), stderr: new LineSplitter() };
    const print = async (stream: 'stdout' | 'stderr', found: Buffer[]) => {
      if (found.length > 0) await write(io[stream], Buffer.from(formatLines(prefix, found)));
    };
    const messages = connection.streamOutput(
      {
        jobId: job.id,
        stream: OutputStream.OUTPUT_STREAM_UNSPECIFIED,
        stdoutOffset: 0,
        stderrOffset: 0,
        follow: true,
      },
      interrupts.detach,
    );
    try {
      result.job = await forEachLine(messages, lines, print, host.name, io);
    } finally {
      // What an unfinished last line held is written, whatever ended the stream.
      for (const stream of ['stdout', 'stderr'] as const) {
        const rest = lines[stream].flush();
        if (rest !== undefined) await print(stream, [rest]);
      }
    }
    if (result.job === undefined) {
      throw new JobworkerError(
        ErrorCode.Internal,
        `the output stream of job ${job.id} ended before the job did`,
      );
    }
  } catch (err) {
    result.error = err;
  } finally {
    stopListening();
    await stopping;
    connection?.close();
  }
  return result;
}

async function forEachLine(
  messages: ReturnType<Connection['streamOutput']>,
  lines: Readonly<Record<'stdout' | 'stderr', LineSplitter>>,
  print: (stream: 'stdout' | 'stderr', found: Buffer[]) => Promise<void>,
  name: string,
  io: Io,
): Promise<Job | undefined> {
  return forEachChunk(
    messages,
    (stream, data) => {
      const which = stream === OutputStream.OUTPUT_STREAM_STDERR ? 'stderr' : 'stdout';
      return print(which, lines[which].push(data));
    },
    (cap) => {
      println(
        io.stderr,
        `jobctl: context ${name}: output truncated: the job reached the output cap of ${cap} bytes; the rest was dropped`,
      );
    },
  );
}

async function stopJob(
  connection: Connection,
  name: string,
  jobId: string,
  detach: AbortSignal,
  io: Io,
): Promise<void> {
  try {
    await connection.stopJob(jobId, undefined, detach);
  } catch (err) {
    // Finished meanwhile, or given up on by a second Ctrl-C: nothing to say.
    if (detach.aborted || (err instanceof JobworkerError && err.code === ErrorCode.AlreadyFinished))
      return;
    println(io.stderr, `jobctl: context ${name}: cannot stop job ${jobId}: ${oneLine(err)}`);
  }
}

/** The summary table: CONTEXT, JOB, RESULT. */
function summary(outcomes: readonly HostOutcome[]): string {
  const rows = outcomes.map((o) => [o.name, o.jobId ?? '-', resultText(o)]);
  return formatTable(['CONTEXT', 'JOB', 'RESULT'], rows);
}

function resultText(o: HostOutcome): string {
  if (o.job !== undefined) return outcome(o.job);
  if (o.error instanceof Detached) {
    if (o.jobId !== undefined) return `detached; see jobctl --context ${o.name} status ${o.jobId}`;
    return o.error.message === 'stopping'
      ? 'not started: interrupted'
      : 'detached before the server answered; see jobctl list';
  }
  return oneLine(o.error);
}

/** The exit status one context contributes: 0, the job's status, or its error's. */
function exitStatus(o: HostOutcome): number {
  if (o.job !== undefined) return exitCodeForJob(o.job);
  if (o.error instanceof Detached) return ExitCode.Interrupted;
  return exitCodeForError(o.error);
}

function oneLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  const known = err instanceof JobworkerError || exitCodeForError(err) !== ExitCode.Internal;
  return visible((known ? text : `internal error: ${text}`).replace(/\s*\n\s*/g, ' '));
}
