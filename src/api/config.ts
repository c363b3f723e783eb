/**
 * Reads jobworkerd's settings (config-schema.ts) from a TOML file, the
 * environment and the command line, in that order of precedence from low to
 * high (flag > environment > file > default), and refuses an unknown key or a
 * bad value naming where it came from: the file and key, the variable, or
 * the flag and value.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { parse as parseToml, TomlError } from 'smol-toml';
import { z } from 'zod';
import type { HostBudget, Limits } from '../isolation/index.js';
import type { OwnerBudget } from '../job/index.js';
import {
  CONFIG_ENV,
  CONFIG_FLAG,
  envOf,
  flagOf,
  KEYS,
  LIMIT_FIELDS,
  Problem,
  SETTINGS,
  type Key,
  type Setting,
  type Settings,
} from './config-schema.js';
import type { ServeOptions } from './serve.js';
import { isLoopback } from './metrics-http.js';
import { tlsFilesIn } from './tls.js';

/** A bad command line (EX_USAGE): an unknown flag, a flag without its value, a bad flag value. */
export class UsageError extends Error {}

/** A bad configuration (EX_CONFIG): in the file, the environment, or keys that do not fit together. */
export class ConfigError extends Error {}

/** Values found in one place, by key, already read by their kinds. */
type Found = Partial<Record<Key, unknown>>;

/** Where each value of a {@link Loaded} came from, for messages about keys that do not fit together. */
type Sources = Partial<Record<Key, string>>;

/** Settings and where the set ones came from. */
export interface Loaded {
  readonly settings: Settings;
  readonly sources: Sources;
  /** The file read, if any. */
  readonly file: string | undefined;
}

const quote = (value: unknown) => JSON.stringify(value);

/** The parseArgs table of every setting's flag, plus --config and --help. */
function flagTable(): NonNullable<ParseArgsConfig['options']> {
  const options: NonNullable<ParseArgsConfig['options']> = {
    [CONFIG_FLAG.slice(2)]: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  };
  for (const key of KEYS) {
    const s: Setting<unknown> = SETTINGS[key];
    options[flagOf(key).slice(2)] = { type: s.kind.meta === 'BOOL' ? 'boolean' : 'string' };
  }
  return options;
}

/** The command line of serve/dev: the settings it sets, the file it names, and whether --help was asked. */
export function parseFlags(args: readonly string[]): {
  found: Found;
  config: string | undefined;
  help: boolean;
} {
  let values: Record<string, unknown>;
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: flagTable(),
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  const found: Found = {};
  for (const key of KEYS) {
    const flag = flagOf(key);
    const value = values[flag.slice(2)];
    if (value === undefined) continue;
    const read = readValue(key, value, 'text');
    if (read instanceof Problem) throw new UsageError(`${flag} ${quote(value)} ${read.reason}`);
    found[key] = read;
  }
  const config = values[CONFIG_FLAG.slice(2)];
  return {
    found,
    config: typeof config === 'string' ? config : undefined,
    help: values['help'] === true,
  };
}

function readValue(key: Key, value: unknown, origin: 'file' | 'text'): unknown {
  const s: Setting<unknown> = SETTINGS[key];
  return s.kind.read(value, origin);
}

/**
 * The settings given by `JOBWORKER_*` variables of `env`. Other `JOBWORKER_`
 * variables are left alone: jobctl and the tests have their own.
 */
export function readEnv(env: NodeJS.ProcessEnv): Found {
  const found: Found = {};
  const problems: string[] = [];
  for (const key of KEYS) {
    const name = envOf(key);
    const value = env[name];
    if (value === undefined) continue;
    const read = readValue(key, value, 'text');
    if (read instanceof Problem) problems.push(`${name}=${quote(value)} ${read.reason}`);
    else found[key] = read;
  }
  if (problems.length > 0) throw new ConfigError(problems.join('\n'));
  return found;
}

/** The zod schema of the file: nested strict tables (an unknown key is an issue), each leaf read by its kind. */
function fileSchema(): z.ZodType {
  interface Node {
    [name: string]: Node | Key;
  }
  const tree: Node = {};
  for (const key of KEYS) {
    const parts = key.split('.');
    let node = tree;
    for (const part of parts.slice(0, -1)) {
      const next = node[part];
      node = typeof next === 'object' ? next : (node[part] = {});
    }
    node[parts[parts.length - 1] ?? key] = key;
  }
  const build = (node: Node): z.ZodType =>
    z
      .strictObject(
        Object.fromEntries(
          Object.entries(node).map(([name, child]) => [
            name,
            typeof child === 'string'
              ? z
                  .unknown()
                  .transform((value, ctx) => {
                    if (value === undefined) return undefined;
                    const read = readValue(child, value, 'file');
                    if (!(read instanceof Problem)) return read;
                    ctx.addIssue({ code: 'custom', message: `${quote(value)} ${read.reason}` });
                    return z.NEVER;
                  })
                  .optional()
              : build(child),
          ]),
        ),
      )
      .optional();
  return build(tree);
}

