/** `jobctl status [--json] ID`: a job's exit report, or its protobuf JSON. */
import { Job } from '../gen/jobworker/v1/job_service.js';
import { oneJobId, serverFlags, type ParsedCommand } from './args.js';
import { println, type CommandModule, type Io } from './command.js';
import { Connection } from './connection.js';
import { formatReport } from './report.js';

const options = { ...serverFlags.options, json: { type: 'boolean' } } as const;

/** A parsed `status`. */
export type StatusCommand = ParsedCommand<'status', { id: string; json: boolean }>;

/** Parses `status` arguments. */
export function parseStatus(args: readonly string[]): StatusCommand {
  const { values, positionals } = serverFlags.parse('status', args, options, true);
  if (values.help === true) return { kind: 'help' };
  return {
    kind: 'status',
    id: oneJobId('status', positionals),
    json: values.json === true,
    connection: serverFlags.connection(values),
  };
}

const help = `Usage: jobctl status [--json] ID

Show a job's status: state, how it ended and who stopped it, times, limits,
CPU time, peak memory, IO, and each output stream's size and SHA-256.

Flags:
      --json   print the job as protobuf JSON (jobworker.v1.Job)

Example:
  jobctl status 0f3k9q2m7d1c8b6a5t4s3r2p1n

${serverFlags.helpNote}`;

async function main(args: readonly string[], io: Io): Promise<number> {
  const command = parseStatus(args);
  if (command.kind === 'help') {
    println(io.stdout, help);
    return 0;
  }
  const connection = await Connection.open(command.connection, io.env);
  try {
    const job = await connection.getJob(command.id);
    println(io.stdout, command.json ? JSON.stringify(Job.toJSON(job), null, 2) : formatReport(job));
    return 0;
  } finally {
    connection.close();
  }
}

/** The `status` command. */
export const command: CommandModule = { help, main };
