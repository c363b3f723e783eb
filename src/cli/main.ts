#!/usr/bin/env node
/**
 * jobctl, the command-line client of jobworkerd. This entry finds the
 * subcommand, loads only its module (grpc-js is most of the start-up time and
 * `completion` or `--help` need none of it), runs it, and turns any failure
 * into exactly one line on stderr and a documented exit code.
 */
import { readFileSync } from 'node:fs';
import { JobworkerError } from '../errors.js';
import { parseFlags, serverFlags, splitAtPositional } from './args.js';
import type { CommandModule, Io } from './command.js';
import { exitCodeForError, exitCodeTable, ExitCode } from './exit-codes.js';
import { UsageError } from './failures.js';
import { visible } from './visible.js';

const commands: Readonly<Record<string, () => Promise<{ command: CommandModule }>>> = {
  start: () => import('./start.js'),
  run: () => import('./run.js'),
  stop: () => import('./stop.js'),
  status: () => import('./status.js'),
  list: () => import('./list.js'),
  logs: () => import('./logs.js'),
  attach: () => import('./attach.js'),
  kill: () => import('./kill.js'),
  wait: () => import('./wait.js'),
  rm: () => import('./rm.js'),
  events: () => import('./events.js'),
  config: () => import('./config.js'),
  completion: () => import('./completion.js'),
};

const globalOptions = {
  ...serverFlags.options,
  version: { type: 'boolean' },
} as const;

const help = `Usage: jobctl [flags] COMMAND [ARG...]

Run and watch Linux processes on a jobworkerd server over mutual TLS.

Commands:
  start       start a job and print its id
  run         start a job, print its output as it comes, exit with its status
  stop        stop a job (SIGTERM, grace period, SIGKILL)
  status      show a job's exit report (--json for protobuf JSON)
  list        list jobs (id, owner, state, exit, age, command)
  logs        print a job's output from the first byte (-f to follow)
  attach      attach to a job: its output, and your stdin when started with -i
  kill        send a signal to a job (-s HUP; --all for every process)
  wait        wait until jobs end; exit with the first one's status
  rm          remove jobs and their output (--force, --all-finished)
  events      print each job that starts, stops or finishes, as it happens
  config      named contexts (servers and certificates): get-contexts, use-context, set-context
  completion  print a bash or zsh completion script

Connection flags (any command; each also from the environment variable shown):
  --context NAME            JOBCTL_CONTEXT          a context of the contexts file (run: NAME,NAME,...)
  --context-selector SEL    -                       run: the contexts whose labels match SEL
  --config FILE             JOBCTL_CONFIG           the contexts file; default
                                                    \${XDG_CONFIG_HOME:-~/.config}/jobworker/config
  --server HOST:PORT        JOBCTL_SERVER           default localhost:50051
  --certs DIR               JOBCTL_CERTS            DIR/USER.crt, DIR/USER.key, DIR/ca.crt;
                                                    default: the certificates of 'npm start'
                                                    ($XDG_STATE_HOME or ~/.local/state)/jobworker/dev/certs
  --user NAME               JOBCTL_USER             default alice
  --cert FILE               JOBCTL_CERT             client certificate (overrides --certs/--user)
  --key FILE                JOBCTL_KEY              client private key
  --ca FILE                 JOBCTL_CA               CA certificate that signed the server's
  --tls-server-name NAME    JOBCTL_TLS_SERVER_NAME  verify the server's certificate against NAME
                                                    instead of the host of --server
  Flags beat a context; a context named by --context beats the JOBCTL_* variables,
  which beat the current context ('jobctl config --help').
Other flags:
  -h, --help                help; 'jobctl COMMAND --help' for a command's flags and an example
      --version             print jobctl's version

Exit status:
${exitCodeTable.map(([code, meaning]) => `  ${code.padEnd(7)}${meaning}`).join('\n')}

Example:
  jobctl run -- uname -a
  jobctl run -it -- sh
  id=$(jobctl start -- sh -c 'for i in 1 2 3; do echo $i; sleep 1; done')
  jobctl logs -f "$id"; jobctl status "$id"`;

/** Parses the command line, runs the command and returns the exit status. */
async function main(argv: readonly string[], io: Io): Promise<number> {
  const { head, rest } = splitAtPositional(argv, globalOptions);
  const { values } = parseFlags('jobctl', head, globalOptions, false);
  let [name, ...args] = rest;
  if (name === 'help') {
    // `jobctl help status` is `jobctl status --help`.
    [name, args] = [args[0], ['--help']];
    if (name === undefined) values.help = true;
  }
  if (name === undefined) {
    if (values.version === true) {
      io.stdout.write(`jobctl ${version()}\n`);
      return ExitCode.Ok;
    }
    if (values.help === true) {
      io.stdout.write(`${help}\n`);
      return ExitCode.Ok;
    }
    throw new UsageError("missing command; see 'jobctl --help'");
  }
  const load = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (load === undefined) {
    throw new UsageError(
      `unknown command ${JSON.stringify(name)}; commands: ${Object.keys(commands).join(', ')}`,
    );
  }
  const { command } = await load();
  // Global flags given before the command name apply to it as well.
  return command.main([...head.filter((arg) => arg !== '--version'), ...args], io);
}

function version(): string {
  const pkg = JSON.parse(
    readFileSync(new URL('../../../package.json', import.meta.url), 'utf8'),
  ) as {
    version?: unknown;
  };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}

/** One line, never a stack trace (JOBCTL_DEBUG=1 adds it for bug reports). */
function describe(err: unknown): string {
  const known = exitCodeForError(err) !== ExitCode.Internal || err instanceof JobworkerError;
  const text = err instanceof Error ? err.message : String(err);
  // The message may carry a server's or another user's text: no control character reaches the terminal.
  const line = visible(
    (known ? text : `internal error: ${text}; please report it`).replace(/\s*\n\s*/g, ' '),
  );
  return process.env['JOBCTL_DEBUG'] === '1' && err instanceof Error
    ? `${line}\n${err.stack ?? ''}`
    : line;
}

// grpc-js sets the TLS ServerName to the host even when it is an IP address,
// and Node then prints DEP0123 on every call (grpc-node#1919). A CLI's stderr
// is its user's: jobctl prints no runtime warnings.
process.noDeprecation = true;

// Writing to a closed pipe (`jobctl logs ID | head`) fails with EPIPE; exit
// quietly with 128+SIGPIPE, as a C program killed by SIGPIPE would.
for (const sink of [process.stdout, process.stderr]) {
  sink.on('error', (err: NodeJS.ErrnoException) => {
    process.exit(err.code === 'EPIPE' ? ExitCode.BrokenPipe : ExitCode.Internal);
  });
}

const io: Io = {
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  signals: process,
};
try {
  process.exitCode = await main(process.argv.slice(2), io);
} catch (err) {
  process.stderr.write(`jobctl: ${describe(err)}\n`);
  process.exitCode = exitCodeForError(err);
}
