/**
 * `jobctl attach [--no-stdin] [--tail N] ID`: attaches jobctl to a running
 * job, as docker attach: its new output printed, jobctl's stdin copied to
 * the job when it was started with -i (the one writer), with a terminal
 * job the local terminal raw and the detach keys. Exits with the job's
 * status when it ends.
 */
import { JobState } from '../gen/jobworker/v1/job_service.js';
import { oneJobId, serverFlags, type ParsedCommand } from './args.js';
import { attachSession, exitCodeOfSession } from './attach-session.js';
import { println, type CommandModule, type Io } from './command.js';
import { Connection } from './connection.js';
import { DETACH_KEYS_TEXT } from './detach-keys.js';
import { untilInterrupted } from './interrupt.js';
import { parseTail } from './logs.js';

const options = {
  ...serverFlags.options,
  'no-stdin': { type: 'boolean' },
  tail: { type: 'string', short: 'n' },
} as const;

/** A parsed `attach`. */
export type AttachCommand = ParsedCommand<
  'attach',
  { id: string; noStdin: boolean; tailLines: number }
>;

/** Parses `attach` arguments. */
export function parseAttach(args: readonly string[]): AttachCommand {
  const { values, positionals } = serverFlags.parse('attach', args, options, true);
  if (values.help === true) return { kind: 'help' };
  return {
    kind: 'attach',
    id: oneJobId('attach', positionals),
    noStdin: values['no-stdin'] === true,
    tailLines: values.tail === undefined ? 0 : parseTail('attach', values.tail),
    connection: serverFlags.connection(values),
  };
}

const help = `Usage: jobctl attach [--no-stdin] [--tail N] ID

Attach to a job: print its output from now on and, when the job was started
with -i (jobctl start -i, run -i), copy jobctl's stdin to it, as the job's
one writer (a second writer is refused: stdin_busy). Exits with the job's
exit status when it ends. A job on a terminal (-t) gets your window's size;
when jobctl's stdin is a terminal too it goes raw: every key, Ctrl-C
included, goes to the job, and ${DETACH_KEYS_TEXT} detaches (exit 0). Otherwise
Ctrl-C detaches (exit 130). Detaching leaves the job running.

Flags:
      --no-stdin     only watch: do not take the writer seat (any number may watch)
  -n, --tail N       first print the last N lines already stored (default 0)

Example:
  id=$(jobctl start -it -- sh)
  jobctl attach "$id"

${serverFlags.helpNote}`;

async function main(args: readonly string[], io: Io): Promise<number> {
  const command = parseAttach(args);
  if (command.kind === 'help') {
    println(io.stdout, help);
    return 0;
  }
  const connection = await Connection.open(command.connection, io.env);
  try {
    const job = await connection.getJob(command.id);
    // Docker's default: a job that takes input gets jobctl's; a finished job is only read.
    const write = job.stdin && !command.noStdin && job.state !== JobState.JOB_STATE_FINISHED;
    const raw = write && job.tty && io.stdin.isTTY === true;
    return await untilInterrupted(io, async (signal) =>
      exitCodeOfSession(
        await attachSession(
          connection,
          {
            jobId: job.id,
            write,
            forwardStdin: write,
            raw,
            resize: write && job.tty,
            tailLines: command.tailLines,
          },
          io,
          signal,
        ),
        job.id,
        io,
      ),
    );
  } finally {
    connection.close();
  }
}

/** The `attach` command. */
export const command: CommandModule = { help, main };