/** Why a zod issue refuses the file, as `key: reason` lines. */
function describe(issue: z.core.$ZodIssue): string[] {
  const at = issue.path.map(String).join('.');
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((name) => `${at === '' ? '' : `${at}.`}${name}: unknown key`);
  }
  if (issue.code === 'invalid_type') return [`${at}: must be a table of settings`];
  return [`${at}: ${issue.message}`];
}

/** Reads and validates the TOML file `file`; every problem is a line `FILE: key: reason`. */
export async function readConfigFile(file: string): Promise<Found> {
  let source: string;
  try {
    source = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    );
  }
  let document: unknown;
  try {
    document = parseToml(source);
  } catch (err) {
    if (!(err instanceof TomlError)) throw err;
    // smol-toml's message is "Invalid TOML document: REASON" and a code block.
    const reason = (err.message.split('\n')[0] ?? '').replace(/^Invalid TOML document: /, '');
    throw new ConfigError(`${file}:${err.line}:${err.column}: ${reason}`);
  }
  const result = fileSchema().safeParse(document);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues
        .flatMap(describe)
        .map((line) => `${file}: ${line}`)
        .join('\n'),
    );
  }
  const found: Found = {};
  for (const key of KEYS) {
    let node: unknown = result.data;
    for (const part of key.split('.')) node = (node as Record<string, unknown> | undefined)?.[part];
    if (node !== undefined) found[key] = node;
  }
  const sources = Object.fromEntries(Object.keys(found).map((key) => [key, `${file}: ${key}`]));
  checkTogether(withDefaults(found), sources);
  return found;
}

function withDefaults(found: Found): Settings {
  return Object.fromEntries(
    KEYS.map((key) => {
      const s: Setting<unknown> = SETTINGS[key];
      return [key, found[key] ?? s.default];
    }),
  ) as Settings;
}

function named(key: Key, sources: Sources): string {
  return sources[key] ?? `${key} (default)`;
}

/** `value` of `key` as its kind shows it (2G, not 2147483648). */
function shown(key: Key, value: number): string {
  const s: Setting<unknown> = SETTINGS[key];
  return s.kind.show(value);
}

function above(key: Key, value: number, bound: Key, limit: number, sources: Sources): ConfigError {
  return new ConfigError(
    `${named(key, sources)}: ${shown(key, value)} is above ${bound} ${shown(key, limit)} (${named(bound, sources)})`,
  );
}

/**
 * Refuses keys that do not fit together where both are known without the
 * host: an owner's share above the host budget, a default limit above its
 * maximum, a metrics address off loopback without leave to be.
 */
function checkTogether(settings: Settings, sources: Sources): void {
  const metrics = settings['metrics.listen'];
  const remote = settings['metrics.allow_remote'];
  if (metrics === undefined && remote) {
    throw new ConfigError(
      `${named('metrics.allow_remote', sources)}: true needs metrics.listen, which is not set`,
    );
  }
  if (metrics !== undefined && !remote && !isLoopback(metrics.host)) {
    throw new ConfigError(
      `${named('metrics.listen', sources)}: ${JSON.stringify(SETTINGS['metrics.listen'].kind.show(metrics))} is not loopback; /metrics has no authentication, so serving it elsewhere takes metrics.allow_remote (--metrics-allow-remote) and a firewall`,
    );
  }
  const pairs: [Key, Key][] = [
    ['budget.owner_memory', 'budget.host_memory'],
    ['budget.owner_pids', 'budget.host_pids'],
    ...(Object.keys(LIMIT_FIELDS) as (keyof typeof LIMIT_FIELDS)[]).map((k): [Key, Key] => [
      `limits.default.${k}`,
      `limits.max.${k}`,
    ]),
  ];
  for (const [low, high] of pairs) {
    const value = settings[low] as number | undefined;
    const bound = settings[high] as number | undefined;
    // A maximum of 0 is unlimited (io).
    if (value !== undefined && bound !== undefined && bound > 0 && value > bound) {
      throw above(low, value, high, bound, sources);
    }
  }
}

/**
 * The settings from the command line `args`, `env` and the file either names
 * (`--config` over `JOBWORKER_CONFIG`); `defaults` replace the table's
 * (dev's state and certificates). Throws a {@link UsageError} for the command
 * line, a {@link ConfigError} for the rest.
 */
export async function loadSettings(
  flags: { readonly found: Found; readonly config: string | undefined },
  env: NodeJS.ProcessEnv,
  defaults: Found = {},
): Promise<Loaded> {
  const file = flags.config ?? env[CONFIG_ENV];
  const fromFile = file === undefined ? {} : await readConfigFile(file);
  const fromEnv = readEnv(env);
  const sources: Sources = {};
  const found: Found = { ...defaults };
  const layers: [Found, (key: Key) => string][] = [
    [fromFile, (key) => `${file ?? ''}: ${key}`],
    [fromEnv, (key) => envOf(key)],
    [flags.found, (key) => flagOf(key)],
  ];
  for (const [layer, name] of layers) {
    for (const key of Object.keys(layer) as Key[]) {
      found[key] = layer[key];
      sources[key] = name(key);
    }
  }
  const settings = withDefaults(found);
  checkTogether(settings, sources);
  return { settings, sources, file };
}

