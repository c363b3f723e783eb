/**
 * `jobworkerd certs` end to end: the real command writes a CA kept apart, a
 * server certificate and user certificates; a real mTLS server on port 0
 * serves with them, and the real jobctl connects as each issued identity.
 * `jobworkerd dev` renews an expired development set.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { Eku, issue, loadCa } from '../../src/api/index.js';
import { requiresRoot } from '../helpers/guards.js';
import { jobctl } from '../helpers/jobctl.js';
import { jobworkerd, jobworkerdPath } from '../helpers/jobworkerd.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let root: string;
let certs: string;
let caDir: string;
let server: TestServer;

async function ok(args: string[]): Promise<string> {
  const r = await jobworkerd(args);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'jobworker-cli-certs-'));
  certs = join(root, 'etc', 'certs');
  caDir = join(root, 'ca');
  const where = ['--dir', certs, '--ca-dir', caDir];
  await ok(['certs', 'init', '--ca-only', '--days', '60', ...where]);
  await ok(['certs', 'issue', 'server', '--name', 'localhost', '--ip', '127.0.0.1', ...where]);
  await ok(['certs', 'issue', 'user', 'carol', '--role', 'user', ...where]);
  await ok(['certs', 'issue', 'user', 'ops', '--role', 'admin', '--key-type', 'ed25519', ...where]);
  server = await startTestServer({ certsDir: certs });
});
after(async () => {
  await server.close();
  await rm(root, { recursive: true, force: true });
});

const as = (user: string): string[] => [
  '--server',
  server.address,
  '--certs',
  certs,
  '--user',
  user,
];

describe('jobworkerd certs init, issue, show', { timeout: 120_000 }, () => {
  test('the CA key stays in --ca-dir; keys 0600, directories 0700', async () => {
    const mode = async (path: string): Promise<number> => (await stat(path)).mode & 0o777;
    assert.equal(await mode(caDir), 0o700);
    assert.equal(await mode(certs), 0o700);
    assert.equal(await mode(join(caDir, 'ca.key')), 0o600);
    for (const key of ['server.key', 'carol.key', 'ops.key'])
      assert.equal(await mode(join(certs, key)), 0o600);
    await assert.rejects(stat(join(certs, 'ca.key')), /ENOENT/);
  });

  test('a user issued for a new name is that identity; --role admin is an admin', async () => {
    const run = await jobctl([...as('carol'), 'run', '--', 'echo', 'hello']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.toString(), 'hello\n');
    const start = await jobctl([...as('ops'), 'start', '--', 'true']);
    assert.equal(start.code, 0, start.stderr);
    const opsJob = start.stdout.toString().trim();
    const all = await jobctl([...as('ops'), 'list', '--json']);
    assert.equal(all.code, 0, all.stderr);
    const owners = (JSON.parse(all.stdout.toString()) as { jobs: { owner: string }[] }).jobs.map(
      (j) => j.owner,
    );
    assert.deepEqual([...new Set(owners)].sort(), ['carol', 'ops']);
    // carol, a user, cannot see the admin's job: it looks missing.
    const hidden = await jobctl([...as('carol'), 'status', opsJob]);
    assert.equal(hidden.code, 66, hidden.stderr);
    assert.match(hidden.stderr, new RegExp(`job ${opsJob} not found`));
  });

  test('the server certificate is checked against the name dialed', async () => {
    const r = await jobctl([...as('carol'), '--tls-server-name', 'other.example', 'list']);
    assert.equal(r.code, 69, r.stderr);
    assert.match(r.stderr, /ERR_TLS_CERT_ALTNAME_INVALID/);
  });

  test('show prints the identity, names, key and fingerprint', async () => {
    const out = await ok(['certs', 'show', join(certs, 'ops.crt'), join(certs, 'server.crt')]);
    const ops = new X509Certificate(await readFile(join(certs, 'ops.crt')));
    assert.match(out, /^Subject: +CN=ops, OU=admin$/m);
    assert.match(out, /^Identity: +user ops, role admin$/m);
    assert.match(out, /^Key: +Ed25519$/m);
    assert.match(out, new RegExp(`^SHA-256: +${ops.fingerprint256}$`, 'm'));
    assert.match(out, /^Names: +DNS:localhost, IP Address:127\.0\.0\.1$/m);
    assert.match(out, /^Kind: +server \(serverAuth\)$/m);
  });

  test('bad values are refused naming the flag (64); existing files are kept without --force', async () => {
    const where = ['--dir', certs, '--ca-dir', caDir];
    const cases: [string[], RegExp][] = [
      [
        ['issue', 'user', 'Carol', '--role', 'user'],
        /user name "Carol" is not one the server accepts/,
      ],
      [['issue', 'user', 'dave', '--role', 'root'], /--role "root" is not user or admin/],
      [['issue', 'user', 'dave'], /--role is required/],
      [['issue', 'server', '--name', 'bad_name'], /--name "bad_name" is not a host name/],
      [
        ['issue', 'server', '--name', '10.0.0.1'],
        /--name "10\.0\.0\.1" is an address; pass it with --ip/,
      ],
      [
        ['issue', 'server', '--ip', '300.1.1.1'],
        /--ip "300\.1\.1\.1" is not an IPv4 or IPv6 address/,
      ],
      [['issue', 'server', '--ip', '::1', '--days', '1.5'], /--days "1\.5" is not a whole number/],
      [['issue', 'server'], /give at least one --name HOST or --ip ADDR/],
      [
        ['issue', 'user', 'dave', '--role', 'user', '--key-type', 'rsa'],
        /--key-type "rsa" is not p256 or ed25519/,
      ],
    ];
    for (const [args, message] of cases) {
      const r = await jobworkerd(['certs', ...args, ...where]);
      assert.equal(r.code, 64, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
    const before = await readFile(join(certs, 'carol.key'), 'utf8');
    const again = await jobworkerd([
      'certs',
      'issue',
      'user',
      'carol',
      '--role',
      'admin',
      ...where,
    ]);
    assert.notEqual(again.code, 0);
    assert.match(
      again.stderr,
      /carol\.crt already exists; refusing to overwrite it \(--force replaces it\)/,
    );
    assert.equal(await readFile(join(certs, 'carol.key'), 'utf8'), before);
  });
});

test('dev renews an expired development certificate, with a line saying so', async (t) => {
  const skip = requiresRoot();
  if (skip !== false) {
    t.skip(skip);
    return;
  }
  const home = await mkdtemp(join(tmpdir(), 'jobworker-dev-renew-'));
  try {
    const dir = join(home, 'state', 'jobworker', 'dev', 'certs');
    await mkdir(dir, { recursive: true });
    assert.equal((await jobworkerd(['certs', 'init', '--dir', dir])).code, 0);
    // The server certificate ended yesterday.
    const now = Date.now();
    const pair = await issue(await loadCa({ dir, caDir: dir }), {
      commonName: 'jobworkerd',
      eku: [Eku.serverAuth],
      dnsNames: ['localhost'],
      notBefore: new Date(now - 30 * 86_400_000),
      notAfter: new Date(now - 86_400_000),
    });
    await writeFile(join(dir, 'server.crt'), pair.cert);
    await writeFile(join(dir, 'server.key'), pair.key, { mode: 0o600 });
    // On port 0 (no port 50051 taken): dev renews, says so, serves; SIGTERM ends it.
    const dev = spawn(process.execPath, [jobworkerdPath, 'dev', '--listen', '127.0.0.1:0'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { PATH: process.env['PATH'], HOME: home, XDG_STATE_HOME: join(home, 'state') },
    });
    const exit = once(dev, 'exit') as Promise<[number | null, string | null]>;
    const said: string[] = [];
    for await (const line of createInterface({ input: dev.stderr })) {
      said.push(line);
      if (line.includes('"jobworkerd listening"')) break;
    }
    dev.stderr.resume();
    dev.kill('SIGTERM');
    assert.deepEqual(await exit, [0, null], said.join('\n'));
    assert.ok(
      said.some((line) =>
        /^jobworkerd: renewed development certificate .*\/server\.crt \(expired on \S+\)$/.test(
          line,
        ),
      ),
      said.join('\n'),
    );
    assert.ok(
      said.some((line) => line.includes('"jobworkerd listening"')),
      said.join('\n'),
    );
    const renewed = new X509Certificate(await readFile(join(dir, 'server.crt')));
    assert.ok(new Date(renewed.validTo).getTime() > now + 29 * 86_400_000);
    assert.ok(renewed.checkIssued(new X509Certificate(await readFile(join(dir, 'ca.crt')))));
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});
