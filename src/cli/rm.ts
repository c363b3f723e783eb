/**
 * `jobctl rm [--force] ID...` and `jobctl rm --all-finished`: removes jobs'
 * records and output, as `docker rm`. Each id is tried even when another
 * fails; each removed id is printed, each failure is one line on stderr, and
 * the exit status is the first failure's.
 */
import { JobState } from '../gen/jobworker/v1/job_service.js';
import { serverFlags, type ParsedCommand } from './args.js';
import { println, type CommandModule, type Io } from './command.js';
import { Connection } from './connection.js';
import { exitCodeForError } from './exit-codes.js';
import { UsageError } from './failures.js';
import { visible } from './visible.js';

const options = {
  ...serverFlags.options,
  force: { type: 'boolean', short: 'f' },
  'all-finished': { type: 'boolean' },
} as const;

/** A parsed `rm`: the ids given, or every finished job the caller may see. */
export type RmCommand = ParsedCommand<
  'rm',
  { ids: string[]; allFinished: boolean; force: boolean }
>;

/** Parses `rm` arguments. */
export function parseRm(args: readonly string[]): RmCommand {
  const { values, positionals } = serverFlags.parse('rm', args, options, true);
  if (values.help === true) return { kind: 'help' };
  const allFinished = values['all-finished'] === true;
  if (allFinished && positionals.length > 0) {
    throw new UsageError('rm: --all-finished takes no job id');
  }
  if (!allFinished && (positionals.length === 0 || positionals.includes(''))) {
    throw new UsageError('rm: missing job id; usage: jobctl rm [flags] ID... (or --all-finished)');
  }
  return {
    kind: 'rm',
    ids: positionals,
    allFinished,
    force: values.force === true,
    connection: serverFlags.connection(values),
  };
}

const help = `Usage: jobctl rm [-f] ID...
       jobctl rm --all-finished

Remove jobs: their status and their output, at once (finished jobs are
otherwise kept for a day). A job that still runs is refused unless --force,
which stops it first (SIGTERM, 10s grace, SIGKILL). Prints each removed id.

Flags:
  -f, --force          stop a running job, then remove it
      --all-finished   remove every finished job you can see (an admin: everyone's)

Example:
  jobctl rm 0f3k9q2m7d1c8b6a5t4s3r2p1n
  jobctl rm --all-finished

${serverFlags.helpNote}`;

async function main(args: readonly string[], io: Io): Promise<number> {
  const command = parseRm(args);
  if (command.kind === 'help') {
    println(io.stdout, help);
    return 0;
  }
  const connection = await Connection.open(command.connection, io.env);
  try {
    const ids = command.allFinished
      ? (await connection.listJobs({ state: JobState.JOB_STATE_FINISHED, owner: '' })).map(
          (job) => job.id,
        )
      : command.ids;
    let status = 0;
    for (const id of ids) {
      try {
        await connection.deleteJob(id, command.force);
        println(io.stdout, id);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        println(io.stderr, `jobctl: rm ${visible(id)}: ${visible(message)}`);
        if (status === 0) status = exitCodeForError(err);
      }
    }
    return status;
  } finally {
    connection.close();
  }
}

/** The `rm` command. */
export const command: CommandModule = { help, main };
