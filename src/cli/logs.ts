/**
 * `jobctl logs [-f] [--tail N] [--since WHEN] [-t] [--stdout|--stderr] ID`: a
 * job's output, byte-exact, from its first byte or from where the user wants;
 * with -t each line is prefixed with the time it was stored.
 */
import { ErrorCode, JobworkerError } from '../errors.js';
import { OutputStream, type StreamOutputResponse } from '../gen/jobworker/v1/job_service.js';
import { oneJobId, serverFlags, type ParsedCommand } from './args.js';
import { println, type CommandModule, type Io } from './command.js';
import { Connection } from './connection.js';
import { ExitCode, exitCodeForJob } from './exit-codes.js';
import { UsageError } from './failures.js';
import { untilInterrupted } from './interrupt.js';
import { copyOutput } from './output.js';
import { parseDuration } from './units.js';

const options = {
  ...serverFlags.options,
  follow: { type: 'boolean', short: 'f' },
  stdout: { type: 'boolean' },
  stderr: { type: 'boolean' },
  tail: { type: 'string', short: 'n' },
  since: { type: 'string' },
  timestamps: { type: 'boolean', short: 't' },
} as const;

/** A parsed `logs`. */
export type LogsCommand = ParsedCommand<
  'logs',
  {
    id: string;
    follow: boolean;
    stream: OutputStream;
    tailLines: number | undefined;
    since: Date | undefined;
    timestamps: boolean;
  }
>;

/** A whole number of lines, 0 or more, that fits the request's uint32 (the server has its own maximum). */
export function parseTail(command: string, value: string): number {
  const n = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!(n <= 0xffff_ffff)) {
    throw new UsageError(
      `${command}: --tail ${JSON.stringify(value)} is not a number of lines (0 or more)`,
    );
  }
  return n;
}

/** RFC 3339 with a zone, as `date --rfc-3339` and kubectl print it (a space may replace the T). */
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/** `--since`: a duration back from `now` (`10m`, `1h30m`) or an RFC 3339 time. */
export function parseSince(value: string, now: number): Date {
  if (RFC3339.test(value)) {
    const ms = Date.parse(value.replace(' ', 'T'));
    if (!Number.isNaN(ms)) return new Date(ms);
  } else {
    try {
      return new Date(now - parseDuration('--since', value));
    } catch {
      // Neither form: one message names both below.
    }
  }
  throw new UsageError(
    `logs: --since ${JSON.stringify(value)} is neither a duration (10m, 1h30m) nor an RFC 3339 time (2026-01-02T15:04:05Z)`,
  );
}

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
    tailLines: values.tail === undefined ? undefined : parseTail('logs', values.tail),
    since: values.since === undefined ? undefined : parseSince(values.since, Date.now()),
    timestamps: values.timestamps === true,
    connection: serverFlags.connection(values),
  };
}

const help = `Usage: jobctl logs [-f] [--tail N] [--since WHEN] [-t] [--stdout | --stderr] ID

Print a job's output, exactly as the job wrote it: its stdout to stdout and
its stderr to stderr. From its first byte unless --tail or --since say where.

Flags:
  -f, --follow       keep printing output as the job writes it until the job ends,
                     then exit with the job's exit status (128+N if signal N ended it);
                     Ctrl-C stops following (exit 130) and leaves the job running
  -n, --tail N       only the last N lines stored so far (of the streams printed,
                     together, as tail -n); 0: none; with -f, then new output
      --since WHEN   only output stored since WHEN: a duration back from now
                     (10m, 1h30m) or an RFC 3339 time (2026-01-02T15:04:05Z);
                     with --tail, the later start wins
  -t, --timestamps   prefix each line with the time its first byte was stored
                     (RFC 3339, UTC, milliseconds; "-" where the server kept no time)
      --stdout       only the job's standard output
      --stderr       only the job's standard error

Example:
  jobctl logs -f 0f3k9q2m7d1c8b6a5t4s3r2p1n
  jobctl logs --tail 100 -f 0f3k9q2m7d1c8b6a5t4s3r2p1n
  jobctl logs --since 10m -t 0f3k9q2m7d1c8b6a5t4s3r2p1n
  jobctl logs --stdout 0f3k9q2m7d1c8b6a5t4s3r2p1n > out.bin

${serverFlags.helpNote}`;

/** Stamp of a line whose time the server did not keep: as wide as a time. */
const UNDATED = '-'.padEnd('2026-01-02T15:04:05.000Z'.length);
const NEWLINE = 0x0a;

/**
 * Prefixes each line of the job's output with the time the chunk holding its
 * first byte was stored (as docker logs -t); each stream has its own lines.
 */
export async function* withTimestamps(
  messages: AsyncIterable<StreamOutputResponse>,
): AsyncGenerator<StreamOutputResponse, void, undefined> {
  const atLineStart = new Map<OutputStream, boolean>();
  for await (const message of messages) {
    if (message.event?.$case !== 'chunk') {
      yield message;
      continue;
    }
    const chunk = message.event.value;
    const stamp = Buffer.from(`${chunk.storedAt?.toISOString() ?? UNDATED} `);
    const data = Buffer.from(chunk.data.buffer, chunk.data.byteOffset, chunk.data.byteLength);
    const parts: Buffer[] = [];
    let start = atLineStart.get(chunk.stream) ?? true;
    for (let at = 0; at < data.length;) {
      const nl = data.indexOf(NEWLINE, at);
      const end = nl === -1 ? data.length : nl + 1;
      if (start) parts.push(stamp);
      parts.push(data.subarray(at, end));
      start = nl !== -1;
      at = end;
    }
    atLineStart.set(chunk.stream, start);
    yield { event: { $case: 'chunk', value: { ...chunk, data: Buffer.concat(parts) } } };
  }
}

async function main(args: readonly string[], io: Io): Promise<number> {
  const command = parseLogs(args);
  if (command.kind === 'help') {
    println(io.stdout, help);
    return 0;
  }
  const connection = await Connection.open(command.connection, io.env);
  try {
    return await untilInterrupted(io, (signal) => follow(connection, command, io, signal));
  } finally {
    connection.close();
  }
}

/** Copies the job's output to stdout and stderr; the job's exit status when following it to its end. */
async function follow(
  connection: Connection,
  command: Extract<LogsCommand, { kind: 'logs' }>,
  io: Io,
  signal: AbortSignal,
): Promise<number> {
  const stream = connection.streamOutput(
    {
      jobId: command.id,
      stream: command.stream,
      stdoutOffset: 0,
      stderrOffset: 0,
      follow: command.follow,
      tailLines: command.tailLines,
      since: command.since,
    },
    signal,
  );
  const messages = command.timestamps ? withTimestamps(stream) : stream;
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
}

/** The `logs` command. */
export const command: CommandModule = { help, main };
