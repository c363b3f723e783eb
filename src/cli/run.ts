/**
 * `jobctl run [flags] -- CMD [ARG...]`: start a job, stream its output as it
 * comes, and exit with its exit status. The first Ctrl-C stops the job and
 * keeps streaming until it has ended; the second detaches.
 */
import { ErrorCode, JobworkerError } from '../errors.js';
import { OutputStream } from '../gen/jobworker/v1/job_service.js';
import { serverFlags } from './args.js';
import { println, type CommandModule, type Io } from './command.js';
import { Connection } from './connection.js';
import { MAX_FLEET_CONTEXTS } from './contexts.js';
import { fleetOf, runOnFleet } from './fleet-run.js';
import { ExitCode, exitCodeForJob } from './exit-codes.js';
import { jobFlagsHelp, parseJobCommand } from './job-flags.js';
import { copyOutput } from './output.js';
import { visible } from './visible.js';

const help = `Usage: jobctl run [flags] [--] CMD [ARG...]

Start CMD as a job, print its stdout and stderr as they come, and exit with
its exit status: the job's exit code, 128+N if signal N ended it, 127 if it
could not start. Ctrl-C stops the job (SIGTERM, then SIGKILL after the
server's grace period) and keeps printing until it has ended; a second
Ctrl-C detaches, leaving the job as it is, and prints its id (exit 130).

${jobFlagsHelp}
      --no-prefix        on several contexts: no 'context: ' before each line

On several contexts (--context a,b,c or --context-selector env=prod, at most
${MAX_FLEET_CONTEXTS}) the job runs on each at once; every output line comes as
'context: line' (whole lines only, control characters escaped), then a
summary on stderr (context, job id, how it ended). The exit status is 0 when
every job exited 0, else the first failing context's, in the order named (a
selector's: by name). Ctrl-C stops them all; a second Ctrl-C detaches.

Example:
  jobctl run --memory 64M -- sh -c 'echo out; echo err >&2; exit 3'; echo "exit $?"
  jobctl run --context-selector env=prod -- uptime

${serverFlags.helpNote}`;

/** The second Ctrl-C's reason: leave the job alone and exit. */
class Detached extends Error {
  override readonly name = 'Detached';
}

async function main(args: readonly string[], io: Io): Promise<number> {
  const command = parseJobCommand('run', args);
  if (command.kind === 'help') {
    println(io.stdout, help);
    return 0;
  }
  const fleet = await fleetOf(command.connection, io.env);
  if (fleet !== undefined) return runOnFleet(fleet, command.request, command.noPrefix, io);
  const connection = await Connection.open(command.connection, io.env);
  const detach = new AbortController();
  let jobId: string | undefined;
  let interrupts = 0;
  // The StopJob call of the first Ctrl-C; it never rejects, and is awaited
  // (or cancelled by the detach) before run returns.
  let stopping: Promise<void> | undefined;
  const stop = (id: string): void => {
    println(io.stderr, `jobctl: stopping job ${id}; press Ctrl-C again to detach`);
    stopping = connection.stopJob(id, undefined, detach.signal).then(
      () => undefined,
      (err: unknown) => {
        // Already finished: it ended on its own meanwhile, which is fine.
        if (
          detach.signal.aborted ||
          (err instanceof JobworkerError && err.code === ErrorCode.AlreadyFinished)
        )
          return;
        println(io.stderr, `jobctl: cannot stop job ${id}: ${visible((err as Error).message)}`);
      },
    );
  };
  const onSigint = (): void => {
    interrupts++;
    if (interrupts >= 2) detach.abort(new Detached('detached'));
    else if (jobId !== undefined) stop(jobId);
    // Before StartJob has answered there is no id yet: the stop is sent once it has.
  };
  io.signals.on('SIGINT', onSigint);
  try {
    const job = await connection.startJob(command.request, detach.signal);
    jobId = job.id;
    if (interrupts === 1) stop(job.id);
    const messages = connection.streamOutput(
      {
        jobId: job.id,
        stream: OutputStream.OUTPUT_STREAM_UNSPECIFIED,
        stdoutOffset: 0,
        stderrOffset: 0,
        follow: true,
      },
      detach.signal,
    );
    const finished = await copyOutput(messages, io, (cap) => {
      println(
        io.stderr,
        `jobctl: output truncated: the job reached the output cap of ${cap} bytes; the rest was dropped`,
      );
    });
    if (finished === undefined) {
      throw new JobworkerError(
        ErrorCode.Internal,
        `the output stream of job ${job.id} ended before the job did`,
      );
    }
    await stopping;
    return exitCodeForJob(finished);
  } catch (err) {
    if (!(err instanceof Detached)) throw err;
    println(
      io.stderr,
      jobId === undefined
        ? 'jobctl: detached before the server answered; the job may have started: see jobctl list'
        : `jobctl: detached from job ${jobId}; see jobctl status ${jobId}`,
    );
    return ExitCode.Interrupted;
  } finally {
    io.signals.off('SIGINT', onSigint);
    // Ends a StopJob still waiting (the stop itself goes on at the server).
    detach.abort(new Detached('done'));
    await stopping;
    connection.close();
  }
}

/** The `run` command. */
export const command: CommandModule = { help, main };
