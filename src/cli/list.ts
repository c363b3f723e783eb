/** `jobctl list [--state STATE] [--json] [-q]`: the jobs the caller may see, newest first. */
import { JobState, ListJobsResponse } from '../gen/jobworker/v1/job_service.js';
import { serverFlags, type ParsedCommand } from './args.js';
import { println, type CommandModule, type Io } from './command.js';
import { Connection } from './connection.js';
import { UsageError } from './failures.js';
import { formatTable, listRow } from './format.js';

const options = {
  ...serverFlags.options,
  state: { type: 'string' },
  json: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
} as const;

const states: Readonly<Record<string, JobState>> = {
  running: JobState.JOB_STATE_RUNNING,
  stopping: JobState.JOB_STATE_STOPPING,
  finished: JobState.JOB_STATE_FINISHED,
};

/** A parsed `list`. */
export type ListCommand = ParsedCommand<
  'list',
  { state: JobState; output: 'table' | 'json' | 'ids' }
>;

/** Parses `list` arguments. */
export function parseList(args: readonly string[]): ListCommand {
  const { values } = serverFlags.parse('list', args, options, false);
  if (values.help === true) return { kind: 'help' };
  const state = values.state === undefined ? JobState.JOB_STATE_UNSPECIFIED : states[values.state];
  if (state === undefined) {
    throw new UsageError(
      `--state ${JSON.stringify(values.state)} is not a state; use running, stopping or finished`,
    );
  }
  if (values.json === true && values.quiet === true)
    throw new UsageError('list: --json and --quiet exclude each other');
  const output = values.json === true ? 'json' : values.quiet === true ? 'ids' : 'table';
  return { kind: 'list', state, output, connection: serverFlags.connection(values) };
}

const help = `Usage: jobctl list [--state running|stopping|finished] [--json | -q]

List the jobs you may see (an admin sees everyone's), newest first, as a
table: ID, OWNER, STATE, EXIT (code or signal), AGE, COMMAND.

Flags:
      --state STATE   only jobs in this state
      --json          print protobuf JSON (jobworker.v1.ListJobsResponse: {"jobs": [...]})
  -q, --quiet         print only the ids, one per line

Example:
  jobctl list --state running

${serverFlags.helpNote}`;

async function main(args: readonly string[], io: Io): Promise<number> {
  const command = parseList(args);
  if (command.kind === 'help') {
    println(io.stdout, help);
    return 0;
  }
  const connection = await Connection.open(command.connection, io.env);
  try {
    const jobs = await connection.listJobs({ state: command.state, owner: '' });
    switch (command.output) {
      case 'json':
        // The proto3 JSON mapping omits an empty list: no jobs prints {}.
        println(
          io.stdout,
          JSON.stringify(ListJobsResponse.toJSON({ jobs, nextPageToken: '' }), null, 2),
        );
        break;
      case 'ids':
        for (const job of jobs) println(io.stdout, job.id);
        break;
      case 'table': {
        const now = new Date();
        const header = ['ID', 'OWNER', 'STATE', 'EXIT', 'AGE', 'COMMAND'];
        println(
          io.stdout,
          formatTable(
            header,
            jobs.map((job) => listRow(job, now)),
          ),
        );
        break;
      }
    }
    return 0;
  } finally {
    connection.close();
  }
}

/** The `list` command. */
export const command: CommandModule = { help, main };
