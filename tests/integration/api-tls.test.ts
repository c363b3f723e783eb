/**
 * Transport security, checked from the client side against a real server:
 * every refusal of issue 5 section 2, the server's name check, and that the
 * server logs why a handshake was refused.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { credentials, status as Status, type ServiceError } from '@grpc/grpc-js';
import { createSecureContext } from 'node:tls';
import { createClient } from '../../src/api/index.js';
import { JobServiceClient } from '../../src/gen/jobworker/v1/job_service.js';
import type { TestClient } from '../helpers/pki.js';
import { rawIdentity, startTestServer, unary, type TestServer } from '../helpers/server.js';

const MISSING_JOB = 'aaaaaaaaaaaaaaaaaaaaaaaaaa';

async function getJobError(client: JobServiceClient): Promise<ServiceError> {
  try {
    await unary(client, 'getJob', { jobId: MISSING_JOB }, { deadlineMs: 20_000 });
  } catch (err) {
    return err as ServiceError;
  } finally {
    client.close();
  }
  return assert.fail('the call succeeded');
}

describe('mTLS', { timeout: 120_000 }, () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server.close();
  });

  const asUser = async (name: TestClient): Promise<ServiceError> =>
    getJobError(createClient(server.address, await rawIdentity(server.certsDir, name)));

  test('valid P-256 and Ed25519 client certificates are accepted', async () => {
    for (const name of ['alice', 'carol'] as const) {
      const err = await asUser(name);
      // Reached the handler: a missing job, not a transport failure.
      assert.equal(err.code, Status.NOT_FOUND, `${name}: ${err.details}`);
    }
  });

  const refused: [TestClient, string][] = [
    ['expired', 'CERT_HAS_EXPIRED'],
    ['notyet', 'CERT_NOT_YET_VALID'],
    ['otherca', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
    ['selfsigned', 'DEPTH_ZERO_SELF_SIGNED_CERT'],
    ['noclientauth', 'INVALID_PURPOSE'],
    ['noeku', 'clientAuth'],
  ];
  for (const [name, reason] of refused) {
    test(`a client certificate that is ${name} is refused at the handshake, and the server logs why`, async () => {
      const err = await asUser(name);
      assert.equal(err.code, Status.UNAVAILABLE, err.details);
      const logged = server
        .logLines()
        .filter((l) => String(l['msg']).startsWith('TLS client refused'))
        .map((l) => `${String(l['reason'])} ${String(l['msg'])}`);
      assert.ok(
        logged.some((l) => l.includes(reason)),
        `log mentions ${reason}: ${JSON.stringify(logged)}`,
      );
      const audited = (await server.auditLines()).filter((l) => l['method'] === 'tls-handshake');
      assert.ok(
        audited.some((l) => l['outcome'] === 'denied' && String(l['reason']).includes(reason)),
        `audit mentions ${reason}: ${JSON.stringify(audited)}`,
      );
    });
  }

  test('a client without a certificate is refused', async () => {
    const ca = await readFile(join(server.certsDir, 'ca.crt'));
    const client = new JobServiceClient(
      server.address,
      credentials.createFromSecureContext(createSecureContext({ ca, minVersion: 'TLSv1.3' })),
    );
    const err = await getJobError(client);
    assert.equal(err.code, Status.UNAVAILABLE, err.details);
  });

  test('an unknown role is PERMISSION_DENIED "unknown role"; a bad user name UNAUTHENTICATED', async () => {
    const role = await asUser('rootrole');
    assert.equal(role.code, Status.PERMISSION_DENIED);
    assert.match(role.details, /unknown role "root"/);
    const name = await asUser('badname');
    assert.equal(name.code, Status.UNAUTHENTICATED);
    const audit = await server.auditLines();
    assert.ok(audit.some((l) => l['outcome'] === 'denied' && l['code'] === 'permission_denied'));
  });

  test('a TLS 1.2 client is refused at the handshake and the server logs it', async () => {
    const id = await rawIdentity(server.certsDir, 'alice');
    const socket = tlsConnect({
      host: '127.0.0.1',
      port: server.port,
      servername: 'localhost',
      ...id,
      maxVersion: 'TLSv1.2',
      ALPNProtocols: ['h2'],
    });
    const [err] = (await once(socket, 'error').catch((e: unknown) => [e])) as [
      NodeJS.ErrnoException,
    ];
    socket.destroy();
    assert.match(String(err.code), /ALERT_PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL/);
    assert.ok(server.logLines().some((l) => l['msg'] === 'TLS handshake refused'));
    const audited = (await server.auditLines()).filter((l) => l['method'] === 'tls-handshake');
    assert.ok(
      audited.some((l) => /PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL/.test(String(l['reason']))),
      JSON.stringify(audited),
    );
  });

  test('a client verifies the server name: a name not in the certificate fails', async () => {
    const client = new JobServiceClient(
      `127.0.0.1:${server.port}`,
      credentials.createFromSecureContext(
        createSecureContext({ ...(await rawIdentity(server.certsDir, 'alice')) }),
      ),
      {
        'grpc.ssl_target_name_override': 'not-the-server.example',
        'grpc.default_authority': 'not-the-server.example',
      },
    );
    const err = await getJobError(client);
    assert.equal(err.code, Status.UNAVAILABLE);
  });

  test('the server is still serving after all of that', async () => {
    const err = await asUser('bob');
    assert.equal(err.code, Status.NOT_FOUND);
  });
});
