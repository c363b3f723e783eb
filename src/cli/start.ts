/** `jobctl start [flags] -- CMD [ARG...]`: starts a job and prints its id, for scripts. */
import { serverFlags } from './args.js';
import { println, type CommandModule, type Io } from './command.js';
import { Connection } from './connection.js';
import { UsageError } from './failures.js';
import { jobFlagsHelp, parseJobCommand, terminalOf } from './job-flags.js';

const help = `Usage: jobctl start [flags] [--] CMD [ARG...]

Start CMD as a job on the server and print its id. The command runs without
a shell, in its own namespaces and cgroup; options end at the first word of
CMD (or at --).

${jobFlagsHelp}

Example:
  id=$(jobctl start --memory 256M --cpu 0.5 -- sh -c 'echo hello; sleep 60')
  jobctl logs -f "$id"
  id=$(jobctl start -it -- sh); jobctl attach "$id"

${serverFlags.helpNote}`;

async function main(args: readonly string[], io: Io): Promise<number> {
  const command = parseJobCommand('start', args);
  if (command.kind === 'help') {
    println(io.stdout, help);
    return 0;
  }
  if (command.noPrefix) throw new UsageError('start: --no-prefix is for run on several contexts');
  const connection = await Connection.open(command.connection, io.env);
  try {
    const job = await connection.startJob(
      command.tty ? { ...command.request, terminal: terminalOf(io) } : command.request,
    );
    println(io.stdout, job.id);
    return 0;
  } finally {
    connection.close();
  }
}

/** The `start` command. */
export const command: CommandModule = { help, main };
