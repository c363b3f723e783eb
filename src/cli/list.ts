/**
 * `jobctl list`: the jobs the caller may see, newest first, filtered by
 * state, owner, name and label selector; `--watch` then prints each change.
 */
import {
  JobState,
  ListJobsResponse,
  WatchEventType,
  WatchJobsResponse,
  type Job,
  type JobSelector,
} from '../gen/jobworker/v1/job_service.js';
import { serverFlags, type ParsedCommand } from './args.js';
import { println, type CommandModule, type Io } from './command.js';
import { Connection } from './connection.js';
import { UsageError } from './failures.js';
import {
  columnWidths,
  formatRow,
  formatTable,
  LIST_COLUMNS,
  listRow,
  WIDE_COLUMNS,
  wideRow,
} from './format.js';
import { parseCount } from './units.js';
import { watchUntilInterrupted } from './watch.js';

/** The flags that pick jobs, shared with `jobctl events`. */
export const filterOptions = {
  state: { type: 'string' },
  selector: { type: 'string', short: 'l' },
  name: { type: 'string' },
  owner: { type: 'string' },
} as const;

const options = {
  ...serverFlags.options,
  ...filterOptions,
  json: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  output: { type: 'string', short: 'o' },
  limit: { type: 'string' },
  watch: { type: 'boolean', short: 'w' },
} as const;

const states: Readonly<Record<string, JobState>> = {
  running: JobState.JOB_STATE_RUNNING,
  stopping: JobState.JOB_STATE_STOPPING,
  finished: JobState.JOB_STATE_FINISHED,
};

/** Rows of a table without a terminal (or one that does not say its height): a screen's worth. */
export const DEFAULT_LIST_LIMIT = 50;

/** Which jobs: the filter fields ListJobsRequest and WatchJobsRequest share. */
export interface JobFilter {
  readonly state: JobState;
  readonly owner: string;
  readonly selector: JobSelector;
}

/** Reads the {@link filterOptions} (the server checks the name and the selector's syntax). */
export function parseFilter(values: {
  readonly [K in keyof typeof filterOptions]?: string | undefined;
}): JobFilter {
  const state = values.state === undefined ? JobState.JOB_STATE_UNSPECIFIED : states[values.state];
  if (state === undefined) {
    throw new UsageError(
      `--state ${JSON.stringify(values.state)} is not a state; use running, stopping or finished`,
    );
  }
  return {
    state,
    owner: values.owner ?? '',
    selector: { name: values.name ?? '', labelSelector: values.selector ?? '' },
  };
}

/** How `list` prints jobs. */
export type ListOutput = 'table' | 'wide' | 'json' | 'ids';

/** A parsed `list`. */
export type ListCommand = ParsedCommand<
  'list',
  {
    filter: JobFilter;
    output: ListOutput;
    /** 0: all; undefined: a screen's worth for a table, all otherwise. */
    limit: number | undefined;
    watch: boolean;
  }
>;

function outputOf(values: { json?: boolean; quiet?: boolean; output?: string }): ListOutput {
  const chosen = [
    values.json === true && '--json',
    values.quiet === true && '--quiet',
    values.output !== undefined && '--output',
  ].filter((flag) => flag !== false);
  if (chosen.length > 1) throw new UsageError(`list: ${chosen.join(' and ')} exclude each other`);
  if (values.json === true) return 'json';
  if (values.quiet === true) return 'ids';
  if (values.output === undefined) return 'table';
  if (values.output === 'wide' || values.output === 'json') return values.output;
  if (values.output === 'name') return 'ids';
  throw new UsageError(
    `--output ${JSON.stringify(values.output)} is not an output format; use wide, json or name`,
  );
}

/** Parses `list` arguments. */
export function parseList(args: readonly string[]): ListCommand {
  const { values } = serverFlags.parse('list', args, options, false);
  if (values.help === true) return { kind: 'help' };
  const output = outputOf(values);
  const watch = values.watch === true;
  if (watch && output === 'ids') throw new UsageError('list: --watch prints rows or JSON, not ids');
  if (watch && values.limit !== undefined)
    throw new UsageError('list: --watch and --limit exclude each other');
  const limit =
    values.limit === undefined
      ? undefined
      : values.limit === '0'
        ? 0
        : parseCount('--limit', values.limit);
  return {
    kind: 'list',
    filter: parseFilter(values),
    output,
    limit,
    watch,
    connection: serverFlags.connection(values),
  };
}

/** Help text of the filter flags, shared with `jobctl events`. */
export const filterHelp = `      --state STATE     only jobs in this state (running, stopping, finished)
  -l, --selector SEL    only jobs whose labels match, as kubectl: team=db,env!=prod,
                        tier in (a,b), tier notin (c), has-key, !no-key
      --name NAME       only jobs with this name
      --owner USER      only this user's jobs (admins; a user sees only its own)`;