/**
 * Refuses what only the host can judge: a host budget above the host's
 * total, and an owner's share or a limit above the host budget in effect.
 */
export function checkAgainstHost(loaded: Loaded, totals: HostBudget, cores: number): void {
  const { settings, sources } = loaded;
  const budget = {
    memoryBytes: settings['budget.host_memory'] ?? Math.floor(totals.memoryBytes / 2),
    pidsMax: settings['budget.host_pids'] ?? Math.floor(totals.pidsMax / 2),
  };
  const checks: [Key, number | undefined, Key | 'the host total', number][] = [
    ['budget.host_memory', settings['budget.host_memory'], 'the host total', totals.memoryBytes],
    ['budget.host_pids', settings['budget.host_pids'], 'the host total', totals.pidsMax],
    [
      'budget.owner_memory',
      settings['budget.owner_memory'],
      'budget.host_memory',
      budget.memoryBytes,
    ],
    ['budget.owner_pids', settings['budget.owner_pids'], 'budget.host_pids', budget.pidsMax],
    ['limits.max.memory', settings['limits.max.memory'], 'budget.host_memory', budget.memoryBytes],
    ['limits.max.pids', settings['limits.max.pids'], 'budget.host_pids', budget.pidsMax],
    [
      'limits.default.memory',
      settings['limits.default.memory'],
      'budget.host_memory',
      budget.memoryBytes,
    ],
    ['limits.default.pids', settings['limits.default.pids'], 'budget.host_pids', budget.pidsMax],
    [
      'limits.default.cpu',
      settings['limits.default.cpu'],
      'limits.max.cpu',
      settings['limits.max.cpu'] ?? cores * 1000,
    ],
  ];
  for (const [key, value, boundName, bound] of checks) {
    // A default limit the operator did not set is lowered to the maxima by the isolation.
    if (value === undefined || value <= bound || sources[key] === undefined) continue;
    if (boundName === 'the host total') {
      throw new ConfigError(
        `${named(key, sources)}: ${shown(key, value)} is above the host's total ${shown(key, bound)}`,
      );
    }
    throw above(key, value, boundName, bound, sources);
  }
}

/** The limits set under `limits.<which>.*`. */
function limitsOf(settings: Settings, which: 'default' | 'max'): Partial<Limits> {
  const out: Partial<Record<keyof Limits, number>> = {};
  for (const [key, field] of Object.entries(LIMIT_FIELDS)) {
    const value = settings[`limits.${which}.${key}` as Key] as number | undefined;
    if (value !== undefined) out[field] = value;
  }
  return out;
}

/** Present fields of `fields` only (exactOptionalPropertyTypes: absent, not undefined). */
function present<T extends object>(fields: { [K in keyof T]: T[K] | undefined }): Partial<T> {
  return Object.fromEntries(
    Object.entries(fields).filter(([, value]) => value !== undefined),
  ) as Partial<T>;
}

/**
 * What `serve` is started with. Refuses a configuration without a state
 * directory or without the server's certificate files.
 */
export function serveOptions(loaded: Loaded): ServeOptions {
  const { settings: s } = loaded;
  const stateDir = s.state_dir;
  if (stateDir === undefined) {
    throw new ConfigError(
      `state_dir is required (${flagOf('state_dir')}, ${envOf('state_dir')} or the file)`,
    );
  }
  const dir = s['tls.dir'];
  const inDir = dir === undefined ? undefined : tlsFilesIn(dir, 'server');
  const file = (key: 'tls.ca' | 'tls.cert' | 'tls.key', fallback: string | undefined) => {
    const value = s[key] ?? fallback;
    if (value === undefined) {
      throw new ConfigError(`${key} is required when tls.dir (${flagOf('tls.dir')}) is not set`);
    }
    return value;
  };
  return {
    listen: SETTINGS.listen.kind.show(s.listen),
    stateDir,
    tls: {
      ca: file('tls.ca', inDir?.ca),
      cert: file('tls.cert', inDir?.cert),
      key: file('tls.key', inDir?.key),
    },
    auditStdout: s['audit.stdout'],
    log: { level: s['log.level'], format: s['log.format'] },
    ...(s['metrics.listen'] === undefined
      ? {}
      : {
          metricsListen: SETTINGS['metrics.listen'].kind.show(s['metrics.listen']),
          metricsAllowRemote: s['metrics.allow_remote'],
        }),
    outputCapBytes: s['jobs.output_cap'],
    maxRunningJobs: s['budget.running_jobs'],
    retentionMs: s['retention.max_age'],
    diskBudgetBytes: s['retention.disk_budget'],
    hostBudget: present<HostBudget>({
      memoryBytes: s['budget.host_memory'],
      pidsMax: s['budget.host_pids'],
    }),
    ownerBudget: present<OwnerBudget>({
      runningJobs: s['budget.owner_running_jobs'],
      memoryBytes: s['budget.owner_memory'],
      pidsMax: s['budget.owner_pids'],
    }),
    limitDefaults: limitsOf(s, 'default'),
    limitMaxima: limitsOf(s, 'max'),
  };
}
