/**
 * jobctl's contexts file, kubeconfig's idea in TOML: named servers, each with
 * the certificates to use there and labels to pick it by, and a current one.
 * Default `${XDG_CONFIG_HOME:-~/.config}/jobworker/config`; `--config FILE`
 * or JOBCTL_CONFIG names another. Parsed with smol-toml and checked with a
 * zod schema: an unknown key or a bad value is refused naming the file, the
 * key and the reason. Written atomically with mode 0600, since it names key
 * files. zod and smol-toml are loaded only when a file exists, so that
 * commands without one start as fast as before.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import type { ConnectionFlags } from './args.js';
import { ConfigError, UsageError } from './failures.js';
import { resolveTarget, serverProblem, userProblem, type Target } from './identity.js';

/** Largest contexts file read, in bytes: a bound on a file that is not one. */
export const MAX_CONFIG_BYTES = 1024 * 1024;
/** Most contexts in one file. */
export const MAX_CONTEXTS = 1024;
/** Most contexts one `jobctl run` takes: each is a TLS connection and a stream at once. */
export const MAX_FLEET_CONTEXTS = 64;

/** A context name: also the prefix of its output lines, so no ',' (lists) and no ':' (the prefix's end). */
const CONTEXT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const NAME_RULE = "is not a context name (letters, digits, '.', '_', '-'; at most 63)";

/** One context as the file spells it (keys are jobctl's flag names). */
export interface ContextData {
  readonly server: string;
  readonly 'tls-server-name'?: string | undefined;
  readonly certs?: string | undefined;
  readonly user?: string | undefined;
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
  readonly ca?: string | undefined;
  readonly labels?: Readonly<Record<string, string>> | undefined;
}

/** The file's contents. */
export interface ConfigData {
  readonly 'current-context'?: string | undefined;
  readonly contexts: Readonly<Record<string, ContextData>>;
}

/** A contexts file read from disk (empty when there is none). */
export interface ContextsFile {
  readonly path: string;
  readonly data: ConfigData;
}

/** A context chosen for a command: its name and where to connect. */
export interface NamedTarget {
  /** undefined: no context (flags, environment and defaults only). */
  readonly name: string | undefined;
  readonly target: Target;
}

/** The contexts file's path: `--config`, JOBCTL_CONFIG, then the XDG default. */
export function configPath(flags: ConnectionFlags, env: NodeJS.ProcessEnv): string {
  const given = flags.config ?? nonEmpty(env['JOBCTL_CONFIG']);
  if (given !== undefined) return resolve(given);
  // The XDG spec says to ignore a relative XDG_CONFIG_HOME.
  const xdg = env['XDG_CONFIG_HOME'];
  const base = xdg?.startsWith('/') === true ? xdg : join(env['HOME'] ?? homedir(), '.config');
  return join(base, 'jobworker', 'config');
}

