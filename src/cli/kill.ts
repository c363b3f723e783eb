/** `jobctl kill [-s SIGNAL] [--all] ID`: sends a signal to a job, as `docker kill -s`. */
import { oneJobId, serverFlags, type ParsedCommand } from './args.js';
import { println, type CommandModule, type Io } from './command.js';
import { Connection } from './connection.js';

const options = {
  ...serverFlags.options,
  signal: { type: 'string', short: 's' },
  all: { type: 'boolean' },
} as const;

/** A parsed `kill`. */
export type KillCommand = ParsedCommand<'kill', { id: string; signal: string; all: boolean }>;

/** Parses `kill` arguments; the signal's name is checked by the server, which alone knows the allowed set. */
export function parseKill(args: readonly string[]): KillCommand {
  const { values, positionals } = serverFlags.parse('kill', args, options, true);
  if (values.help === true) return { kind: 'help' };
  return {
    kind: 'kill',
    id: oneJobId('kill', positionals),
    signal: values.signal ?? 'TERM',
    all: values.all === true,
    connection: serverFlags.connection(values),
  };
}

const help = `Usage: jobctl kill [-s SIGNAL] [--all] ID

Send a signal to a job's main process (default SIGTERM), without the grace
period and SIGKILL of 'jobctl stop'. Only HUP, INT, QUIT, TERM, USR1 and
USR2 may be sent: to end a job use 'jobctl stop'.

Flags:
  -s, --signal SIGNAL   name (HUP, SIGUSR1, any case) or number (1)
      --all             send it to every process of the job, not only the main one

Example:
  jobctl kill -s HUP 0f3k9q2m7d1c8b6a5t4s3r2p1n

${serverFlags.helpNote}`;

async function main(args: readonly string[], io: Io): Promise<number> {
  const command = parseKill(args);
  if (command.kind === 'help') {
    println(io.stdout, help);
    return 0;
  }
  const connection = await Connection.open(command.connection, io.env);
  try {
    const job = await connection.signalJob(command.id, command.signal, command.all);
    println(io.stdout, job.id);
    return 0;
  } finally {
    connection.close();
  }
}

/** The `kill` command. */
export const command: CommandModule = { help, main };
