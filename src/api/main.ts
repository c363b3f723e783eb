#!/usr/bin/env node
/**
 * jobworkerd: the job worker server. Parses the command line, starts the
 * server and owns the process: signals and the exit code (the only module of
 * the API layer that may exit).
 *
 *   jobworkerd serve [--config FILE] [settings]
 *   jobworkerd dev [--config FILE] [settings]
 *   jobworkerd config check FILE
 *   jobworkerd certs init|issue|show ... (certs-command.ts)
 */
import { availableParallelism } from 'node:os';
import { devPaths } from '../dev-paths.js';
import { EXIT_USAGE } from '../errors.js';
import { readHostTotals, StateDirInUseError } from '../isolation/index.js';
import {
  checkAgainstHost,
  ConfigError,
  loadSettings,
  parseFlags,
  serveOptions,
  UsageError,
} from './config.js';
import { CONFIG_ENV, CONFIG_FLAG, DEFAULT_LISTEN, optionsHelp, SETTINGS } from './config-schema.js';
import { CERTS_USAGE, CertsUsageError, runCerts } from './certs-command.js';
import { startDev, startServe, type Running } from './serve.js';

/** Could not start because of the configuration (EX_CONFIG): the file, a variable, or keys that do not fit together. */
const EXIT_CONFIG = 78;

const listen = SETTINGS.listen.kind.show(DEFAULT_LISTEN);

const USAGE = `Usage:
  jobworkerd serve [${CONFIG_FLAG} FILE] [settings]
      Serve the JobService over mutual TLS (default on ${listen}). Runs as root.
      Settings come from flags, then JOBWORKER_* variables, then the TOML
      file (${CONFIG_FLAG} or ${CONFIG_ENV}), then defaults: see 'jobworkerd serve --help'.
  jobworkerd dev [settings]
      What 'npm start' runs: development certificates on first run (renewed once
      expired or within a day of it, with a line saying so), then serve
      on ${listen} with state under $XDG_STATE_HOME/jobworker/dev.
  jobworkerd config check FILE
      Validate a configuration file: exit 0 if valid, ${EXIT_CONFIG} (with the file, key
      and reason of each problem) if not.
${CERTS_USAGE}`;

/** serve --help and dev --help: the command and every setting. */
function commandHelp(command: 'serve' | 'dev'): string {
  const intro =
    command === 'serve'
      ? `Usage: jobworkerd serve [${CONFIG_FLAG} FILE] [settings]\n  Serve the JobService over mutual TLS. Runs as root.\n`
      : `Usage: jobworkerd dev [${CONFIG_FLAG} FILE] [settings]\n  serve with development certificates (made on first run, renewed\n  once expired or within a day of it) and state under\n  $XDG_STATE_HOME/jobworker/dev unless state_dir or tls.dir is set.\n`;
  return `${intro}
Each setting is a flag, a JOBWORKER_* variable and a key of the TOML file
(${CONFIG_FLAG} FILE or ${CONFIG_ENV}); a flag wins over a variable, a variable over
the file, the file over the default. Sizes take a unit (256M, 1.5G), durations
one too (90s, 24h), CPU is cores (0.5) or millicores (500m).

  ${CONFIG_FLAG} FILE  [${CONFIG_ENV}]
      the TOML configuration file
${optionsHelp()}`;
}

/** Could not start (EX_UNAVAILABLE / EX_CONFIG collapsed into one: the message says which). */
const EXIT_START = 69;
/** Another server holds the state directory (EX_TEMPFAIL: retry once that one has stopped). */
const EXIT_STATE_IN_USE = 75;

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

/**
 * The options of serve or dev from `args` and the environment, checked
 * against the host; null when --help was asked (and printed).
 */
async function settingsOf(
  command: 'serve' | 'dev',
  args: string[],
): Promise<{ options: ReturnType<typeof serveOptions>; certsDir: string } | null> {
  const flags = parseFlags(args);
  if (flags.help) {
    process.stdout.write(commandHelp(command));
    return null;
  }
  const paths = devPaths();
  const loaded = await loadSettings(
    flags,
    process.env,
    command === 'dev' ? { state_dir: paths.state, 'tls.dir': paths.certs } : {},
  );
  checkAgainstHost(loaded, await readHostTotals(), availableParallelism());
  return { options: serveOptions(loaded), certsDir: loaded.settings['tls.dir'] ?? paths.certs };
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve': {
      const wanted = await settingsOf('serve', rest);
      if (wanted === null) return;
      const starting = startServe(wanted.options);
      exitOnSignals(starting);
      await starting;
      return;
    }
    case 'dev': {
      const wanted = await settingsOf('dev', rest);
      if (wanted === null) return;
      const starting = startDev(wanted.options, wanted.certsDir);
      exitOnSignals(starting.then((dev) => dev.running));
      process.stdout.write(`${(await starting).hint}\n`);
      return;
    }
    case 'config': {
      const [sub, file, ...extra] = rest;
      if (sub !== 'check' || file === undefined || extra.length > 0) {
        throw new UsageError('expected: config check FILE');
      }
      // The file alone (no flags, no variables), with the checks of keys that go together.
      await loadSettings({ found: {}, config: file }, {});
      process.stdout.write(`${file}: valid\n`);
      return;
    }
    case 'certs': {
      // certs-command.ts loads certificate generation (heavy, see eku.ts) only when it must.
      await runCerts(rest, process.stdout).catch((err: unknown) => {
        throw err instanceof CertsUsageError ? new UsageError(err.message) : err;
      });
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
  if (err instanceof ConfigError) {
    process.stderr.write(`jobworkerd: ${err.message}\n`);
    process.exit(EXIT_CONFIG);
  }
  process.stderr.write(`jobworkerd: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(err instanceof StateDirInUseError ? EXIT_STATE_IN_USE : EXIT_START);
});
