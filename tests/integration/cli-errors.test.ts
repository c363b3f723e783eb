/**
 * jobctl's failures end to end: each is one line on stderr with its own
 * message and documented exit status, never a stack trace.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { jobctl, type JobctlResult } from '../helpers/jobctl.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;

before(async () => {
  server = await startTestServer();
});
after(async () => {
  await server.close();
});

function as(user: string): string[] {
  return ['--server', server.address, '--certs', server.certsDir, '--user', user];
}

/** Asserts the documented shape of a failure: the exit status and exactly one `jobctl: ...` line. */
function assertFailure(r: JobctlResult, code: number, message: RegExp): void {
  assert.equal(r.code, code, `exit status; stderr: ${r.stderr}`);
  assert.match(r.stderr, /^jobctl: [^\n]+\n$/, 'exactly one line on stderr');
  assert.match(r.stderr, message);
  assert.doesNotMatch(r.stderr, /\bat .*\.js:\d+/, 'no stack trace');
  assert.equal(r.stdout.length, 0);
}

/** A loopback port with nothing listening: bound, then released. */
async function closedPort(): Promise<number> {
  const probe = createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as AddressInfo;
  probe.close();
  await once(probe, 'close');
  return port;
}

describe('jobctl failures', { timeout: 120_000 }, () => {
  test('server down: connection refused, 69', async () => {
    const port = await closedPort();
    const r = await jobctl(['--server', `localhost:${port}`, '--certs', server.certsDir, 'list']);
    assertFailure(
      r,
      69,
      new RegExp(
        `cannot reach jobworkerd at localhost:${port}: connection refused; is it running\\?`,
      ),
    );
  });

  test('a certificate from another CA: the handshake is refused, 69', async () => {
    const r = await jobctl([...as('otherca'), 'list']);
    assertFailure(
      r,
      69,
      /refused the TLS handshake: it does not accept the certificate .*otherca\.crt/,
    );
  });

  test('an expired certificate is caught before dialing, 77', async () => {
    const r = await jobctl([...as('expired'), 'list']);
    assertFailure(r, 77, /certificate .*expired\.crt expired on \d{4}-\d\d-\d\dT/);
  });

  test('a server certificate we cannot verify, 69', async () => {
    // Trusting another CA than the one that signed the server's certificate.
    const r = await jobctl([...as('alice'), '--ca', join(server.certsDir, 'otherca.crt'), 'list']);
    assertFailure(r, 69, /cannot verify the certificate of jobworkerd at .*; check --ca/);
  });

  test('--tls-server-name: the server certificate is verified against the name given', async () => {
    const ip = ['--server', `127.0.0.1:${server.port}`, '--certs', server.certsDir];
    const ok = await jobctl([...ip, '--tls-server-name', 'localhost', 'list', '-q']);
    assert.equal(ok.code, 0, ok.stderr);
    const direct = await jobctl([...ip, 'list', '-q']);
    assert.equal(direct.code, 0, direct.stderr);
    assert.equal(direct.stderr, '', 'no DEP0123 warning for an IP address');
    const wrong = await jobctl([...ip, '--tls-server-name', 'wrong.example', 'list']);
    assertFailure(
      wrong,
      69,
      /cannot verify the certificate of jobworkerd at 127\.0\.0\.1:\d+: .*wrong\.example/,
    );
  });

  test('a missing certificate file is named, 78', async () => {
    const r = await jobctl([
      '--server',
      server.address,
      '--certs',
      '/nonexistent/certs',
      '--user',
      'alice',
      'list',
    ]);
    assertFailure(r, 78, /certificate \/nonexistent\/certs\/alice\.crt does not exist/);
  });

  test('connection settings come from JOBCTL_* variables; flags beat them', async () => {
    const env = {
      JOBCTL_SERVER: server.address,
      JOBCTL_CERTS: server.certsDir,
      JOBCTL_USER: 'bob',
    };
    const ok = await jobctl(['list', '-q'], { env });
    assert.equal(ok.code, 0, ok.stderr);
    const expired = await jobctl(['--user', 'expired', 'list'], { env });
    assertFailure(expired, 77, /expired\.crt expired/);
  });

  test("another user's job is not found, 66; an unknown id too", async () => {
    const started = await jobctl([...as('alice'), 'start', 'true']);
    const id = started.stdout.toString().trim();
    assertFailure(await jobctl([...as('bob'), 'status', id]), 66, new RegExp(id));
    assertFailure(
      await jobctl([...as('alice'), 'logs', 'aaaaaaaaaaaaaaaaaaaaaaaaaa']),
      66,
      /aaaaaaaaaaaaaaaaaaaaaaaaaa/,
    );
    const admin = await jobctl([...as('admin'), 'status', id]);
    assert.equal(admin.code, 0, admin.stderr);
  });

  test('a tail above the server maximum is refused by the server, naming the field, 65', async () => {
    const started = await jobctl([...as('alice'), 'start', 'true']);
    const id = started.stdout.toString().trim();
    assertFailure(
      await jobctl([...as('alice'), 'logs', '--tail', '100001', id]),
      65,
      /tail_lines 100001 exceeds the maximum of 100000/,
    );
  });

  test('host network is for admins only: permission denied, 77', async () => {
    const r = await jobctl([...as('alice'), 'start', '--network', 'host', 'true']);
    assertFailure(r, 77, /^jobctl: permission denied: /);
  });

  test('limits outside the server range are refused, not clamped: invalid argument, 65', async () => {
    const cases: [string[], RegExp][] = [
      [['--cpu', '100'], /limits\.cpu_millis: 100000 is above the maximum \d+/],
      [['--memory', '1T'], /limits\.memory_bytes: 1099511627776 is above the maximum \d+/],
      [['--pids', '2'], /limits\.pids_max: 2 is below the minimum 3/],
    ];
    for (const [flags, message] of cases) {
      const r = await jobctl([...as('alice'), 'start', ...flags, 'true']);
      assertFailure(r, 65, message);
    }
  });

  test('bad flags and arguments are usage errors, 64, naming the flag and value', async () => {
    const cases: [string[], RegExp][] = [
      [[], /missing command/],
      [['frobnicate'], /unknown command "frobnicate"/],
      [['status'], /missing job id/],
      [['status', 'a', 'b'], /unexpected argument "b"/],
      [['list', '--bogus'], /unknown flag '--bogus'/],
      [['run', '--memory', '12Q', 'true'], /--memory "12Q" is not a size/],
      [['run', '--memory', '256', 'true'], /--memory "256" has no unit; say 256M/],
      [['run', '--cpu', 'lots', 'true'], /--cpu "lots" is not a CPU amount/],
      [['start', '--pids', '0', 'true'], /--pids "0" must be a whole number/],
      [['start', '--env', 'NOEQUALS', 'true'], /--env "NOEQUALS" is not NAME=VALUE/],
      [['start', '--cwd', 'relative', 'true'], /--cwd "relative" must be an absolute path/],
      [['start', '--network', 'bridge', 'true'], /--network "bridge"/],
      [['run'], /missing the command to run/],
      [['stop', '--grace', '10', 'x'], /--grace "10" is not a duration/],
      [['stop', '--grace', '1h', 'x'], /--grace "1h" is longer than/],
      [['logs', '--stdout', '--stderr', 'x'], /exclude each other/],
      [['logs', '--tail', 'ten', 'x'], /--tail "ten" is not a number of lines/],
      [['logs', '--since', '10x', 'x'], /--since "10x" is neither a duration/],
      [['list', '--state', 'done'], /--state "done" is not a state/],
      [['--server', 'nocolon', 'list'], /--server "nocolon" is not HOST:PORT/],
      [['status', '--server'], /--server/],
    ];
    for (const [args, message] of cases) {
      assertFailure(await jobctl(args), 64, message);
    }
  });
});
