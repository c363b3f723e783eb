/**
 * jobworkerd's settings, each defined once: its key in the TOML file, the
 * flag and environment variable derived from it, its kind (how a value is
 * read and shown), its default and its help. Parsing (config.ts), `serve
 * --help` and the README's reference table are all made from {@link SETTINGS}.
 */
import { isAbsolute, resolve } from 'node:path';
import { DEFAULT_LIMITS, HOST_BUDGET_FLAGS, type Limits } from '../isolation/index.js';
import {
  DEFAULT_DISK_BUDGET_BYTES,
  DEFAULT_MAX_RUNNING_JOBS,
  DEFAULT_MAX_RUNNING_JOBS_PER_OWNER,
  DEFAULT_OUTPUT_CAP_BYTES,
  DEFAULT_RETENTION_MS,
  OWNER_BUDGET_NAMES,
  type OwnerBudget,
} from '../job/index.js';
import { readCpu, readDuration } from '../quantities.js';
import { readSize } from '../sizes.js';
import { parseAddress } from './server.js';

/** Where a value came from: a file's TOML value, or the text of a flag or environment variable. */
export type Origin = 'file' | 'text';

/** A kind of value: how it is read (the value, or what is wrong with it) and shown. */
export interface Kind<T> {
  /** Placeholder in help, e.g. SIZE. */
  readonly meta: string;
  readonly read: (value: unknown, origin: Origin) => T | Problem;
  // A method, so that a Kind<T> is also a Kind<unknown> for the code that only shows values.
  show(value: T): string;
}

/** What is wrong with a value, to follow its name and the quoted value. */
export class Problem {
  readonly reason: string;
  constructor(reason: string) {
    this.reason = reason;
  }
}

/** A host and port to listen on. */
export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/** Log levels, pino's names. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
/** Log formats: one JSON object a line (pino's own), or pino-pretty's text without colours. */
export const LOG_FORMATS = ['json', 'text'] as const;

/** A string from either origin; a TOML number, boolean or table is refused. */
function text(value: unknown, expected: string): string | Problem {
  return typeof value === 'string' ? value : new Problem(`must be a string (${expected})`);
}

/** A reader of strings wrapped into a {@link Kind} reader. */
function fromText<T>(read: (value: string) => T | string): (value: unknown) => T | Problem {
  return (value) => {
    const t = text(value, 'a quoted value');
    if (t instanceof Problem) return t;
    const out = read(t);
    return typeof out === 'string' ? new Problem(out) : out;
  };
}

/** Shows `n` in the largest of `units` (largest first) that divides it. */
function showIn(n: number, units: readonly (readonly [string, number])[]): string {
  const unit = units.find(([, size]) => n % size === 0) ?? units[units.length - 1];
  return unit === undefined ? String(n) : `${n / unit[1]}${unit[0]}`;
}

const SIZE_UNITS = [
  ['T', 1024 ** 4],
  ['G', 1024 ** 3],
  ['M', 1024 ** 2],
  ['K', 1024],
  ['B', 1],
] as const;

/** A size with its unit, as jobctl's `--memory` reads it (src/sizes.ts). */
const size: Kind<number> = {
  meta: 'SIZE',
  read: (value) =>
    typeof value === 'number'
      ? new Problem(`has no unit; write it as a string such as "${value}M"`)
      : fromText(readSize)(value),
  show: (n) => showIn(n, SIZE_UNITS),
};

/** A bandwidth: a size a second, or 0 for unlimited. */
const bandwidth: Kind<number> = {
  meta: 'SIZE',
  read: (value) => (value === 0 || value === '0' ? 0 : size.read(value, 'file')),
  show: (n) => (n === 0 ? '0 (unlimited)' : `${size.show(n)}/s`),
};

/** A duration above 0 with its unit, as jobctl's `--timeout` reads it (src/quantities.ts). */
const duration: Kind<number> = {
  meta: 'DURATION',
  read: fromText((t) => {
    const ms = readDuration(t);
    return ms === 0 ? 'must be more than 0' : ms;
  }),
  show: (ms) =>
    showIn(ms, [
      ['h', 3_600_000],
      ['m', 60_000],
      ['s', 1000],
      ['ms', 1],
    ]),
};

