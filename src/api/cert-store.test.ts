import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { access, chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { initCertsDir, initPki, issueServerFiles, issueUserFiles, loadCa } from './cert-store.js';
import { Eku, issue } from './certs.js';
import { prepareDevCerts } from './dev-certs.js';
import { loadIdentity } from './tls.js';

const DAY_MS = 24 * 60 * 60 * 1000;

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'jobworker-cert-store-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const modeOf = async (path: string): Promise<number> => (await stat(path)).mode & 0o777;
const certOf = async (path: string): Promise<X509Certificate> =>
  new X509Certificate(await readFile(path));
const missing = (path: string): Promise<boolean> =>
  access(path).then(
    () => false,
    () => true,
  );

test('init --ca-only with --ca-dir: the CA key only in the CA directory, 0600; directories 0700', () =>
  withDir(async (root) => {
    const dirs = { dir: join(root, 'etc', 'certs'), caDir: join(root, 'ca') };
    const written = await initPki({ ...dirs, days: 365, caOnly: true, caName: 'jobworker CA' });
    assert.deepEqual(written.sort(), [
      join(dirs.caDir, 'ca.crt'),
      join(dirs.caDir, 'ca.key'),
      join(dirs.dir, 'ca.crt'),
    ]);
    assert.equal(await modeOf(dirs.dir), 0o700);
    assert.equal(await modeOf(join(root, 'etc')), 0o700);
    assert.equal(await modeOf(dirs.caDir), 0o700);
    assert.equal(await modeOf(join(dirs.caDir, 'ca.key')), 0o600);
    assert.equal(await modeOf(join(dirs.dir, 'ca.crt')), 0o644);
    assert.ok(await missing(join(dirs.dir, 'ca.key')), 'no CA key beside the server');
    assert.ok(await missing(join(dirs.dir, 'server.crt')), '--ca-only makes no server');
    const ca = await certOf(join(dirs.dir, 'ca.crt'));
    assert.equal(ca.subject, 'CN=jobworker CA');
    assert.ok(ca.ca);
    const days = (new Date(ca.validTo).getTime() - Date.now()) / DAY_MS;
    assert.ok(days > 364 && days <= 365, String(days));
  }));

test('issue server and user from a CA kept apart: names, roles, modes, and a matching chain', () =>
  withDir(async (root) => {
    const dirs = { dir: join(root, 'certs'), caDir: join(root, 'ca') };
    await initPki({ ...dirs, days: 365, caOnly: true });
    await issueServerFiles(
      { dnsNames: ['jobs.example.com', 'localhost'], ipAddresses: ['10.1.2.3', '::1'] },
      { ...dirs, days: 90 },
    );
    await issueUserFiles('carol', 'admin', { ...dirs, days: 7, keyAlgorithm: 'ed25519' });
    const server = await certOf(join(dirs.dir, 'server.crt'));
    assert.equal(
      server.subjectAltName,
      'DNS:jobs.example.com, DNS:localhost, IP Address:10.1.2.3, IP Address:0:0:0:0:0:0:0:1',
    );
    assert.deepEqual(server.keyUsage, [Eku.serverAuth]);
    const carol = await certOf(join(dirs.dir, 'carol.crt'));
    assert.equal(carol.subject, 'CN=carol\nOU=admin');
    assert.deepEqual(carol.keyUsage, [Eku.clientAuth]);
    assert.equal(carol.publicKey.asymmetricKeyType, 'ed25519');
    const days = (new Date(carol.validTo).getTime() - Date.now()) / DAY_MS;
    assert.ok(days > 6.9 && days <= 7, String(days));
    for (const key of ['server.key', 'carol.key'])
      assert.equal(await modeOf(join(dirs.dir, key)), 0o600);
    // Each verifies against the ca.crt of the certificate directory, with its key.
    await loadIdentity(dirs.dir, 'server');
    await loadIdentity(dirs.dir, 'carol');
  }));

test('issue refuses to overwrite without force, replaces with it, and writes ca.crt to a new directory', () =>
  withDir(async (root) => {
    const caDir = join(root, 'ca');
    await initPki({ dir: caDir, caDir, days: 30, caOnly: true });
    const dirs = { dir: join(root, 'carol'), caDir };
    await issueUserFiles('carol', 'user', { ...dirs, days: 5 });
    assert.equal(
      await readFile(join(dirs.dir, 'ca.crt'), 'utf8'),
      await readFile(join(caDir, 'ca.crt'), 'utf8'),
    );
    const before = await readFile(join(dirs.dir, 'carol.key'), 'utf8');
    await assert.rejects(
      issueUserFiles('carol', 'user', { ...dirs, days: 5 }),
      /carol\.crt already exists; refusing to overwrite it \(--force replaces it\)/,
    );
    assert.equal(await readFile(join(dirs.dir, 'carol.key'), 'utf8'), before);
    await issueUserFiles('carol', 'admin', { ...dirs, days: 5, force: true });
    assert.notEqual(await readFile(join(dirs.dir, 'carol.key'), 'utf8'), before);
    assert.equal(await modeOf(join(dirs.dir, 'carol.key')), 0o600);
    assert.equal((await certOf(join(dirs.dir, 'carol.crt'))).subject, 'CN=carol\nOU=admin');
    // Beyond the CA's end: refused, naming the flag.
    await assert.rejects(
      issueUserFiles('dave', 'user', { ...dirs, days: 31 }),
      /--days 31 would end on .*, after the CA .*ca\.crt expires/,
    );
  }));

test('issue refuses a CA key others can read, and a directory trusting another CA', () =>
  withDir(async (root) => {
    const caDir = join(root, 'ca');
    await initPki({ dir: caDir, caDir, days: 30, caOnly: true });
    await chmod(join(caDir, 'ca.key'), 0o640);
    await assert.rejects(
      issueUserFiles('carol', 'user', { dir: join(root, 'c'), caDir, days: 1 }),
      /ca\.key has mode 0640: the CA key must be readable by its owner only \(fix: chmod 600 /,
    );
    await chmod(join(caDir, 'ca.key'), 0o600);
    const other = join(root, 'other');
    await initCertsDir(other);
    await assert.rejects(
      issueUserFiles('carol', 'user', { dir: other, caDir, days: 1 }),
      /other\/ca\.crt is not the CA certificate of .*ca\/ca\.crt/,
    );
    assert.ok(await missing(join(other, 'carol.crt')));
  }));

/** Replaces `<dir>/<name>.crt|key` with one from the set's CA that ended yesterday. */
async function expire(dir: string, name: string, role?: string): Promise<void> {
  const now = Date.now();
  const pair = await issue(await loadCa({ dir, caDir: dir }), {
    commonName: name === 'server' ? 'jobworkerd' : name,
    ...(role === undefined ? { eku: [Eku.serverAuth], dnsNames: ['localhost'] } : { role }),
    notBefore: new Date(now - 31 * DAY_MS),
    notAfter: new Date(now - DAY_MS),
  });
  await writeFile(join(dir, `${name}.crt`), pair.cert);
  await writeFile(join(dir, `${name}.key`), pair.key, { mode: 0o600 });
}

test('dev: renews expired development certificates and says so; leaves valid ones', () =>
  withDir(async (root) => {
    const dir = join(root, 'certs');
    assert.deepEqual(await prepareDevCerts(dir), { created: true, renewed: [] });
    assert.deepEqual(await prepareDevCerts(dir), { created: false, renewed: [] });
    await expire(dir, 'server');
    await expire(dir, 'alice', 'user');
    await assert.rejects(loadIdentity(dir, 'server'), /server\.crt expired on/);
    const bob = await readFile(join(dir, 'bob.crt'), 'utf8');
    const ca = await readFile(join(dir, 'ca.crt'), 'utf8');
    const { created, renewed } = await prepareDevCerts(dir);
    assert.equal(created, false);
    assert.equal(renewed.length, 2);
    assert.match(
      renewed[0] ?? '',
      /^renewed development certificate .*\/server\.crt \(expired on /,
    );
    assert.match(renewed[1] ?? '', /^renewed development certificate .*\/alice\.crt \(expired on /);
    await loadIdentity(dir, 'server');
    await loadIdentity(dir, 'alice');
    assert.equal((await certOf(join(dir, 'alice.crt'))).subject, 'CN=alice\nOU=user');
    assert.equal(await readFile(join(dir, 'bob.crt'), 'utf8'), bob);
    assert.equal(await readFile(join(dir, 'ca.crt'), 'utf8'), ca);
    assert.equal(await modeOf(join(dir, 'alice.key')), 0o600);
  }));

test('dev: a CA that ends within a day is made anew with the whole set', () =>
  withDir(async (root) => {
    const dir = join(root, 'certs');
    await initPki({ dir, caDir: dir, days: 1 });
    const old = await readFile(join(dir, 'ca.crt'), 'utf8');
    const { renewed } = await prepareDevCerts(dir);
    assert.equal(renewed.length, 1);
    assert.match(
      renewed[0] ?? '',
      /^development CA .*ca\.crt expires on .*: made a new CA and renewed server, alice, bob, admin \(certificates issued from the old CA stop working\)$/,
    );
    assert.notEqual(await readFile(join(dir, 'ca.crt'), 'utf8'), old);
    for (const name of ['server', 'alice', 'bob', 'admin']) await loadIdentity(dir, name);
  }));
