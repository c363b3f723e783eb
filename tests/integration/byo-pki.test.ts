/**
 * The README's "bring your own PKI" recipe, its shell block run as written
 * with the openssl CLI: a P-256 CA, a server certificate (serverAuth, SANs)
 * and an Ed25519 user (CN = name, OU = role, clientAuth); then, the same way,
 * a P-256 admin and a certificate with the wrong EKU. A real mTLS server on port 0 serves with
 * them and the real jobctl connects; the wrong EKU is refused.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { requiresExecutable } from '../helpers/guards.js';
import { jobctl } from '../helpers/jobctl.js';
import { jobworkerd } from '../helpers/jobworkerd.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const run = promisify(execFile);
const skip = await requiresExecutable('/usr/bin/openssl');

let dir: string;
let server: TestServer;

/** `openssl ARGS` in `dir`. */
async function openssl(...args: string[]): Promise<void> {
  await run('/usr/bin/openssl', args, { cwd: dir, timeout: 60_000 });
}

/** The README's leaf step: a key of `keyType`, a CSR with `subject`, signed by the CA with `ext`. */
async function leaf(name: string, keyType: string[], subject: string, ext: string): Promise<void> {
  await writeFile(join(dir, `${name}.ext`), ext);
  await openssl(
    'req',
    '-new',
    ...keyType,
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
    '-subj',
    subject,
  );
  await openssl(
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-days',
    '30',
    '-extfile',
    `${name}.ext`,
    '-out',
    `${name}.crt`,
  );
}

const P256 = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
const CLIENT_EXT =
  'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n';

/** The shell block of the README's "Bring your own PKI" section, as written there. */
async function readmeRecipe(): Promise<string> {
  const readme = await readFile(
    fileURLToPath(new URL('../../../README.md', import.meta.url)),
    'utf8',
  );
  const section = readme.slice(readme.indexOf('### Bring your own PKI'));
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(block !== undefined && block.includes('openssl'), 'the README has the openssl recipe');
  return block;
}

before(async () => {
  if (skip !== false) return;
  dir = await mkdtemp(join(tmpdir(), 'jobworker-byo-pki-'));
  // ca.*, server.* (localhost, 127.0.0.1) and dave.* (Ed25519, OU=user), by the README's commands.
  await run('bash', ['-euo', 'pipefail', '-c', await readmeRecipe()], {
    cwd: dir,
    timeout: 120_000,
  });
  // Two more in the same way: an admin with a P-256 key, and a certificate with the wrong EKU.
  await leaf('erin', P256, '/CN=erin/OU=admin', CLIENT_EXT);
  await leaf(
    'wrongeku',
    P256,
    '/CN=wrongeku/OU=user',
    CLIENT_EXT.replace('clientAuth', 'serverAuth'),
  );
  server = await startTestServer({ certsDir: dir });
});
after(async () => {
  if (skip !== false) return;
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

const as = (user: string): string[] => ['--server', server.address, '--certs', dir, '--user', user];

describe('bring your own PKI with openssl', { skip, timeout: 120_000 }, () => {
  test('users made by openssl connect as themselves; the role comes from OU', async () => {
    const r = await jobctl([...as('dave'), 'run', '--', 'echo', 'from dave']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'from dave\n');
    const list = await jobctl([...as('erin'), 'list', '--json']);
    assert.equal(list.code, 0, list.stderr);
    const jobs = (JSON.parse(list.stdout.toString()) as { jobs: { owner: string }[] }).jobs;
    assert.ok(
      jobs.some((j) => j.owner === 'dave'),
      'erin, an admin, sees dave’s job',
    );
    const show = await jobworkerd(['certs', 'show', join(dir, 'dave.crt')]);
    assert.match(show.stdout, /^Identity: +user dave, role user$/m);
    assert.match(show.stdout, /^Key: +Ed25519$/m);
  });

  test('a certificate without the clientAuth EKU is refused at the handshake', async () => {
    const r = await jobctl([...as('wrongeku'), 'list']);
    assert.equal(r.code, 69, r.stderr);
    assert.match(
      r.stderr,
      /refused the TLS handshake: it does not accept the certificate .*wrongeku\.crt/,
    );
    // OpenSSL's own purpose check refuses an EKU without clientAuth (tls.ts refuses a missing one).
    const refusals = server
      .logLines()
      .filter((l) => l['reason'] === 'client certificate not verified: INVALID_PURPOSE');
    assert.ok(refusals.length > 0, JSON.stringify(server.logLines().slice(-5)));
    const show = await jobworkerd(['certs', 'show', join(dir, 'wrongeku.crt')]);
    assert.match(show.stdout, /^Identity: +not accepted as a client: .*lacks the clientAuth/m);
  });
});
