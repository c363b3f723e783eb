/**
 * Command-line parsing on top of node:util parseArgs: the global connection
 * flags every server command shares, and the docker convention that options
 * end at the first positional (`jobctl run --cpu 1 sh -c 'exit 3'` passes
 * `-c` to sh), with `--` as an explicit end.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './failures.js';

/** A parseArgs option table. */
export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

/** Flags naming the server and the client's identity; accepted by every command that calls the server. */
const connectionOptions = {
  server: { type: 'string' },
  'tls-server-name': { type: 'string' },
  certs: { type: 'string' },
  user: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  ca: { type: 'string' },
  context: { type: 'string' },
  'context-selector': { type: 'string' },
  config: { type: 'string' },
} as const satisfies OptionSpec;

/** `-h`/`--help`, accepted everywhere. */
export const helpOption = { help: { type: 'boolean', short: 'h' } } as const satisfies OptionSpec;

/** Where to connect and as whom, as given on the command line (environment not yet applied). */
export interface ConnectionFlags {
  readonly server?: string | undefined;
  readonly tlsServerName?: string | undefined;
  readonly certs?: string | undefined;
  readonly user?: string | undefined;
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
  readonly ca?: string | undefined;
  /** Context names of the contexts file, comma-separated. */
  readonly context?: string | undefined;
  /** A label selector over the contexts file's contexts. */
  readonly contextSelector?: string | undefined;
  /** The contexts file, instead of the default one. */
  readonly config?: string | undefined;
}

/** Picks the {@link connectionOptions} out of parsed values. */
function connectionFlags(values: {
  readonly [K in keyof typeof connectionOptions]?: string | undefined;
}): ConnectionFlags {
  return {
    server: values.server,
    tlsServerName: values['tls-server-name'],
    certs: values.certs,
    user: values.user,
    cert: values.cert,
    key: values.key,
    ca: values.ca,
    context: values.context,
    contextSelector: values['context-selector'],
    config: values.config,
  };
}

/**
 * Splits `args` where the options end: at `--` (dropped) or at the first
 * positional. `head` holds the options (and their values), `rest` the
 * positional words untouched. Which options take a value comes from `spec`.
 */
export function splitAtPositional(
  args: readonly string[],
  spec: OptionSpec,
): { head: string[]; rest: string[] } {
  const takesValue = new Set<string>();
  for (const [name, option] of Object.entries(spec)) {
    if (option.type !== 'string') continue;
    takesValue.add(`--${name}`);
    if (option.short !== undefined) takesValue.add(`-${option.short}`);
  }
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    if (arg === '--') return { head: args.slice(0, i), rest: args.slice(i + 1) };
    if (arg === '-' || !arg.startsWith('-')) return { head: args.slice(0, i), rest: args.slice(i) };
    // `--name value` and `-n value` consume the next word; `--name=value` does not.
    if (takesValue.has(arg)) i++;
  }
  return { head: [...args], rest: [] };
}

/**
 * parseArgs in strict mode, with its errors turned into {@link UsageError}s
 * that name the command and point at its help.
 */
export function parseFlags<const T extends OptionSpec>(
  command: string,
  args: readonly string[],
  options: T,
  allowPositionals: boolean,
): {
  values: ReturnType<typeof parseArgs<{ options: T; allowPositionals: boolean }>>['values'];
  positionals: string[];
} {
  try {
    const { values, positionals } = parseArgs({
      args: [...args],
      options,
      allowPositionals,
      strict: true,
    });
    return { values, positionals };
  } catch (err) {
    const detail = err instanceof Error ? firstSentence(err.message) : String(err);
    throw new UsageError(`${command}: ${detail}; see 'jobctl ${command} --help'`);
  }
}

/** Rejects extra or missing positional arguments: exactly one job id. */
export function oneJobId(command: string, positionals: readonly string[]): string {
  const [id, ...extra] = positionals;
  if (id === undefined || id === '') {
    throw new UsageError(`${command}: missing job id; usage: jobctl ${command} [flags] ID`);
  }
  if (extra.length > 0) {
    throw new UsageError(
      `${command}: unexpected argument ${JSON.stringify(extra[0])}; it takes one job id`,
    );
  }
  return id;
}

// parseArgs' messages run on with advice for `--` that does not fit jobctl.
function firstSentence(message: string): string {
  const cut = message.indexOf('. ');
  const text = cut === -1 ? message : message.slice(0, cut);
  return text
    .replace(/\.$/, '')
    .replace(/^Unknown option '/, "unknown flag '")
    .replace(/^Option '/, "flag '");
}

/**
 * What every command that calls the server takes from here, together: the
 * flags to spread into its option table, their parser, the picking of the
 * connection flags out of its values, and its help's closing paragraph.
 */
export const serverFlags = {
  /** The connection flags and -h. */
  options: { ...connectionOptions, ...helpOption },
  parse: parseFlags,
  connection: connectionFlags,
  helpNote: `Connection flags (--context, --config, --server, --certs, --user, --cert, --key, --ca,
--tls-server-name) and their JOBCTL_* variables: see 'jobctl --help'.`,
} as const;

/** A parsed server command: `-h`, or the command `K` with its fields `F` and where to connect. */
export type ParsedCommand<K extends string, F> =
  | { readonly kind: 'help' }
  | ({ readonly kind: K; readonly connection: ConnectionFlags } & Readonly<F>);
