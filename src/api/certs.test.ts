import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { initCertsDir } from './cert-store.js';
import { Eku } from './certs.js';
import { loadIdentity } from './tls.js';

test('certs init writes a CA, a server and three clients; keys 0600; refuses to overwrite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'jobworker-certs-'));
  try {
    const written = await initCertsDir(dir);
    assert.equal(written.length, 10);
    for (const path of written.filter((p) => p.endsWith('.key'))) {
      assert.equal((await stat(path)).mode & 0o777, 0o600, path);
    }
    const server = new X509Certificate(await readFile(join(dir, 'server.crt')));
    assert.match(server.subjectAltName ?? '', /DNS:localhost/);
    assert.match(server.subjectAltName ?? '', /IP Address:127\.0\.0\.1/);
    assert.match(server.subjectAltName ?? '', /IP Address:0:0:0:0:0:0:0:1|IP Address:::1/);
    assert.deepEqual(server.keyUsage, [Eku.serverAuth]);
    for (const [name, role] of [
      ['alice', 'user'],
      ['bob', 'user'],
      ['admin', 'admin'],
    ] as const) {
      const cert = new X509Certificate(await readFile(join(dir, `${name}.crt`)));
      assert.equal(cert.subject, `CN=${name}\nOU=${role}`);
      assert.deepEqual(cert.keyUsage, [Eku.clientAuth]);
      assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
      // Short validity: at most 30 days from now.
      assert.ok(new Date(cert.validTo).getTime() - Date.now() <= 30 * 24 * 3600 * 1000);
      await loadIdentity(dir, name);
    }
    const before = await readFile(join(dir, 'ca.key'), 'utf8');
    await assert.rejects(initCertsDir(dir), /already exists; refusing to overwrite/);
    assert.equal(await readFile(join(dir, 'ca.key'), 'utf8'), before);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('loadIdentity names the file at fault', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'jobworker-certs-'));
  try {
    await assert.rejects(
      loadIdentity(dir, 'server'),
      /cannot read .*\/ca\.crt: ENOENT|cannot read .*server\.(crt|key): ENOENT/,
    );
    await initCertsDir(join(dir, 'a'));
    await initCertsDir(join(dir, 'b'));
    // A certificate and key of one set with the CA of another.
    const { copyFile } = await import('node:fs/promises');
    await copyFile(join(dir, 'b', 'ca.crt'), join(dir, 'a', 'ca.crt'));
    await assert.rejects(
      loadIdentity(join(dir, 'a'), 'server'),
      /server\.crt is not signed by .*ca\.crt/,
    );
    await copyFile(join(dir, 'b', 'server.key'), join(dir, 'a', 'server.key'));
    await assert.rejects(
      loadIdentity(join(dir, 'a'), 'server'),
      /server\.key does not match .*server\.crt/,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
