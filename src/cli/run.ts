/**
 * `jobctl run [flags] -- CMD [ARG...]`: start a job, stream its output as it
 * comes, and exit with its exit status. The first Ctrl-C stops the job and
 * keeps streaming until it has ended; the second detaches. With -i and/or
 * -t the output comes through an attachment (attach-session.ts), which
 * also carries stdin, the window size, and with -it the raw terminal.
 */
import { ErrorCode, JobworkerError } from '../errors.js';
import { OutputStream } from '../gen/jobworker/v1/job_service.js';
import { serverFlags } from './args.js';
import { println, type CommandModule, type Io } from './command.js';
import { Connection } from './connection.js';
import { MAX_FLEET_CONTEXTS } from './contexts.js';
import { fleetOf, runOnFleet } from './fleet-run.js';
import { ExitCode, exitCodeForJob } from './exit-codes.js';
import { attachSession, exitCodeOfSession } from './attach-session.js';
import { DETACH_KEYS_TEXT } from './detach-keys.js';
import { UsageError } from './failures.js';
import { jobFlagsHelp, parseJobCommand, terminalOf, type JobCommand } from './job-flags.js';
import { copyOutput } from './output.js';
import { visible } from './visible.js';

const help = `Usage: jobctl run [flags] [--] CMD [ARG...]

Start CMD as a job, print its stdout and stderr as they come, and exit with
its exit status: the job's exit code, 128+N if signal N ended it, 127 if it
could not start. Ctrl-C stops the job (SIGTERM, then SIGKILL after the
server's grace period) and keeps printing until it has ended; a second
Ctrl-C detaches, leaving the job as it is, and prints its id (exit 130).

Input: without -i the job's stdin is /dev/null (a command that reads it
sees end of input at once). With -i jobctl's stdin is copied to the job,
and its end closes the job's stdin: echo hello | jobctl run -i -- cat.
-t gives the job a terminal (one merged output stream), sized as yours and
resized with it, with your TERM. -it together: your terminal is put in raw
mode (restored however jobctl ends), so every key, Ctrl-C and Ctrl-D
included, goes to the job's terminal; ${DETACH_KEYS_TEXT} detaches (exit 0) and
'jobctl attach ID' comes back. When jobctl goes away (detached, killed,
connection lost) the job keeps running; SIGTERM or SIGHUP to jobctl
detaches it (exit 128+N). -it needs a terminal as stdin.

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
  printf 'b\na\n' | jobctl run -i -- sort
  jobctl run -it -- sh

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
  const raw = command.interactive && command.tty;
  if (raw && io.stdin.isTTY !== true) {
    throw new UsageError(
      'run: -it needs a terminal as stdin; use -i alone to pipe input to the job',
    );
  }
  const fleet = await fleetOf(command.connection, io.env);
  if (fleet !== undefined) {
    if (command.interactive || command.tty) {
      throw new UsageError('run: -i and -t take one context, not several');
    }
    return runOnFleet(fleet, command.request, command.noPrefix, io);
  }
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
    const job = await connection.startJob(
      command.tty ? { ...command.request, terminal: terminalOf(io) } : command.request,
      detach.signal,
    );
    jobId = job.id;
    if (interrupts === 1) stop(job.id);
    if (command.interactive || command.tty) {
      const end = await attachSession(
        connection,
        sessionOptions(job.id, command),
        io,
        detach.signal,
      );
      await stopping;
      return exitCodeOfSession(end, job.id, io);
    }
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

function sessionOptions(jobId: string, command: Extract<JobCommand, { kind: 'job' }>) {
  return {
    jobId,
    // The writer seat carries the window size too: -t alone takes it without sending input.
    write: true,
    forwardStdin: command.interactive,
    raw: command.interactive && command.tty,
    resize: command.tty,
  };
}

/** The `run` command. */
export const command: CommandModule = { help, main };