/** A whole number of at least 1: a TOML integer, or its digits. */
const count: Kind<number> = {
  meta: 'N',
  read: (value) => {
    const n =
      typeof value === 'number'
        ? value
        : typeof value === 'string' && /^\d+$/.test(value)
          ? Number(value)
          : NaN;
    return Number.isSafeInteger(n) && n >= 1
      ? n
      : new Problem('is not a whole number of at least 1');
  },
  show: String,
};

/** CPU as cores (a number or its text) or millicores ("500m"), in thousandths of a core. */
const cpu: Kind<number> = {
  meta: 'CPU',
  read: (value) => fromText(readCpu)(typeof value === 'number' ? String(value) : value),
  show: (millis) => (millis % 1000 === 0 ? String(millis / 1000) : `${millis}m`),
};

/** true or false: a TOML boolean, or its text. */
const bool: Kind<boolean> = {
  meta: 'BOOL',
  read: (value) => {
    if (typeof value === 'boolean') return value;
    if (value === 'true' || value === 'false') return value === 'true';
    return new Problem('is not true or false');
  },
  show: String,
};

/**
 * A path. In a file it must be absolute (relative to what: the file, or the
 * server's working directory?); a flag's or variable's is resolved against
 * the working directory, as a shell user expects.
 */
const path: Kind<string> = {
  meta: 'PATH',
  read: (value, origin) => {
    const t = text(value, 'a path');
    if (t instanceof Problem) return t;
    if (t === '') return new Problem('is empty');
    if (origin === 'file' && !isAbsolute(t)) return new Problem('must be an absolute path');
    return resolve(t);
  },
  show: (p) => p,
};

/**
 * HOST:PORT ([v6]:PORT). With `loopback`, a bare `:PORT` means
 * 127.0.0.1:PORT: an address that is not the server's API should not be
 * reachable from the network unless one says so.
 */
function address(loopback: boolean): Kind<ListenAddress> {
  return {
    meta: 'HOST:PORT',
    read: fromText((t) => {
      const full = loopback && /^:\d+$/.test(t) ? `127.0.0.1${t}` : t;
      try {
        return parseAddress(full);
      } catch {
        return `is not HOST:PORT${loopback ? ' (or :PORT for 127.0.0.1)' : ''}`;
      }
    }),
    show: ({ host, port }) => `${host.includes(':') ? `[${host}]` : host}:${port}`,
  };
}

function oneOf<const T extends string>(values: readonly T[]): Kind<T> {
  return {
    meta: values.join('|'),
    read: (value) =>
      values.includes(value as T)
        ? (value as T)
        : new Problem(`is not one of ${values.join(', ')}`),
    show: (v) => v,
  };
}

/**
 * One setting. `V` is its value once resolved: `T` when it has a default,
 * `T | undefined` when absence means something (computed, or off).
 */
export interface Setting<T, V extends T | undefined = T | undefined> {
  readonly kind: Kind<T>;
  readonly doc: string;
  readonly default: V;
  /** The default in help when it is not a value (computed from the host or from another key). */
  readonly defaultText?: string;
  /** The flag, when not derived from the key (kept as the flags were before the file). */
  readonly flag?: string;
}

function setting<T>(kind: Kind<T>, value: T, doc: string, flag?: string): Setting<T, T> {
  return { kind, default: value, doc, ...(flag === undefined ? {} : { flag }) };
}

function optional<T>(
  kind: Kind<T>,
  defaultText: string,
  doc: string,
  flag?: string,
): Setting<T, T | undefined> {
  return { kind, default: undefined, defaultText, doc, ...(flag === undefined ? {} : { flag }) };
}

const ownerFlag = (field: keyof OwnerBudget) =>
  `--${OWNER_BUDGET_NAMES[field].replaceAll('_', '-')}`;

