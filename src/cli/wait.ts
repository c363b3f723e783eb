/**
 * `jobctl wait [--timeout DURATION] ID...`: blocks until each job has ended,
 * prints each one's exit status and exits with the first one's, as `docker
 * wait`. The server answers each wait when the job ends: nothing polls.
 */
import { ErrorCode, JobworkerError } from '../errors.js';
import { serverFlags, type ParsedCommand } from './args.js';
import { println, type CommandModule, type Io } from './command.js';
import { Connection } from './connection.js';
import { exitCodeForJob } from './exit-codes.js';
import { UsageError } from './failures.js';
import { formatDuration, parseDuration } from './units.js';

const options = { ...serverFlags.options, timeout: { type: 'string' } } as const;

/** A parsed `wait`. */
export type WaitCommand = ParsedCommand<'wait', { ids: string[]; timeoutMs: number }>;

/** Parses `wait` arguments; no --timeout waits as long as it takes (Infinity). */
export function parseWait(args: readonly string[]): WaitCommand {
  const { values, positionals } = serverFlags.parse('wait', args, options, true);
  if (values.help === true) return { kind: 'help' };
  if (positionals.length === 0 || positionals.includes('')) {
    throw new UsageError('wait: missing job id; usage: jobctl wait [flags] ID...');
  }
  const timeoutMs =
    values.timeout === undefined ? Infinity : parseDuration('--timeout', values.timeout);
  if (timeoutMs === 0) throw new UsageError('--timeout 0 would not wait; leave it out to wait');
  return {
    kind: 'wait',
    ids: positionals,
    timeoutMs,
    connection: serverFlags.connection(values),
  };
}

const help = `Usage: jobctl wait [--timeout DURATION] ID...

Wait until each job has ended, print each one's exit status (its exit code,
or 128+N for signal N) on a line of its own, and exit with the first one's.

Flags:
      --timeout DURATION   give up after this long: 30s, 10m (exit 124)

Example:
  id=$(jobctl start -- sh -c 'sleep 2; exit 3')
  jobctl wait --timeout 1m "$id"; echo "exit $?"

${serverFlags.helpNote}`;

async function main(args: readonly string[], io: Io): Promise<number> {
  const command = parseWait(args);
  if (command.kind === 'help') {
    println(io.stdout, help);
    return 0;
  }
  const connection = await Connection.open(command.connection, io.env);
  const interrupt = new AbortController();
  const onSigint = (): void => {
    interrupt.abort(new JobworkerError(ErrorCode.Cancelled, 'interrupted'));
  };
  io.signals.on('SIGINT', onSigint);
  try {
    // Concurrent: each wait is one call on the same connection, ended by its job's end.
    const jobs = await Promise.all(
      command.ids.map((id) =>
        connection.waitJob(id, command.timeoutMs, interrupt.signal).catch((err: unknown) => {
          if (err instanceof JobworkerError && err.code === ErrorCode.DeadlineExceeded) {
            const after = formatDuration(command.timeoutMs);
            throw new JobworkerError(err.code, `job ${id} did not end within ${after}`);
          }
          throw err;
        }),
      ),
    );
    const codes = jobs.map(exitCodeForJob);
    for (const code of codes) println(io.stdout, String(code));
    return codes[0] ?? 0;
  } finally {
    io.signals.off('SIGINT', onSigint);
    connection.close();
  }
}

/** The `wait` command. */
export const command: CommandModule = { help, main };