const help = `Usage: jobctl list [filter flags] [--limit N] [-o wide | --json | -q] [-w]

List the jobs you may see (an admin sees everyone's), newest first, as a
table: ID, OWNER, STATE, EXIT (code or signal), AGE, COMMAND. A table shows
a screen's worth of jobs (${DEFAULT_LIST_LIMIT} when not on a terminal) and says on stderr
how many more match; --json and -q list every job unless --limit says
otherwise. The command is cut to fit only when writing to a terminal.

Flags:
${filterHelp}
      --limit N         at most N jobs; 0 for all
  -o, --output FORMAT   wide (adds NAME and LABELS, never cuts the command),
                        json (as --json) or name (as -q)
      --json            print protobuf JSON (jobworker.v1.ListJobsResponse: {"jobs": [...]})
  -q, --quiet           print only the ids, one per line
  -w, --watch           after the list, print a row for each change (started,
                        stopping, finished) until Ctrl-C; with --json, one
                        jobworker.v1.WatchJobsResponse per line

Example:
  jobctl list --state running -l team=db,env!=prod
  jobctl list -w -o wide

${serverFlags.helpNote}`;

interface Sink {
  readonly isTTY?: boolean;
  readonly rows?: number;
}

/** A table's rows: a terminal's height less the header, the "more" line and the prompt. */
function screenLimit(io: Io): number {
  const { isTTY, rows } = io.stdout as Sink;
  return isTTY === true && rows !== undefined && rows > 8 ? rows - 3 : DEFAULT_LIST_LIMIT;
}

/** The row printer of a table output; the command is cut only on a terminal. */
function rowsOf(output: 'table' | 'wide', io: Io): (job: Job, now: Date) => string[] {
  if (output === 'wide') return wideRow;
  const cut = (io.stdout as Sink).isTTY === true ? undefined : Infinity;
  return (job, now) => listRow(job, now, cut);
}

async function main(args: readonly string[], io: Io): Promise<number> {
  const command = parseList(args);
  if (command.kind === 'help') {
    println(io.stdout, help);
    return 0;
  }
  const connection = await Connection.open(command.connection, io.env);
  try {
    if (command.watch) return await watchList(connection, command, io);
    const table = command.output === 'table' || command.output === 'wide';
    const limit = command.limit ?? (table ? screenLimit(io) : 0);
    const { jobs, totalSize } = await connection.listJobsUpTo(command.filter, limit);
    switch (command.output) {
      case 'json':
        // The proto3 JSON mapping omits an empty list: no jobs prints {}.
        println(
          io.stdout,
          JSON.stringify(ListJobsResponse.toJSON({ jobs, nextPageToken: '', totalSize }), null, 2),
        );
        break;
      case 'ids':
        for (const job of jobs) println(io.stdout, job.id);
        break;
      case 'table':
      case 'wide': {
        const now = new Date();
        const row = rowsOf(command.output, io);
        const header = command.output === 'wide' ? WIDE_COLUMNS : LIST_COLUMNS;
        println(
          io.stdout,
          formatTable(
            header,
            jobs.map((job) => row(job, now)),
          ),
        );
        break;
      }
    }
    const more = totalSize - jobs.length;
    if (more > 0) println(io.stderr, `jobctl: ${more} more job(s) match; --limit 0 lists them all`);
    return 0;
  } finally {
    connection.close();
  }
}

/** `list --watch`: the table of the jobs that match, then a row per change, aligned with it. */
function watchList(
  connection: Connection,
  command: ListCommand & { kind: 'list' },
  io: Io,
): Promise<number> {
  const json = command.output === 'json';
  const row = rowsOf(command.output === 'wide' ? 'wide' : 'table', io);
  const header = command.output === 'wide' ? WIDE_COLUMNS : LIST_COLUMNS;
  let existing: Job[] = [];
  let widths: number[] | null = null;
  return watchUntilInterrupted(connection, { ...command.filter, initial: true }, io, (event) => {
    if (json) {
      println(io.stdout, JSON.stringify(WatchJobsResponse.toJSON(event)));
      return;
    }
    const now = new Date();
    switch (event.type) {
      case WatchEventType.WATCH_EVENT_TYPE_EXISTING:
        if (event.job !== undefined) existing.push(event.job);
        return;
      case WatchEventType.WATCH_EVENT_TYPE_SYNCED: {
        // Later rows keep the first table's widths, as kubectl's -w does.
        const rows = [header, ...existing.map((job) => row(job, now))];
        const fixed = (widths ??= columnWidths(rows));
        for (const line of rows) println(io.stdout, formatRow(line, fixed));
        existing = [];
        return;
      }
      case WatchEventType.WATCH_EVENT_TYPE_RESYNC:
        println(io.stderr, 'jobctl: fell behind the server; changes were lost, listing again');
        return;
      default:
        if (event.job !== undefined)
          println(io.stdout, formatRow(row(event.job, now), widths ?? []));
    }
  });
}

/** The `list` command. */
export const command: CommandModule = { help, main };
