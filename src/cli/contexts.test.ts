import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  configPath,
  MAX_FLEET_CONTEXTS,
  readContextsFile,
  resolveTargets,
  writeContextsFile,
} from './contexts.js';
import { ConfigError, UsageError } from './failures.js';

let dir: string;
let file: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'jobctl-contexts-'));
  file = join(dir, 'conf', 'config');
  await mkdir(join(dir, 'conf'));
  await writeFile(
    file,
    [
      'current-context = "cur"',
      '[contexts.cur]',
      'server = "cur:1"',
      'certs = "rel/certs"',
      'user = "bob"',
      '[contexts.files]',
      'server = "files:1"',
      'tls-server-name = "files.example"',
      'cert = "/abs/c.crt"',
      'key = "k.key"',
      'ca = "/abs/ca.crt"',
      'labels = { env = "prod" }',
    ].join('\n'),
  );
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('configPath: --config, JOBCTL_CONFIG, XDG_CONFIG_HOME (absolute only), ~/.config', () => {
  assert.equal(configPath({ config: '/f' }, { JOBCTL_CONFIG: '/e' }), '/f');
  assert.equal(configPath({}, { JOBCTL_CONFIG: '/e' }), '/e');
  assert.equal(configPath({}, { XDG_CONFIG_HOME: '/x', HOME: '/h' }), '/x/jobworker/config');
  assert.equal(
    configPath({}, { XDG_CONFIG_HOME: 'rel', HOME: '/h' }),
    '/h/.config/jobworker/config',
  );
});

test("the current context: under the JOBCTL_* variables and flags; relative paths are the file's", async () => {
  const env = { JOBCTL_CONFIG: file, HOME: '/h' };
  const [cur] = await resolveTargets('x', {}, env, false);
  assert.deepEqual(cur, {
    name: 'cur',
    target: {
      server: 'cur:1',
      tlsServerName: undefined,
      certFile: join(dir, 'conf/rel/certs/bob.crt'),
      keyFile: join(dir, 'conf/rel/certs/bob.key'),
      caFile: join(dir, 'conf/rel/certs/ca.crt'),
    },
  });
  const [overridden] = await resolveTargets(
    'x',
    { user: 'carol' },
    { ...env, JOBCTL_SERVER: 'env:2' },
    false,
  );
  assert.ok(overridden !== undefined);
  assert.equal(overridden.target.server, 'env:2');
  assert.equal(overridden.target.certFile, join(dir, 'conf/rel/certs/carol.crt'));
});

test('a named context: over the JOBCTL_* variables, under flags; --certs hides its files', async () => {
  const env = { JOBCTL_CONFIG: file, HOME: '/h', JOBCTL_SERVER: 'env:2', JOBCTL_CERT: '/env.crt' };
  const [named] = await resolveTargets('x', { context: 'files' }, env, false);
  assert.deepEqual(named?.target, {
    server: 'files:1',
    tlsServerName: 'files.example',
    certFile: '/abs/c.crt',
    keyFile: join(dir, 'conf/k.key'),
    caFile: '/abs/ca.crt',
  });
  const [flagged] = await resolveTargets(
    'x',
    { context: 'files', certs: '/d', user: 'u' },
    env,
    false,
  );
  assert.deepEqual(flagged?.target, {
    server: 'files:1',
    tlsServerName: 'files.example',
    certFile: '/d/u.crt',
    keyFile: '/d/u.key',
    caFile: '/d/ca.crt',
  });
  const [fromEnv] = await resolveTargets('x', {}, { ...env, JOBCTL_CONTEXT: 'files' }, false);
  assert.equal(fromEnv?.name, 'files');
});

test('several contexts: only where taken, no duplicates, no --server, at most the bound', async () => {
  const env = { JOBCTL_CONFIG: file };
  const both = await resolveTargets('run', { context: 'cur,files' }, env, true);
  assert.deepEqual(
    both.map((t) => t.name),
    ['cur', 'files'],
  );
  await assert.rejects(resolveTargets('list', { context: 'cur,files' }, env, false), UsageError);
  await assert.rejects(resolveTargets('run', { context: 'cur,cur' }, env, true), /names cur twice/);
  await assert.rejects(resolveTargets('run', { context: 'cur,nope' }, env, true), ConfigError);
  await assert.rejects(resolveTargets('run', { context: 'a b' }, env, true), UsageError);
  await assert.rejects(
    resolveTargets('run', { context: 'cur,files', server: 'h:1' }, env, true),
    /--server cannot apply to 2 contexts/,
  );
  await assert.rejects(
    resolveTargets('run', { context: 'cur', contextSelector: 'env=prod' }, env, true),
    /exclude each other/,
  );
  const selected = await resolveTargets('run', { contextSelector: 'env in (prod)' }, env, true);
  assert.deepEqual(
    selected.map((t) => t.name),
    ['files'],
  );
  await assert.rejects(
    resolveTargets('run', { contextSelector: 'env in (' }, env, true),
    UsageError,
  );
  const many = join(dir, 'many');
  const names = Array.from({ length: MAX_FLEET_CONTEXTS + 1 }, (_, i) => `h${i}`);
  await writeContextsFile({
    path: many,
    data: { contexts: Object.fromEntries(names.map((n) => [n, { server: `${n}:1` }])) },
  });
  await assert.rejects(
    resolveTargets('run', { context: names.join(','), config: many }, {}, true),
    new RegExp(`${MAX_FLEET_CONTEXTS + 1} contexts are more than ${MAX_FLEET_CONTEXTS}`),
  );
});

test('writeContextsFile: mode 0600, no temporary file left, read back the same', async () => {
  const path = join(dir, 'new', 'sub', 'config');
  const data = {
    'current-context': 'a',
    contexts: { a: { server: 'a:1', labels: { env: 'prod' } } },
  };
  await writeContextsFile({ path, data });
  assert.equal((await stat(path)).mode & 0o777, 0o600);
  assert.equal((await stat(join(dir, 'new', 'sub'))).mode & 0o777, 0o700);
  assert.deepEqual(await readdir(join(dir, 'new', 'sub')), ['config']);
  assert.deepEqual((await readContextsFile(path)).data, data);
  assert.match(await readFile(path, 'utf8'), /^# jobctl contexts/);
  // A missing file is an empty one.
  assert.deepEqual((await readContextsFile(join(dir, 'absent'))).data, { contexts: {} });
});
