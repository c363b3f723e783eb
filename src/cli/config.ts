/**
 * `jobctl config VERB`: kubectl's verbs over jobctl's contexts file
 * (contexts.ts): get-contexts, current-context, use-context, set-context,
 * delete-context. Needs no server, so grpc-js is never loaded.
 */
import { resolve } from 'node:path';
import { serverFlags } from './args.js';
import { println, type CommandModule, type Io } from './command.js';
import {
  checkContextName,
  configPath,
  contextNames,
  contextOf,
  MAX_FLEET_CONTEXTS,
  readContextsFile,
  writeContextsFile,
  type ConfigData,
  type ContextData,
  type ContextsFile,
} from './contexts.js';
import { ConfigError, UsageError } from './failures.js';
import { formatTable } from './table.js';
import { serverProblem, userProblem } from './identity.js';
import { visible } from './visible.js';

const options = {
  ...serverFlags.options,
  label: { type: 'string', short: 'l', multiple: true },
  output: { type: 'string', short: 'o' },
} as const;

const help = `Usage: jobctl config VERB [ARG] [flags]

Named contexts, as kubectl's: each a server with the certificates to use
there and labels to pick it by. 'jobctl --context NAME COMMAND' uses one;
'jobctl run --context a,b,c' or '--context-selector env=prod' runs a job on
several (at most ${MAX_FLEET_CONTEXTS}). Without --context a command uses the current context
(JOBCTL_SERVER and the other JOBCTL_* variables override it; flags override
any context).

Verbs:
  get-contexts [-o name]        list the contexts (CURRENT, NAME, SERVER, USER, LABELS)
  current-context               print the current context's name
  use-context NAME              make NAME the current context
  set-context NAME [flags]      create NAME or change the settings given:
      --server HOST:PORT --tls-server-name NAME --certs DIR --user NAME
      --cert FILE --key FILE --ca FILE
      -l, --label K=V   set a label (repeatable); -l K- removes it
  delete-context NAME           remove NAME (and unset it if current)

The file: --config FILE, else JOBCTL_CONFIG, else
\${XDG_CONFIG_HOME:-~/.config}/jobworker/config. TOML, keys named as the
flags; relative paths are relative to the file's directory; an unknown key
or bad value is refused naming the file, key and reason. jobctl writes it
atomically with mode 0600 (comments are not kept):

  current-context = "a"

  [contexts.a]
  server = "host-a.example.com:50051"
  certs = "/etc/jobworker/client"   # DIR/USER.crt, DIR/USER.key, DIR/ca.crt
  user = "alice"
  labels = { env = "prod", region = "eu" }

  [contexts.b]
  server = "10.0.0.7:50051"
  tls-server-name = "host-b.example.com"
  cert = "b/alice.crt"
  key = "b/alice.key"
  ca = "b/ca.crt"

Example:
  jobctl config set-context a --server host-a:50051 --certs ~/certs --user alice -l env=prod
  jobctl config use-context a
  jobctl run --context-selector env=prod -- uptime`;

/** A parsed `config`. */
type ConfigCommand =
  | { readonly kind: 'help' }
  | { readonly kind: 'get-contexts'; readonly namesOnly: boolean }
  | { readonly kind: 'current-context' }
  | { readonly kind: 'use-context' | 'delete-context'; readonly name: string }
  | {
      readonly kind: 'set-context';
      readonly name: string;
      readonly fields: Partial<Omit<ContextData, 'labels'>>;
      readonly labels: readonly string[];
    };

/** Which flags each verb takes besides --config and -h. */
const verbFlags: Readonly<Record<string, readonly string[]>> = {
  'get-contexts': ['output'],
  'current-context': [],
  'use-context': [],
  'delete-context': [],
  'set-context': ['server', 'tls-server-name', 'certs', 'user', 'cert', 'key', 'ca', 'label'],
};

function parse(args: readonly string[]): ConfigCommand & { readonly config: string | undefined } {
  const { values, positionals } = serverFlags.parse('config', args, options, true);
  const config = values.config;
  if (values.help === true) return { kind: 'help', config };
  const [verb, name, ...extra] = positionals;
  const allowed = verb === undefined ? undefined : verbFlags[verb];
  if (verb === undefined || allowed === undefined) {
    throw new UsageError(
      `config: ${verb === undefined ? 'missing the verb' : `unknown verb ${JSON.stringify(verb)}`}; verbs: ${Object.keys(verbFlags).join(', ')}`,
    );
  }
  const given = Object.keys(values).filter((flag) => flag !== 'config' && !allowed.includes(flag));
  if (given[0] !== undefined)
    throw new UsageError(`config ${verb}: --${given[0]} does not apply here`);
  const takesName = verb.endsWith('-context') && verb !== 'current-context';
  if (takesName && (name === undefined || name === ''))
    throw new UsageError(`config ${verb}: missing the context name`);
  const unexpected = takesName ? extra[0] : name;
  if (unexpected !== undefined)
    throw new UsageError(`config ${verb}: unexpected argument ${JSON.stringify(unexpected)}`);
  if (name !== undefined) checkContextName(name, `config ${verb}:`);
  switch (verb) {
    case 'get-contexts': {
      if (values.output !== undefined && values.output !== 'name')
        throw new UsageError(`--output ${JSON.stringify(values.output)} is not a format; use name`);
      return { kind: verb, namesOnly: values.output === 'name', config };
    }
    case 'current-context':
      return { kind: verb, config };
    case 'set-context':
      return { kind: verb, name: name ?? '', ...setFields(values), config };
    default:
      return { kind: verb as 'use-context' | 'delete-context', name: name ?? '', config };
  }
}

