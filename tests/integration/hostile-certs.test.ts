/**
 * A client certificate is not only checked at the handshake (issue 14,
 * point 5): a connection ends by its certificate's notAfter, its calls with
 * a clear status; every connection ends by a maximum age; TLS sessions are
 * not resumed (a resumed session would skip the certificate checks).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { status as Status, type ServiceError } from '@grpc/grpc-js';
import { issueTestClient } from '../helpers/pki.js';
import {
  connect,
  rawIdentity,
  readStream,
  startTestServer,
  unary,
  type TestServer,
} from '../helpers/server.js';

const DRAIN_GRACE_MS = 1000;
const MAX_AGE_MS = 4000;

const sleeper = {
  command: ['sleep', '600'],
  env: [],
  workingDir: '',
  hostNetwork: false,
};

describe('certificate lifetime, connection age, resumption', { timeout: 120_000 }, () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      connections: { drainGraceMs: DRAIN_GRACE_MS, maxAgeMs: MAX_AGE_MS },
    });
  });
  after(async () => {
    await server.close();
  });

  test('a connection ends by its client certificate notAfter; a following call gets UNAVAILABLE naming it', async () => {
    // X.509 times have whole seconds: the certificate ends 2 to 3 s from now.
    const notAfter = new Date(Math.ceil(Date.now() / 1000) * 1000 + 2000);
    await issueTestClient(server.certsDir, 'dave', {
      commonName: 'dave',
      role: 'user',
      notBefore: new Date(Date.now() - 60_000),
      notAfter,
    });
    const client = await connect(server.address, server.certsDir, 'dave');
    try {
      const job = (await unary(client, 'startJob', sleeper)).job ?? assert.fail('no job');
      const followed = await readStream(
        client,
        { jobId: job.id, follow: true },
        { deadlineMs: 30_000 },
      );
      const ended = Date.now();
      assert.equal(followed.error?.code, Status.UNAVAILABLE, followed.error?.details);
      assert.match(followed.error.details, /client certificate expires at/);
      // notAfter is inclusive to the second; the status goes out by then (and a flush).
      assert.ok(
        ended <= notAfter.getTime() + 1000 + 500,
        `ended ${ended - notAfter.getTime()} ms after notAfter`,
      );
      assert.ok(
        server.logLines().some((l) => l['reason'] === 'certificate_expiry'),
        'the close is logged with its reason',
      );
      // The expired certificate is refused from now on.
      await assert.rejects(
        unary(client, 'getJob', { jobId: job.id }, { deadlineMs: 5000 }),
        (err: ServiceError) => err.code === Status.UNAVAILABLE,
      );
      const admin = await connect(server.address, server.certsDir, 'admin');
      await unary(admin, 'stopJob', { jobId: job.id, gracePeriod: { seconds: 1, nanos: 0 } });
      admin.close();
    } finally {
      client.close();
    }
  });

  test('a connection is drained at its maximum age: calls in flight finish, the client reconnects', async () => {
    const before = server.connectionStats().max_age;
    const client = await connect(server.address, server.certsDir, 'alice');
    try {
      const until = Date.now() + MAX_AGE_MS + 2000;
      let calls = 0;
      // Calls back to back across the age limit: none fails, the channel moves to a new connection.
      while (Date.now() < until) {
        await unary(
          client,
          'listJobs',
          { pageSize: 1, pageToken: '', state: 0, owner: '' },
          { deadlineMs: 5000 },
        );
        calls++;
        await sleep(20);
      }
      assert.ok(calls > 10);
      assert.ok(server.connectionStats().max_age > before, 'a connection was drained for its age');
    } finally {
      client.close();
    }
  });

  test('TLS sessions are not resumed', async () => {
    const identity = await rawIdentity(server.certsDir, 'alice');
    const open = (session?: Buffer): TLSSocket =>
      tlsConnect({
        host: '127.0.0.1',
        port: server.port,
        servername: 'localhost',
        ...identity,
        ALPNProtocols: ['h2'],
        ...(session === undefined ? {} : { session }),
      });
    const first = open();
    first.on('error', () => undefined);
    // TLS 1.3 sends its tickets after the handshake: wait for one.
    const [ticket] = (await once(first, 'session')) as [Buffer];
    first.destroy();
    const second = open(ticket);
    second.on('error', () => undefined);
    await once(second, 'secureConnect');
    assert.equal(second.isSessionReused(), false);
    second.destroy();
  });
});
