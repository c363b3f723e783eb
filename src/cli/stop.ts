/** `jobctl stop [--grace DURATION] ID`: SIGTERM, grace period, then kill; prints the final status line. */
import { oneJobId, serverFlags, type ParsedCommand } from './args.js';
import { println, type CommandModule, type Io } from './command.js';
import { Connection } from './connection.js';
import { UsageError } from './failures.js';
import { summaryLine } from './format.js';
import { parseDuration } from './units.js';

const options = { ...serverFlags.options, grace: { type: 'string' } } as const;

/** The server's upper bound on the grace period (jobworker.v1.StopJobRequest). */
const maxGraceMs = 5 * 60_000;

/** A parsed `stop`. */
export type StopCommand = ParsedCommand<
  'stop',
  {
    id: string;
    /** Undefined: the server's default (10 s). */
    graceMs: number | undefined;
  }
>;

/** Parses `stop` arguments. */
export function parseStop(args: readonly string[]): StopCommand {
  const { values, positionals } = serverFlags.parse('stop', args, options, true);
  if (values.help === true) return { kind: 'help' };
  const graceMs = values.grace === undefined ? undefined : parseDuration('--grace', values.grace);
  if (graceMs !== undefined && graceMs > maxGraceMs) {
    throw new UsageError(
      `--grace ${JSON.stringify(values.grace)} is longer than the server's limit of 5m`,
    );
  }
  return {
    kind: 'stop',
    id: oneJobId('stop', positionals),
    graceMs,
    connection: serverFlags.connection(values),
  };
}

const help = `Usage: jobctl stop [--grace DURATION] ID

Stop a job: send SIGTERM to it, wait for the grace period, then kill every
process left in it. Waits until the job has ended and prints how it ended.

Flags:
      --grace DURATION   time between SIGTERM and SIGKILL: 500ms, 10s, 1m30s
                         (default: the server's, 10s; at most 5m)

Example:
  jobctl stop --grace 2s 0f3k9q2m7d1c8b6a5t4s3r2p1n

${serverFlags.helpNote}`;

async function main(args: readonly string[], io: Io): Promise<number> {
  const command = parseStop(args);
  if (command.kind === 'help') {
    println(io.stdout, help);
    return 0;
  }
  const connection = await Connection.open(command.connection, io.env);
  try {
    const job = await connection.stopJob(command.id, command.graceMs);
    println(io.stdout, summaryLine(job));
    return 0;
  } finally {
    connection.close();
  }
}

/** The `stop` command. */
export const command: CommandModule = { help, main };
