/**
 * Hostile clients before and just after the TLS handshake (issue 14,
 * point 2): silent TCP connections cannot keep a real client out, a
 * handshake has a deadline, and a TLS connection that never starts HTTP/2 or
 * makes no call is closed.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect as tlsConnect } from 'node:tls';
import { DEFAULT_CONNECTION_POLICY } from '../../src/api/index.js';
import { rawConnect } from '../helpers/h2-raw.js';
import {
  connect,
  rawIdentity,
  startTestServer,
  unary,
  type TestServer,
} from '../helpers/server.js';

/** Silent connections the attacker holds. */
const SILENT = 2000;
/** Loopback addresses they come from (all of 127/8 is loopback on Linux); the real client uses the first. */
const ADDRESSES = Array.from({ length: 10 }, (_, i) => `127.0.0.${String(i + 1)}`);
const HANDSHAKE_TIMEOUT_MS = 1500;
const IDLE_TIMEOUT_MS = 1000;

/** Opens a TCP connection from `localAddress` that never sends a byte; resolves once connected (or refused). */
async function silent(port: number, localAddress: string): Promise<Socket> {
  const socket = netConnect({ host: '127.0.0.1', port, localAddress });
  socket.on('error', () => undefined);
  socket.resume(); // reads, so that a close by the server is seen
  await Promise.race([once(socket, 'connect'), once(socket, 'close')]);
  return socket;
}

describe('handshake budgets and idle connections', { timeout: 120_000 }, () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      connections: { handshakeTimeoutMs: HANDSHAKE_TIMEOUT_MS, idleTimeoutMs: IDLE_TIMEOUT_MS },
    });
  });
  after(async () => {
    await server.close();
  });

  test(`${SILENT} silent TCP connections held: a real client still connects and calls`, async () => {
    const sockets: Socket[] = [];
    try {
      for (let i = 0; i < SILENT; i += 100) {
        sockets.push(
          ...(await Promise.all(
            Array.from({ length: 100 }, (_, j) =>
              silent(server.port, ADDRESSES[(i + j) % ADDRESSES.length] as string),
            ),
          )),
        );
      }
      const started = performance.now();
      const client = await connect(server.address, server.certsDir, 'alice');
      try {
        // A deadline of a few seconds, well below the handshake timeout the silent ones would take to expire.
        await unary(
          client,
          'listJobs',
          { pageSize: 1, pageToken: '', state: 0, owner: '' },
          { deadlineMs: 3000 },
        );
      } finally {
        client.close();
      }
      const ms = performance.now() - started;
      if (process.env['JOBWORKER_TEST_LOG'] !== undefined)
        process.stderr.write(`first call: ${ms.toFixed(0)} ms\n`);
      const { maxHandshaking } = DEFAULT_CONNECTION_POLICY;
      await sleep(200); // the last evictions reach the client sockets
      const open = sockets.filter((s) => !s.destroyed).length;
      assert.ok(open <= maxHandshaking, `at most ${maxHandshaking} held: ${open} still open`);
      assert.ok(server.connectionStats().handshake_evicted >= SILENT - maxHandshaking);
    } finally {
      for (const s of sockets) s.destroy();
    }
  });

  test('a handshake that does not finish in time is dropped, and counted', async () => {
    const before = server.connectionStats().handshake_timeout;
    const socket = await silent(server.port, '127.0.0.42');
    const started = Date.now();
    await once(socket, 'close');
    assert.ok(Date.now() - started < HANDSHAKE_TIMEOUT_MS + 2000);
    assert.equal(server.connectionStats().handshake_timeout, before + 1);
  });

  test('a TLS connection that never speaks HTTP/2 is closed', async () => {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port: server.port,
      servername: 'localhost',
      ...(await rawIdentity(server.certsDir, 'alice')),
      ALPNProtocols: ['h2'],
    });
    socket.on('error', () => undefined);
    await once(socket, 'secureConnect');
    socket.resume(); // reads (and drops) the server's SETTINGS, so that its close is seen
    await Promise.race([
      once(socket, 'close'),
      sleep(10_000).then(() => assert.fail('still open after 10 s')),
    ]);
  });

  test('a connection without calls is closed after the idle timeout, with GOAWAY', async () => {
    const connection = await rawConnect(server.port, await rawIdentity(server.certsDir, 'alice'));
    const peer = `127.0.0.1:${String(connection.socket.localPort)}`;
    await Promise.race([
      connection.closed,
      sleep(IDLE_TIMEOUT_MS + 5000).then(() => assert.fail('still open')),
    ]);
    assert.equal(connection.goawayCode(), 0);
    assert.ok(server.logLines().some((l) => l['reason'] === 'idle' && l['peer'] === peer));
  });
});

describe('connections per client identity', { timeout: 60_000 }, () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ connections: { maxConnectionsPerIdentity: 2 } });
  });
  after(async () => {
    await server.close();
  });

  test('one identity cannot hold every connection slot; another still connects', async () => {
    const alice = await rawIdentity(server.certsDir, 'alice');
    const before = server.connectionStats().identity_connection_limit;
    const held = [await rawConnect(server.port, alice), await rawConnect(server.port, alice)];
    const third = await rawConnect(server.port, alice);
    try {
      await third.closed;
      assert.equal(server.connectionStats().identity_connection_limit, before + 1);
      const bob = await connect(server.address, server.certsDir, 'bob');
      try {
        await unary(bob, 'listJobs', { pageSize: 1, pageToken: '', state: 0, owner: '' });
      } finally {
        bob.close();
      }
      assert.equal(server.connectionStats().identity_connection_limit, before + 1);
      // A slot given back is taken again.
      held[0]?.socket.destroy();
      await held[0]?.closed;
      await sleep(100);
      const again = await rawConnect(server.port, alice);
      held.push(again);
      await sleep(200);
      assert.equal(again.socket.destroyed, false, 'a freed slot is taken again');
    } finally {
      for (const c of held) c.socket.destroy();
    }
  });
});