/** The default and maximum limits of a job, one key each. */
const LIMIT_KEYS = {
  cpu: ['cpuMillis', cpu],
  memory: ['memoryBytes', size],
  pids: ['pidsMax', count],
  io_read: ['ioReadBps', bandwidth],
  io_write: ['ioWriteBps', bandwidth],
} as const satisfies Record<string, readonly [keyof Limits, Kind<number>]>;

/** The default listen address. */
export const DEFAULT_LISTEN: ListenAddress = { host: '127.0.0.1', port: 50051 };

/**
 * Every setting, by its dotted TOML key (`[retention] max_age = "24h"` is
 * `retention.max_age`). The flag is `--` and the key with dashes
 * (`--retention-max-age`) unless given; the environment variable is
 * `JOBWORKER_` and the key in capitals with underscores.
 */
export const SETTINGS = {
  listen: setting(
    address(false),
    DEFAULT_LISTEN,
    'the API (gRPC over mutual TLS); [::]:PORT for every address',
  ),
  state_dir: optional(
    path,
    'required (dev: under $XDG_STATE_HOME)',
    "jobs' output, their records and the audit log; root's, mode 0700",
  ),
  'tls.dir': optional(
    path,
    'required unless tls.ca, tls.cert and tls.key are all set (dev: its own)',
    'directory of ca.crt, server.crt and server.key, as `jobworkerd certs init` lays them out',
    '--certs',
  ),
  'tls.ca': optional(
    path,
    '<tls.dir>/ca.crt',
    'CA certificate (PEM) that signed the clients and the server',
  ),
  'tls.cert': optional(path, '<tls.dir>/server.crt', "the server's certificate (PEM)"),
  'tls.key': optional(
    path,
    '<tls.dir>/server.key',
    "the server's private key (PEM; ECDSA P-256 or Ed25519)",
  ),
  'audit.stdout': setting(
    bool,
    false,
    'also write each audit record to standard output',
    '--audit-stdout',
  ),
  'log.level': setting(oneOf(LOG_LEVELS), 'info', 'least level of the server log (standard error)'),
  'log.format': setting(
    oneOf(LOG_FORMATS),
    'json',
    'json: a JSON object a line; text: one readable line each',
  ),
  'metrics.listen': optional(
    address(true),
    'off',
    'Prometheus /metrics over plain HTTP; :PORT is 127.0.0.1:PORT; loopback only unless metrics.allow_remote',
  ),
  'metrics.allow_remote': setting(
    bool,
    false,
    'let metrics.listen be an address other than loopback (/metrics has no authentication: firewall it)',
  ),
  'jobs.output_cap': setting(
    size,
    DEFAULT_OUTPUT_CAP_BYTES,
    'most output bytes kept of one job (both streams); the rest is dropped with a marker',
  ),
  'retention.max_age': setting(
    duration,
    DEFAULT_RETENTION_MS,
    'finished jobs older than this are removed',
  ),
  'retention.disk_budget': setting(
    size,
    DEFAULT_DISK_BUDGET_BYTES,
    "most bytes of finished jobs' output and the audit log kept; the oldest go first",
  ),
  'budget.running_jobs': setting(
    count,
    DEFAULT_MAX_RUNNING_JOBS,
    'most jobs running at once',
    '--max-running-jobs',
  ),
  'budget.host_memory': optional(
    size,
    'half of MemTotal',
    'memory of all jobs together',
    HOST_BUDGET_FLAGS.memoryBytes,
  ),
  'budget.host_pids': optional(
    count,
    'half of min(pid_max, threads-max)',
    'tasks of all jobs together',
    HOST_BUDGET_FLAGS.pidsMax,
  ),
  'budget.owner_running_jobs': setting(
    count,
    DEFAULT_MAX_RUNNING_JOBS_PER_OWNER,
    "one owner's running jobs",
    ownerFlag('runningJobs'),
  ),
  'budget.owner_memory': optional(
    size,
    'budget.host_memory',
    "sum of one owner's jobs' memory limits",
    ownerFlag('memoryBytes'),
  ),
  'budget.owner_pids': optional(
    count,
    'budget.host_pids',
    "sum of one owner's jobs' pids limits",
    ownerFlag('pidsMax'),
  ),
  ...limitSettings(),
} as const;

