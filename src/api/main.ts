#!/usr/bin/env node
/**
 * jobworkerd: the job worker server. Parses the command line, starts the
 * server and owns the process: signals and the exit code (the only module of
 * the API layer that may exit).
 *
 *   jobworkerd serve [--listen HOST:PORT] --state-dir DIR --certs DIR [--audit-stdout]
 *                    [--metrics-listen HOST:PORT [--metrics-allow-remote]] [budgets]
 *   jobworkerd certs init|issue|show ... (certs-command.ts)
 *   jobworkerd dev
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ErrorCode, EXIT_USAGE, JobworkerError } from '../errors.js';
import { StateDirInUseError } from '../isolation/index.js';
import { BUDGET_USAGE, budgetOptions, readBudgets } from './budget-flags.js';
import { CERTS_USAGE, CertsUsageError, runCerts } from './certs-command.js';
import { DEFAULT_LISTEN, startDev, startServe, type Running } from './serve.js';

const USAGE = `Usage:
  jobworkerd serve [--listen HOST:PORT] --state-dir DIR --certs DIR [--audit-stdout]
                   [--metrics-listen HOST:PORT [--metrics-allow-remote]] [budgets]
      Serve the JobService over mutual TLS (default --listen ${DEFAULT_LISTEN}).
      DIR of --certs holds ca.crt, server.crt and server.key. Runs as root.
      --metrics-listen serves Prometheus metrics at http://HOST:PORT/metrics, without
      authentication: a loopback address only, unless --metrics-allow-remote.
${BUDGET_USAGE}${CERTS_USAGE}  jobworkerd dev
      What 'npm start' runs: development certificates on first run (renewed once
      expired or within a day of it, with a line saying so), then serve
      on ${DEFAULT_LISTEN} with state under $XDG_STATE_HOME/jobworker/dev.
`;

/** Could not start (EX_UNAVAILABLE / EX_CONFIG collapsed into one: the message says which). */
const EXIT_START = 69;
/** Another server holds the state directory (EX_TEMPFAIL: retry once that one has stopped). */
const EXIT_STATE_IN_USE = 75;

class UsageError extends Error {}

function parse(
  args: string[],
  options: NonNullable<ParseArgsConfig['options']>,
): { values: Record<string, unknown> } {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}

function required(values: Record<string, unknown>, name: string): string {
  const value = values[name];
  if (typeof value !== 'string' || value === '') throw new UsageError(`--${name} is required`);
  return value;
}

/**
 * Waits for SIGTERM/SIGINT, shuts down gracefully; a second signal exits at
 * once. Installed before the server starts: a signal during its start (the
 * default action would kill it with its fork server's helpers half made)
 * shuts it down once it has started.
 */
function exitOnSignals(starting: Promise<Running>): void {
  let stopping = false;
  let running: Running | null = null;
  void starting.then(
    (r) => (running = r),
    () => undefined,
  );
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      if (running)
        running.log.warn({ signal }, 'second signal: exiting now, jobs may be left running');
      process.exit(signal === 'SIGINT' ? 130 : 143);
    }
    stopping = true;
    starting
      .then((r) => {
        r.log.info({ signal }, 'graceful shutdown');
        return r.stop().catch((err: unknown) => {
          r.log.error({ err }, 'shutdown failed');
          process.exit(1);
        });
      })
      .then(
        () => process.exit(0),
        () => undefined, // a failed start is reported and exits in main's catch
      );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve': {
      const { values } = parse(rest, {
        listen: { type: 'string', default: DEFAULT_LISTEN },
        'state-dir': { type: 'string' },
        certs: { type: 'string' },
        'audit-stdout': { type: 'boolean', default: false },
        'metrics-listen': { type: 'string' },
        'metrics-allow-remote': { type: 'boolean', default: false },
        ...budgetOptions,
      });
      const metricsListen = values['metrics-listen'];
      if (values['metrics-allow-remote'] === true && metricsListen === undefined)
        throw new UsageError('--metrics-allow-remote needs --metrics-listen');
      const starting = startServe({
        listen: required(values, 'listen'),
        stateDir: required(values, 'state-dir'),
        certsDir: required(values, 'certs'),
        auditStdout: values['audit-stdout'] === true,
        ...(typeof metricsListen === 'string'
          ? { metricsListen, metricsAllowRemote: values['metrics-allow-remote'] === true }
          : {}),
        ...(await readBudgets(values).catch((err: unknown) => {
          if (err instanceof JobworkerError && err.code === ErrorCode.InvalidArgument)
            throw new UsageError(err.message);
          throw err;
        })),
      });
      exitOnSignals(starting);
      await starting;
      return;
    }
    case 'certs': {
      // certs-command.ts loads certificate generation (heavy, see eku.ts) only when it must.
      await runCerts(rest, process.stdout).catch((err: unknown) => {
        throw err instanceof CertsUsageError ? new UsageError(err.message) : err;
      });
      return;
    }
    case 'dev': {
      parse(rest, {});
      const starting = startDev();
      exitOnSignals(starting.then((dev) => dev.running));
      process.stdout.write(`${(await starting).hint}\n`);
      return;
    }
    case undefined:
    case '-h':
    case '--help':
      process.stdout.write(USAGE);
      if (command === undefined) process.exit(EXIT_USAGE);
      return;
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof UsageError) {
    process.stderr.write(`jobworkerd: ${err.message}\n${USAGE}`);
    process.exit(EXIT_USAGE);
  }
  process.stderr.write(`jobworkerd: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(err instanceof StateDirInUseError ? EXIT_STATE_IN_USE : EXIT_START);
});
