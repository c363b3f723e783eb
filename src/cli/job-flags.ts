/**
 * The flags shared by `start` and `run`: limits, environment, working
 * directory and network, turned into a StartJobRequest. The command to run
 * is every word after the options (or after `--`), passed on untouched.
 */
import type { StartJobRequest, Terminal } from '../gen/jobworker/v1/job_service.js';
import type { Io } from './command.js';
import { DEFAULT_TERM, windowSize } from './terminal.js';
import { serverFlags, splitAtPositional, type ParsedCommand } from './args.js';
import { UsageError } from './failures.js';
import { metadataOf, metadataOptions } from './metadata-flags.js';
import { durationOf, parseCount, parseCpu, parseDuration, parseSize } from './units.js';

/** parseArgs options of `start` and `run`. */
export const jobOptions = {
  ...serverFlags.options,
  cpu: { type: 'string' },
  memory: { type: 'string' },
  'io-read': { type: 'string' },
  'io-write': { type: 'string' },
  pids: { type: 'string' },
  env: { type: 'string', short: 'e', multiple: true },
  cwd: { type: 'string' },
  network: { type: 'string' },
  timeout: { type: 'string' },
  'no-prefix': { type: 'boolean' },
  interactive: { type: 'boolean', short: 'i' },
  tty: { type: 'boolean', short: 't' },
  ...metadataOptions,
} as const;

/** A parsed `start` or `run`. */
export type JobCommand = ParsedCommand<
  'job',
  {
    request: StartJobRequest;
    /** run on several contexts: no `context: ` before each line. */
    noPrefix: boolean;
    interactive: boolean;
    tty: boolean;
  }
>;

/** Text of the job flags for both commands' help. */
export const jobFlagsHelp = `Flags (limits take the server's defaults when absent):
      --cpu CORES        CPU bandwidth in cores: 0.5, 2, or millicores 500m
      --memory SIZE      memory limit, no swap: 256M, 1.5G (binary units)
      --io-read BPS      read bandwidth on the server's disk: 10M (per second)
      --io-write BPS     write bandwidth on the server's disk
      --pids N           most processes and threads at once
  -e, --env K=V          environment variable (repeatable); the job gets only these
      --cwd DIR          absolute working directory (default /)
      --network host     share the host's network (admin only; default: loopback only)
      --timeout DURATION stop the job after this long: 90s, 10m, 2h (default: none)
      --name NAME        name the job (a DNS label, unique among your unfinished jobs);
                         every command that takes a job id then takes the name too
  -l, --label K=V        label the job (repeatable); 'jobctl list -l K=V' finds it
  -i, --interactive      keep the job's stdin open: run copies its own stdin to the job
                         (end of input included), start leaves it to 'jobctl attach';
                         without -i the job's stdin is /dev/null
  -t, --tty              run the job on its own terminal (one merged output stream), of
                         your window's size and with your TERM; see 'jobctl run --help'`;

/** Parses `start`/`run` arguments: options up to the first positional or `--`, then the command. */
export function parseJobCommand(command: string, args: readonly string[]): JobCommand {
  const { head, rest } = splitAtPositional(args, jobOptions);
  const { values } = serverFlags.parse(command, head, jobOptions, false);
  if (values.help === true) return { kind: 'help' };
  if (rest.length === 0 || rest[0] === '') {
    throw new UsageError(
      `${command}: missing the command to run; usage: jobctl ${command} [flags] -- CMD [ARG...]`,
    );
  }
  const network = values.network ?? 'loopback';
  if (network !== 'host' && network !== 'loopback') {
    throw new UsageError(
      `--network ${JSON.stringify(network)} is not a network mode; use host or loopback`,
    );
  }
  const cwd = values.cwd ?? '';
  if (cwd !== '' && !cwd.startsWith('/')) {
    throw new UsageError(`--cwd ${JSON.stringify(cwd)} must be an absolute path on the server`);
  }
  const env = values.env ?? [];
  for (const pair of env) {
    if (!/^[^=]+=/.test(pair))
      throw new UsageError(`--env ${JSON.stringify(pair)} is not NAME=VALUE`);
  }
  const request: StartJobRequest = {
    command: rest,
    env,
    workingDir: cwd,
    hostNetwork: network === 'host',
    ...(values.timeout === undefined
      ? {}
      : { timeout: durationOf(parseDuration('--timeout', values.timeout)) }),
    limits: {
      cpuMillis: values.cpu === undefined ? 0 : parseCpu('--cpu', values.cpu),
      memoryBytes: values.memory === undefined ? 0 : parseSize('--memory', values.memory),
      ioReadBps: values['io-read'] === undefined ? 0 : parseSize('--io-read', values['io-read']),
      ioWriteBps:
        values['io-write'] === undefined ? 0 : parseSize('--io-write', values['io-write']),
      pidsMax: values.pids === undefined ? 0 : parseCount('--pids', values.pids),
    },
    ...metadataOf(values),
  };
  const interactive = values.interactive === true;
  const tty = values.tty === true;
  if (interactive) request.stdin = true;
  return {
    kind: 'job',
    request,
    noPrefix: values['no-prefix'] === true,
    interactive,
    tty,
    connection: serverFlags.connection(values),
  };
}

/** The terminal a `-t` job gets: the local window's size (24x80 without one) and TERM. */
export function terminalOf(io: Io): Terminal {
  return { ...windowSize(io.stdout), term: io.env['TERM'] ?? DEFAULT_TERM };
}