/** The settings `set-context` was given, checked; paths made absolute (the file resolves relative ones against its own directory). */
function setFields(values: {
  server?: string | undefined;
  'tls-server-name'?: string | undefined;
  certs?: string | undefined;
  user?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
  ca?: string | undefined;
  label?: string[] | undefined;
}): { fields: Partial<Omit<ContextData, 'labels'>>; labels: readonly string[] } {
  const check = (
    flag: string,
    value: string | undefined,
    problem: (v: string) => string | null,
  ) => {
    const issue = value === undefined ? null : problem(value);
    if (issue !== null) throw new UsageError(`--${flag} ${JSON.stringify(value)} ${issue}`);
  };
  check('server', values.server, serverProblem);
  check('user', values.user, userProblem);
  const path = (p: string | undefined) => (p === undefined ? undefined : resolve(p));
  const fields = Object.fromEntries(
    Object.entries({
      server: values.server,
      'tls-server-name': values['tls-server-name'],
      certs: path(values.certs),
      user: values.user,
      cert: path(values.cert),
      key: path(values.key),
      ca: path(values.ca),
    }).filter(([, v]) => v !== undefined && v !== ''),
  );
  return { fields, labels: values.label ?? [] };
}

async function main(args: readonly string[], io: Io): Promise<number> {
  const command = parse(args);
  if (command.kind === 'help') {
    println(io.stdout, help);
    return 0;
  }
  const file = await readContextsFile(configPath({ config: command.config }, io.env));
  switch (command.kind) {
    case 'get-contexts':
      println(io.stdout, listContexts(file, command.namesOnly));
      return 0;
    case 'current-context': {
      const current = file.data['current-context'];
      if (current === undefined)
        throw new ConfigError(
          `current-context is not set in ${file.path}; see jobctl config use-context`,
        );
      println(io.stdout, current);
      return 0;
    }
    case 'use-context':
      contextOf(file, command.name);
      await writeContextsFile({ ...file, data: { ...file.data, 'current-context': command.name } });
      println(io.stdout, `Switched to context "${command.name}".`);
      return 0;
    case 'delete-context': {
      contextOf(file, command.name);
      const contexts = Object.fromEntries(
        Object.entries(file.data.contexts).filter(([name]) => name !== command.name),
      );
      const current = file.data['current-context'];
      const data: ConfigData =
        current === command.name ? { contexts } : { 'current-context': current, contexts };
      await writeContextsFile({ ...file, data: withoutUndefined(data) });
      println(io.stdout, `Deleted context "${command.name}" from ${file.path}.`);
      return 0;
    }
    case 'set-context': {
      const old = Object.hasOwn(file.data.contexts, command.name)
        ? file.data.contexts[command.name]
        : undefined;
      const context = await changedContext(command, old);
      const data = withoutUndefined({
        ...file.data,
        contexts: { ...file.data.contexts, [command.name]: context },
      });
      await writeContextsFile({ ...file, data });
      println(
        io.stdout,
        `Context "${command.name}" ${old === undefined ? 'created' : 'modified'}.`,
      );
      return 0;
    }
  }
}

async function changedContext(
  command: Extract<ConfigCommand, { kind: 'set-context' }>,
  old: ContextData | undefined,
): Promise<ContextData> {
  const server = command.fields.server ?? old?.server;
  if (server === undefined)
    throw new UsageError(`config set-context: a new context needs --server HOST:PORT`);
  const labels = new Map(Object.entries(old?.labels ?? {}));
  for (const pair of command.labels) {
    const eq = pair.indexOf('=');
    if (eq === -1 && pair.endsWith('-')) labels.delete(pair.slice(0, -1));
    else if (eq > 0) labels.set(pair.slice(0, eq), pair.slice(eq + 1));
    else throw new UsageError(`--label ${JSON.stringify(pair)} is not KEY=VALUE or KEY-`);
  }
  if (command.labels.length > 0) {
    const { checkLabels } = await import('../job/index.js');
    try {
      checkLabels(Object.fromEntries(labels), '--label');
    } catch (err) {
      throw new UsageError((err as Error).message, { cause: err });
    }
  }
  const context: ContextData = {
    ...old,
    ...command.fields,
    server,
    labels: labels.size === 0 ? undefined : Object.fromEntries(labels),
  };
  if ((context.cert === undefined) !== (context.key === undefined))
    throw new UsageError('config set-context: --cert and --key go together');
  return context;
}

function listContexts(file: ContextsFile, namesOnly: boolean): string {
  const names = contextNames(file);
  if (namesOnly) return names.join('\n');
  const current = file.data['current-context'];
  const rows = names.map((name) => {
    const c = contextOf(file, name);
    const labels = Object.entries(c.labels ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    return [
      name === current ? '*' : '',
      name,
      c.server,
      c.user ?? (c.cert !== undefined ? visible(c.cert) : '-'),
      labels,
    ];
  });
  return formatTable(['CURRENT', 'NAME', 'SERVER', 'USER', 'LABELS'], rows);
}

/** `data` without keys set to undefined (TOML has no null). */
function withoutUndefined(data: ConfigData): ConfigData {
  const contexts = Object.fromEntries(
    Object.entries(data.contexts).map(([name, c]) => [
      name,
      Object.fromEntries(
        Object.entries(c).filter(([, v]) => v !== undefined),
      ) as unknown as ContextData,
    ]),
  );
  return data['current-context'] === undefined
    ? { contexts }
    : { 'current-context': data['current-context'], contexts };
}

/** The `config` command. */
export const command: CommandModule = { help, main };
