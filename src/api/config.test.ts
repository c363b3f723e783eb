import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  checkAgainstHost,
  ConfigError,
  loadSettings,
  parseFlags,
  readConfigFile,
  serveOptions,
  UsageError,
} from './config.js';
import { envOf, flagOf, KEYS, SETTINGS } from './config-schema.js';

const GiB = 1024 ** 3;
/** From dist/src/api/ to the repository's deploy/. */
const EXAMPLE = fileURLToPath(new URL('../../../deploy/jobworkerd.toml', import.meta.url));

describe('configuration', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'jobworker-config-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** Writes `text` to a fresh file and returns its path. */
  let n = 0;
  const file = async (text: string): Promise<string> => {
    const path = join(dir, `c${n++}.toml`);
    await writeFile(path, text);
    return path;
  };

  const refusal = (message: string | RegExp) => (err: unknown) => {
    assert.ok(err instanceof ConfigError, String(err));
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    return true;
  };

  test('the committed example (deploy/jobworkerd.toml) is valid and read with its units', async () => {
    const found = await readConfigFile(EXAMPLE);
    assert.deepEqual(found, {
      listen: { host: '0.0.0.0', port: 50051 },
      state_dir: '/var/lib/jobworker',
      'tls.dir': '/etc/jobworker/certs',
      'log.level': 'info',
      'log.format': 'json',
      'metrics.listen': { host: '127.0.0.1', port: 9464 },
      'jobs.output_cap': 256 * 1024 ** 2,
      'retention.max_age': 72 * 3600_000,
      'retention.disk_budget': 20 * GiB,
      'budget.running_jobs': 128,
      'budget.owner_running_jobs': 16,
      'budget.host_memory': 8 * GiB,
      'budget.owner_memory': 4 * GiB,
      'limits.default.cpu': 1000,
      'limits.default.memory': 512 * 1024 ** 2,
      'limits.max.cpu': 4000,
      'limits.max.memory': 4 * GiB,
    });
  });

  test('unknown keys are refused with the file and the key, at any depth', async () => {
    const path = await file('listne = "x"\n[tls]\ndir = "/c"\nkey_file = "/k"\n[nosuch]\na = 1\n');
    await assert.rejects(
      readConfigFile(path),
      refusal(
        [
          `${path}: tls.key_file: unknown key`,
          `${path}: listne: unknown key`,
          `${path}: nosuch: unknown key`,
        ].join('\n'),
      ),
    );
  });

  test('bad values are refused with the file, the key, the value and the reason', async () => {
    const cases: [string, string][] = [
      [
        '[retention]\nmax_age = "3x"',
        'retention.max_age: "3x" is not a duration; use e.g. 500ms, 10s, 1m30s',
      ],
      ['[retention]\nmax_age = "0"', 'retention.max_age: "0" must be more than 0'],
      [
        '[jobs]\noutput_cap = 1024',
        'jobs.output_cap: 1024 has no unit; write it as a string such as "1024M"',
      ],
      ['[budget]\nrunning_jobs = 0', 'budget.running_jobs: 0 is not a whole number of at least 1'],
      [
        '[budget]\nrunning_jobs = "many"',
        'budget.running_jobs: "many" is not a whole number of at least 1',
      ],
      [
        '[log]\nlevel = "loud"',
        'log.level: "loud" is not one of trace, debug, info, warn, error, fatal',
      ],
      ['listen = "localhost"', 'listen: "localhost" is not HOST:PORT'],
      [
        '[metrics]\nlisten = "9464"',
        'metrics.listen: "9464" is not HOST:PORT (or :PORT for 127.0.0.1)',
      ],
      [
        'state_dir = "var/lib/jobworker"',
        'state_dir: "var/lib/jobworker" must be an absolute path',
      ],
      ['[tls]\nca = 5', 'tls.ca: 5 must be a string (a path)'],
      ['[audit]\nstdout = "yes"', 'audit.stdout: "yes" is not true or false'],
      [
        '[limits.default]\ncpu = "lots"',
        'limits.default.cpu: "lots" is not a CPU amount; use cores (0.5, 2) or millicores (500m)',
      ],
      ['log = "debug"', 'log: must be a table of settings'],
    ];
    for (const [text, message] of cases) {
      const path = await file(text);
      await assert.rejects(readConfigFile(path), refusal(`${path}: ${message}`), text);
    }
  });

  test('a TOML syntax error names the file, line and column; an unreadable file its error', async () => {
    const path = await file('listen = "127.0.0.1:1"\n[tls\n');
    await assert.rejects(readConfigFile(path), refusal(new RegExp(`^${path}:2:\\d+: `)));
    await assert.rejects(
      readConfigFile(join(dir, 'none.toml')),
      refusal(`${join(dir, 'none.toml')}: cannot read: ENOENT`),
    );
  });

  test('keys that do not fit together are refused naming both and where each was set', async () => {
    const path = await file('[limits.max]\nmemory = "1G"\n[limits.default]\nmemory = "2G"\n');
    await assert.rejects(
      readConfigFile(path),
      refusal(
        `${path}: limits.default.memory: 2G is above limits.max.memory 1G (${path}: limits.max.memory)`,
      ),
    );
    // The same across sources: the flag's value against the file's.
    const budget = await file('[budget]\nhost_pids = 100\n');
    await assert.rejects(
      loadSettings({ ...parseFlags(['--max-pids-per-owner', '101']), config: budget }, {}),
      refusal(
        `--max-pids-per-owner: 101 is above budget.host_pids 100 (${budget}: budget.host_pids)`,
      ),
    );
  });

  test('precedence: a flag over a variable, a variable over the file, the file over the default', async () => {
    const path = await file('listen = "127.0.0.1:1001"\n[retention]\nmax_age = "1h"\n');
    const env = {
      JOBWORKER_CONFIG: path,
      JOBWORKER_LISTEN: '127.0.0.1:1002',
      JOBWORKER_RETENTION_MAX_AGE: '2h',
    };
    const flags = parseFlags(['--listen', '127.0.0.1:1003']);
    const all = await loadSettings(flags, env);
    assert.deepEqual(all.settings.listen, { host: '127.0.0.1', port: 1003 });
    assert.equal(all.settings['retention.max_age'], 2 * 3600_000);
    assert.equal(all.sources.listen, '--listen');
    assert.equal(all.sources['retention.max_age'], 'JOBWORKER_RETENTION_MAX_AGE');
    const noFlag = await loadSettings(parseFlags([]), env);
    assert.deepEqual(noFlag.settings.listen, { host: '127.0.0.1', port: 1002 });
    const fileOnly = await loadSettings(parseFlags([]), { JOBWORKER_CONFIG: path });
    assert.deepEqual(fileOnly.settings.listen, { host: '127.0.0.1', port: 1001 });
    assert.equal(fileOnly.sources.listen, `${path}: listen`);
    const none = await loadSettings(parseFlags([]), {});
    assert.deepEqual(none.settings.listen, SETTINGS.listen.default);
    assert.equal(none.file, undefined);
    // --config names the file over JOBWORKER_CONFIG.
    const other = await file('listen = "127.0.0.1:1004"\n');
    const byFlag = await loadSettings(parseFlags(['--config', other]), { JOBWORKER_CONFIG: path });
    assert.deepEqual(byFlag.settings.listen, { host: '127.0.0.1', port: 1004 });
  });

  test('a bad flag value is a usage error naming the flag and value; a bad variable names the variable', async () => {
    assert.throws(
      () => parseFlags(['--jobs-output-cap', '12']),
      (err: unknown) =>
        err instanceof UsageError &&
        err.message === '--jobs-output-cap "12" has no unit; say 12M (or B, K, G, T)',
    );
    assert.throws(() => parseFlags(['--bogus']), UsageError);
    await assert.rejects(
      loadSettings(parseFlags([]), { JOBWORKER_LOG_FORMAT: 'xml' }),
      refusal('JOBWORKER_LOG_FORMAT="xml" is not one of json, text'),
    );
  });

  test('every key has its own flag and variable', () => {
    assert.equal(new Set(KEYS.map(flagOf)).size, KEYS.length);
    assert.equal(new Set(KEYS.map(envOf)).size, KEYS.length);
    assert.equal(flagOf('metrics.listen'), '--metrics-listen');
    assert.equal(envOf('listen'), 'JOBWORKER_LISTEN');
  });

  test('serve options: the state directory and the certificate files are required; tls.dir gives the files', async () => {
    await assert.rejects(
      (async () => serveOptions(await loadSettings(parseFlags(['--certs', '/c']), {})))(),
      refusal(/^state_dir is required/),
    );
    await assert.rejects(
      (async () => serveOptions(await loadSettings(parseFlags(['--state-dir', '/s']), {})))(),
      refusal(/^tls.ca is required when tls.dir \(--certs\) is not set$/),
    );
    const options = serveOptions(
      await loadSettings(
        parseFlags([
          '--state-dir',
          '/s',
          '--certs',
          '/c',
          '--tls-key',
          '/k/server.key',
          '--metrics-listen',
          ':9464',
        ]),
        {},
      ),
    );
    assert.deepEqual(options.tls, { ca: '/c/ca.crt', cert: '/c/server.crt', key: '/k/server.key' });
    assert.equal(options.metricsListen, '127.0.0.1:9464');
    assert.equal(options.metricsAllowRemote, false);
    assert.equal(options.listen, '127.0.0.1:50051');
    assert.deepEqual(options.hostBudget, {});
    const off = serveOptions(
      await loadSettings(parseFlags(['--state-dir', '/s', '--certs', '/c']), {}),
    );
    assert.equal(off.metricsListen, undefined, 'no metrics endpoint unless asked for');
  });

  test('checks against the host: a host budget above its total, a limit or share above the budget in effect', async () => {
    const totals = { memoryBytes: 16 * GiB, pidsMax: 10_000 };
    const check = async (args: string[]) => {
      checkAgainstHost(await loadSettings(parseFlags(args), {}), totals, 2);
    };
    await check(['--host-memory', '16G', '--limits-max-memory', '16G']);
    await assert.rejects(
      check(['--host-memory', '17G']),
      refusal("--host-memory: 17G is above the host's total 16G"),
    );
    await assert.rejects(
      check(['--limits-max-memory', '9G']),
      refusal(
        '--limits-max-memory: 9G is above budget.host_memory 8G (budget.host_memory (default))',
      ),
    );
    await assert.rejects(
      check(['--limits-default-cpu', '3']),
      refusal('--limits-default-cpu: 3 is above limits.max.cpu 2 (limits.max.cpu (default))'),
    );
  });
});