/** Reads and checks the contexts file at `path`; a missing file is an empty one. */
export async function readContextsFile(path: string): Promise<ContextsFile> {
  let text: string;
  try {
    const handle = await open(path, 'r');
    try {
      const buffer = Buffer.alloc(MAX_CONFIG_BYTES + 1);
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
      if (bytesRead > MAX_CONFIG_BYTES)
        throw new ConfigError(`${path} is larger than ${MAX_CONFIG_BYTES} bytes`);
      text = buffer.toString('utf8', 0, bytesRead);
    } finally {
      await handle.close();
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { path, data: { contexts: {} } };
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(
      `cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      {
        cause: err,
      },
    );
  }
  const { parseConfig } = await import('./contexts-schema.js');
  return { path, data: await parseConfig(path, text) };
}

/**
 * Writes `data` to `file.path` atomically: a new file with mode 0600 in the
 * same directory, flushed, then renamed over the old one (the directory is
 * created with mode 0700). Comments of a hand-written file are not kept.
 */
export async function writeContextsFile(file: ContextsFile): Promise<void> {
  const { stringify } = await import('smol-toml');
  const text = `# jobctl contexts (see 'jobctl config --help'); rewritten by 'jobctl config', comments are not kept\n${stringify(file.data)}\n`;
  const dir = dirname(file.path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const temporary = join(dir, `.config.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(temporary, 'wx', 0o600);
    try {
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, file.path);
  } catch (err) {
    await rm(temporary, { force: true });
    throw new ConfigError(
      `cannot write ${file.path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      {
        cause: err,
      },
    );
  }
}

/** The names of the file's contexts, sorted. */
export function contextNames(file: ContextsFile): string[] {
  return Object.keys(file.data.contexts).sort();
}

/** The context `name` of `file`; a {@link ConfigError} naming the file and its contexts when there is none. */
export function contextOf(file: ContextsFile, name: string): ContextData {
  const data = Object.hasOwn(file.data.contexts, name) ? file.data.contexts[name] : undefined;
  if (data === undefined) {
    const names = contextNames(file);
    throw new ConfigError(
      `no context ${JSON.stringify(name)} in ${file.path}; ${names.length === 0 ? "it has none: add one with 'jobctl config set-context'" : `contexts: ${names.join(', ')}`}`,
    );
  }
  return data;
}

/** A context's connection settings, its relative paths resolved against the file's directory (as kubeconfig). */
export function contextSettings(file: ContextsFile, data: ContextData): ConnectionFlags {
  const base = dirname(file.path);
  const path = (p: string | undefined) =>
    p === undefined ? undefined : isAbsolute(p) ? p : resolve(base, p);
  return {
    server: data.server,
    tlsServerName: data['tls-server-name'],
    certs: path(data.certs),
    user: data.user,
    cert: path(data.cert),
    key: path(data.key),
    ca: path(data.ca),
  };
}

/** Checks a context name given on the command line. */
export function checkContextName(name: string, flag: string): void {
  if (!CONTEXT_NAME.test(name))
    throw new UsageError(`${flag} ${JSON.stringify(name)} ${NAME_RULE}`);
}

/** The regular expression and rule of context names, for the schema. */
export const contextNameRule = { pattern: CONTEXT_NAME, message: NAME_RULE } as const;

/** The rules a context's server and user follow, for the schema (identity.ts defines them). */
export const settingRules = { serverProblem, userProblem } as const;

/**
 * Where `command` (its name, or "this command") connects: the contexts `--context` (or JOBCTL_CONTEXT)
 * names, or that `--context-selector` picks, or the file's current context,
 * or none; each with the flags applied over it. `several` says whether the
 * command takes more than one (only `run` does); more than
 * {@link MAX_FLEET_CONTEXTS} are refused.
 */
export async function resolveTargets(
  command: string,
  flags: ConnectionFlags,
  env: NodeJS.ProcessEnv,
  several: boolean,
): Promise<NamedTarget[]> {
  const named = flags.context ?? nonEmpty(env['JOBCTL_CONTEXT']);
  const selector = flags.contextSelector;
  if (named !== undefined && selector !== undefined)
    throw new UsageError(`${command}: --context and --context-selector exclude each other`);
  const file = await readContextsFile(configPath(flags, env));
  let names: string[];
  if (named !== undefined) {
    names = named.split(',');
    const flag = flags.context === undefined ? 'JOBCTL_CONTEXT' : '--context';
    for (const name of names) checkContextName(name, flag);
    const twice = names.find((name, i) => names.indexOf(name) !== i);
    if (twice !== undefined) throw new UsageError(`${flag} names ${twice} twice`);
    for (const name of names) contextOf(file, name);
  } else if (selector !== undefined) {
    names = await select(file, selector);
  } else {
    const current = file.data['current-context'];
    if (current === undefined) return [{ name: undefined, target: resolveTarget(flags, env) }];
    const settings = contextSettings(file, contextOf(file, current));
    return [{ name: current, target: resolveTarget(flags, env, { settings, explicit: false }) }];
  }
  if (names.length > 1 && !several) {
    throw new UsageError(
      `${command} takes one context, and ${names.length} were given (${names.join(', ')}); only run takes several`,
    );
  }
  if (names.length > MAX_FLEET_CONTEXTS) {
    throw new UsageError(
      `${command}: ${names.length} contexts are more than ${MAX_FLEET_CONTEXTS}, the most one run takes`,
    );
  }
  if (names.length > 1) {
    // Every job would go to the one server the flag names.
    const one =
      flags.server !== undefined
        ? '--server'
        : flags.tlsServerName !== undefined
          ? '--tls-server-name'
          : undefined;
    if (one !== undefined)
      throw new UsageError(`${command}: ${one} cannot apply to ${names.length} contexts`);
  }
  return names.map((name) => ({
    name,
    target: resolveTarget(flags, env, {
      settings: contextSettings(file, contextOf(file, name)),
      explicit: true,
    }),
  }));
}

/** The names of the contexts whose labels match `selector` (kubectl's syntax), sorted. */
async function select(file: ContextsFile, selector: string): Promise<string[]> {
  const { matchesSelector, parseSelector } = await import('../job/index.js');
  let parsed;
  try {
    parsed = parseSelector(selector, '--context-selector');
  } catch (err) {
    throw new UsageError((err as Error).message, { cause: err });
  }
  const names = contextNames(file).filter((name) =>
    matchesSelector(file.data.contexts[name]?.labels ?? {}, parsed),
  );
  if (names.length === 0) {
    throw new ConfigError(
      `--context-selector ${JSON.stringify(selector)} matches no context in ${file.path}; see jobctl config get-contexts`,
    );
  }
  return names;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