/** `limits.default.*` and `limits.max.*` from {@link LIMIT_KEYS}. */
function limitSettings() {
  type Key = keyof typeof LIMIT_KEYS;
  const entries = (Object.keys(LIMIT_KEYS) as Key[]).flatMap((key) => {
    const [field, kind] = LIMIT_KEYS[key];
    const what = key.replace('_', ' ');
    return [
      [
        `limits.default.${key}`,
        setting(kind, DEFAULT_LIMITS[field], `${what} of a job that does not ask`),
      ],
      [
        `limits.max.${key}`,
        optional(
          kind,
          field === 'cpuMillis'
            ? 'all cores'
            : field === 'memoryBytes'
              ? 'budget.host_memory'
              : field === 'pidsMax'
                ? 'budget.host_pids'
                : '0 (unlimited)',
          `most ${what} one job may ask for`,
        ),
      ],
    ] as const;
  });
  return Object.fromEntries(entries) as {
    readonly [K in Key as `limits.default.${K}`]: Setting<number, number>;
  } & { readonly [K in Key as `limits.max.${K}`]: Setting<number, number | undefined> };
}

/** The limit fields behind `limits.*.<key>`. */
export const LIMIT_FIELDS: Readonly<Record<keyof typeof LIMIT_KEYS, keyof Limits>> =
  Object.fromEntries(Object.entries(LIMIT_KEYS).map(([key, [field]]) => [key, field])) as Record<
    keyof typeof LIMIT_KEYS,
    keyof Limits
  >;

/** A setting's key. */
export type Key = keyof typeof SETTINGS;

/** The resolved settings: every key's value (or undefined where absence means something). */
export type Settings = {
  readonly [K in Key]: (typeof SETTINGS)[K] extends Setting<unknown, infer V> ? V : never;
};

/** Every key, in the table's order. */
export const KEYS = Object.keys(SETTINGS) as Key[];

/** The flag of `key`, with its dashes. */
export function flagOf(key: Key): string {
  const s: Setting<unknown> = SETTINGS[key];
  return s.flag ?? `--${key.replaceAll(/[._]/g, '-')}`;
}

/** The environment variable of `key`. */
export function envOf(key: Key): string {
  return `JOBWORKER_${key.replaceAll('.', '_').toUpperCase()}`;
}

/** The file flag and its variable: not a setting, the file holds them. */
export const CONFIG_FLAG = '--config';
/** The environment variable naming the config file. */
export const CONFIG_ENV = 'JOBWORKER_CONFIG';

/** The default of `key` as help shows it. */
export function defaultOf(key: Key): string {
  const s: Setting<unknown> = SETTINGS[key];
  return s.default === undefined ? (s.defaultText ?? 'none') : s.kind.show(s.default);
}

/** A setting on the command line: `--flag META`, or the flag alone for a switch. */
function usageOf(key: Key): string {
  const s: Setting<unknown> = SETTINGS[key];
  return s.kind.meta === bool.meta ? flagOf(key) : `${flagOf(key)} ${s.kind.meta}`;
}

/** The options part of `serve --help` / `dev --help`: every setting, its flag, key, variable and default. */
export function optionsHelp(): string {
  return KEYS.map((key) => {
    const s: Setting<unknown> = SETTINGS[key];
    return `  ${usageOf(key)}  [${key}, ${envOf(key)}] (default: ${defaultOf(key)})\n      ${s.doc}\n`;
  }).join('');
}

/** The README's reference table (tests/config-docs checks that the README has it). */
export function markdownReference(): string {
  const rows = KEYS.map((key) => {
    const s: Setting<unknown> = SETTINGS[key];
    return `| \`${key}\` | \`${flagOf(key)}\` | \`${envOf(key)}\` | ${s.kind.meta.replaceAll('|', '\\|')} | ${defaultOf(key)} | ${s.doc} |`;
  });
  return [
    '| Key | Flag | Environment | Value | Default | Meaning |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows,
    '',
  ].join('\n');
}
