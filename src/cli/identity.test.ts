import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { makeTestPki } from '../../tests/helpers/pki.js';
import { ErrorCode, JobworkerError } from '../errors.js';
import { ConfigError, UsageError } from './failures.js';
import { checkValidity, loadCredentials, resolveTarget } from './identity.js';

let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'jobctl-identity-'));
  await makeTestPki(join(dir, 'certs'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('resolveTarget: every user name the server accepts is a --user, none that climbs out of --certs', () => {
  assert.equal(resolveTarget({ certs: '/c', user: '_svc.ci-1' }, {}).certFile, '/c/_svc.ci-1.crt');
  for (const user of ['..', '.hidden', 'a/b', ''])
    assert.throws(() => resolveTarget({ certs: '/c', user }, {}), UsageError, user);
});

test('resolveTarget: flags, then JOBCTL_* variables, then the development defaults', () => {
  const env = { HOME: '/home/u' };
  assert.deepEqual(resolveTarget({}, env), {
    server: 'localhost:50051',
    tlsServerName: undefined,
    certFile: '/home/u/.local/state/jobworker/dev/certs/alice.crt',
    keyFile: '/home/u/.local/state/jobworker/dev/certs/alice.key',
    caFile: '/home/u/.local/state/jobworker/dev/certs/ca.crt',
  });
  const fromEnv = {
    ...env,
    JOBCTL_SERVER: 'h:1',
    JOBCTL_CERTS: '/c',
    JOBCTL_USER: 'bob',
    JOBCTL_CA: '/ca.pem',
  };
  assert.deepEqual(resolveTarget({}, fromEnv), {
    server: 'h:1',
    tlsServerName: undefined,
    certFile: '/c/bob.crt',
    keyFile: '/c/bob.key',
    caFile: '/ca.pem',
  });
  // A flag beats the environment, including single-file variables.
  assert.deepEqual(
    resolveTarget({ server: '[::1]:2', user: 'admin', tlsServerName: 'jw' }, fromEnv),
    {
      server: '[::1]:2',
      tlsServerName: 'jw',
      certFile: '/c/admin.crt',
      keyFile: '/c/admin.key',
      caFile: '/c/ca.crt',
    },
  );
  assert.equal(resolveTarget({ cert: '/x.crt' }, fromEnv).certFile, '/x.crt');
  for (const server of ['nohost', 'h:0', 'h:70000', ':50051', 'a b:1']) {
    assert.throws(() => resolveTarget({ server }, env), UsageError, server);
  }
  assert.throws(() => resolveTarget({ user: '../etc/passwd' }, env), UsageError);
});

test('loadCredentials reads a valid identity and names a missing file', async () => {
  const certs = join(dir, 'certs');
  const target = resolveTarget({ certs, user: 'alice' }, {});
  const pem = await loadCredentials(target);
  assert.deepEqual(pem.cert, await readFile(join(certs, 'alice.crt')));
  await assert.rejects(
    loadCredentials(resolveTarget({ certs, user: 'nobody' }, {})),
    (err: unknown) => err instanceof ConfigError && err.message.includes(join(certs, 'nobody.crt')),
  );
});

test('checkValidity rejects expired and not-yet-valid certificates and non-certificates', async () => {
  const certs = join(dir, 'certs');
  const expired = join(certs, 'expired.crt');
  assert.throws(() => {
    checkValidity(expired, Buffer.from('x'), new Date());
  }, ConfigError);
  await assert.rejects(
    loadCredentials(resolveTarget({ certs, user: 'expired' }, {})),
    (err: unknown) =>
      err instanceof JobworkerError &&
      err.code === ErrorCode.Unauthenticated &&
      new RegExp(`^certificate ${expired} expired on \\d{4}-`).test(err.message),
  );
  await assert.rejects(
    loadCredentials(resolveTarget({ certs, user: 'notyet' }, {})),
    /is not valid before/,
  );
  const garbage = join(dir, 'garbage.crt');
  await writeFile(garbage, 'not a certificate');
  await assert.rejects(
    loadCredentials(resolveTarget({ certs, user: 'alice', cert: garbage }, {})),
    (err: unknown) =>
      err instanceof ConfigError && err.message.startsWith(`${garbage} is not a PEM certificate`),
  );
});
