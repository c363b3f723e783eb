/** `jobctl logs [-f] [--stdout|--stderr] ID`: a job's output from its first byte, byte-exact. */
import { ErrorCode, JobworkerError } from '../errors.js';
import { OutputStream } from '../gen/jobworker/v1/job_service.js';
import { oneJobId, serverFlags, type ParsedCommand } from './args.js';
import { println, type CommandModule, type Io } from './command.js';
import { Connection } from './connection.js';
import { ExitCode, exitCodeForJob } from './exit-codes.js';
import { UsageError } from './failures.js';
import { copyOutput } from './output.js';

const options = {
  ...serverFlags.options,
  follow: { type: 'boolean', short: 'f' },
  stdout: { type: 'boolean' },
  stderr: { type: 'boolean' },
} as const;

/** A parsed `logs`. */
export type LogsCommand = ParsedCommand<
  'logs',
  { id: string; follow: boolean; stream: OutputStream }
>;

/** Parses `logs` arguments. */
export function parseLogs(args: readonly string[]): LogsCommand {
  const { values, positionals } = serverFlags.parse('logs', args, options, true);
  if (values.help === true) return { kind: 'help' };
  if (values.stdout === true && values.stderr === true) {
    throw new UsageError(
      'logs: --stdout and --stderr exclude each other; give neither for both streams',
    );
  }
  const stream =
    values.stdout === true
      ? OutputStream.OUTPUT_STREAM_STDOUT
      : values.stderr === true
        ? OutputStream.OUTPUT_STREAM_STDERR
        : OutputStream.OUTPUT_STREAM_UNSPECIFIED;
  return {
    kind: 'logs',
    id: oneJobId('logs', positionals),
    follow: values.follow === true,
    stream,
    connection: serverFlags.connection(values),
  };
}

const help = `Usage: jobctl logs [-f] [--stdout | --stderr] ID

Print a job's output from its first byte, exactly as the job wrote it: its
stdout to stdout and its stderr to stderr.

Flags:
  -f, --follow   keep printing output as the job writes it until the job ends,
                 then exit with the job's exit status (128+N if signal N ended it);
                 Ctrl-C stops following (exit 130) and leaves the job running
      --stdout   only the job's standard output
      --stderr   only the job's standard error

Example:
  jobctl logs -f 0f3k9q2m7d1c8b6a5t4s3r2p1n
  jobctl logs --stdout 0f3k9q2m7d1c8b6a5t4s3r2p1n > out.bin

${serverFlags.helpNote}`;

/** Ctrl-C's reason: ends the follow; not an error to report. */
class Interrupted extends Error {
  override readonly name = 'Interrupted';
}

async function main(args: readonly string[], io: Io): Promise<number> {
  const command = parseLogs(args);
  if (command.kind === 'help') {
    println(io.stdout, help);
    return 0;
  }
  const connection = await Connection.open(command.connection, io.env);
  const interrupt = new AbortController();
  const onSigint = (): void => {
    interrupt.abort(new Interrupted('interrupted'));
  };
  io.signals.on('SIGINT', onSigint);
  try {
    const messages = connection.streamOutput(
      {
        jobId: command.id,
        stream: command.stream,
        stdoutOffset: 0,
        stderrOffset: 0,
        follow: command.follow,
      },
      interrupt.signal,
    );
    const finished = await copyOutput(messages, io, (cap) => {
      println(
        io.stderr,
        `jobctl: output truncated: the job reached the output cap of ${cap} bytes; the rest was dropped`,
      );
    });
    if (!command.follow) return ExitCode.Ok;
    if (finished === undefined) {
      throw new JobworkerError(
        ErrorCode.Internal,
        `the output stream of job ${command.id} ended before the job did`,
      );
    }
    return exitCodeForJob(finished);
  } catch (err) {
    if (err instanceof Interrupted) return ExitCode.Interrupted;
    throw err;
  } finally {
    io.signals.off('SIGINT', onSigint);
    connection.close();
  }
}

/** The `logs` command. */
export const command: CommandModule = { help, main };
