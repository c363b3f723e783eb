/**
 * `jobctl events`: one line per state change of the jobs the caller may see,
 * as they happen, until Ctrl-C (docker's `events`, for jobs).
 */
import { WatchEventType, WatchJobsResponse, type Job } from '../gen/jobworker/v1/job_service.js';
import { serverFlags, type ParsedCommand } from './args.js';
import { println, type CommandModule, type Io } from './command.js';
import { Connection } from './connection.js';
import { outcome, shellQuote, stateName } from './format.js';
import { filterHelp, filterOptions, parseFilter, type JobFilter } from './list.js';
import { visible } from './visible.js';
import { watchUntilInterrupted } from './watch.js';

const options = {
  ...serverFlags.options,
  ...filterOptions,
  json: { type: 'boolean' },
} as const;

/** A parsed `events`. */
export type EventsCommand = ParsedCommand<'events', { filter: JobFilter; json: boolean }>;

/** Parses `events` arguments. */
export function parseEvents(args: readonly string[]): EventsCommand {
  const { values } = serverFlags.parse('events', args, options, false);
  if (values.help === true) return { kind: 'help' };
  return {
    kind: 'events',
    filter: parseFilter(values),
    json: values.json === true,
    connection: serverFlags.connection(values),
  };
}

const help = `Usage: jobctl events [filter flags] [--json]

Print a line for each job that starts, begins stopping or finishes, as it
happens, until Ctrl-C: TIME EVENT ID [NAME] DETAIL. A "resync" line says the
server dropped changes because jobctl read too slowly; the jobs that match
then follow as "existing" lines, and "synced" ends them.

Flags:
${filterHelp}
      --json            one jobworker.v1.WatchJobsResponse (protobuf JSON) per line

Example:
  jobctl events -l team=db

${serverFlags.helpNote}`;

const EVENT_WORD: Readonly<Record<WatchEventType, string>> = {
  [WatchEventType.WATCH_EVENT_TYPE_UNSPECIFIED]: 'unknown',
  [WatchEventType.WATCH_EVENT_TYPE_EXISTING]: 'existing',
  [WatchEventType.WATCH_EVENT_TYPE_SYNCED]: 'synced',
  [WatchEventType.WATCH_EVENT_TYPE_STARTED]: 'started',
  [WatchEventType.WATCH_EVENT_TYPE_STOPPING]: 'stopping',
  [WatchEventType.WATCH_EVENT_TYPE_FINISHED]: 'finished',
  [WatchEventType.WATCH_EVENT_TYPE_RESYNC]: 'resync',
  [WatchEventType.UNRECOGNIZED]: 'unknown',
};

function detail(type: WatchEventType, job: Job): string {
  switch (type) {
    case WatchEventType.WATCH_EVENT_TYPE_STARTED:
      return shellQuote(job.command);
    case WatchEventType.WATCH_EVENT_TYPE_STOPPING:
      return job.stoppedBy === '' ? 'stopping' : `stop by ${visible(job.stoppedBy)}`;
    case WatchEventType.WATCH_EVENT_TYPE_FINISHED:
      return outcome(job);
    default:
      return stateName(job.state);
  }
}

/** The line `jobctl events` prints for one event. */
export function eventLine(event: WatchJobsResponse, now: Date): string {
  const head = `${now.toISOString()} ${EVENT_WORD[event.type].padEnd(8)}`;
  const job = event.job;
  if (job === undefined) return head.trimEnd();
  const name = job.metadata?.name ?? '';
  return `${head} ${job.id}${name === '' ? '' : ` ${visible(name)}`} ${detail(event.type, job)}`;
}

async function main(args: readonly string[], io: Io): Promise<number> {
  const command = parseEvents(args);
  if (command.kind === 'help') {
    println(io.stdout, help);
    return 0;
  }
  const connection = await Connection.open(command.connection, io.env);
  try {
    return await watchUntilInterrupted(
      connection,
      { ...command.filter, initial: false },
      io,
      (event) => {
        println(
          io.stdout,
          command.json
            ? JSON.stringify(WatchJobsResponse.toJSON(event))
            : eventLine(event, new Date()),
        );
      },
    );
  } finally {
    connection.close();
  }
}

/** The `events` command. */
export const command: CommandModule = { help, main };
