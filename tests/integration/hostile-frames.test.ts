/**
 * Hostile clients at the HTTP/2 level (issue 14, point 1), with a raw
 * TLS + HTTP/2 client: a connection that breaks the protocol, sends GOAWAY
 * or goes silent is closed by the server within a bound, its file
 * descriptor given back, with a log line and a counter for the reason.
 */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { BAD_FRAMES, FrameType, frame, rawConnect, type RawConnection } from '../helpers/h2-raw.js';
import {
  connect,
  rawIdentity,
  startTestServer,
  unary,
  type TestServer,
} from '../helpers/server.js';

/** Keepalive of the test server: a broken session is found within about their sum. */
const KEEPALIVE_MS = 300;
const KEEPALIVE_TIMEOUT_MS = 300;
/** How long a test waits for the server to close a connection (the bound, with room for a loaded machine). */
const CLOSE_BOUND_MS = 5000;

/** Resolves when `connection` has been closed by the server; fails after `ms`. */
async function closedWithin(connection: RawConnection, ms = CLOSE_BOUND_MS): Promise<void> {
  const timeout = sleep(ms).then(() => {
    throw new Error(`the server did not close the connection within ${ms} ms`);
  });
  await Promise.race([connection.closed, timeout]);
}

async function openFds(): Promise<number> {
  return (await readdir('/proc/self/fd')).length;
}

/** Waits until `check` holds (polling), or fails with `what` after `ms`. */
async function eventually(check: () => Promise<boolean> | boolean, what: string, ms = 5000) {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) assert.fail(what);
    await sleep(50);
  }
}

/** GOAWAY error codes (RFC 9113 section 7) nghttp2 answers each bad frame with. */
const EXPECTED_GOAWAY: Record<keyof typeof BAD_FRAMES, number> = {
  'garbage HPACK block': 0x9, // COMPRESSION_ERROR
  'PING of a bad size': 0x6, // FRAME_SIZE_ERROR
  'DATA on stream 0': 0x1, // PROTOCOL_ERROR
};

describe('hostile HTTP/2 clients', { timeout: 120_000 }, () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({
      connections: { keepaliveMs: KEEPALIVE_MS, keepaliveTimeoutMs: KEEPALIVE_TIMEOUT_MS },
    });
  });
  after(async () => {
    await server.close();
  });

  for (const [name, bytes] of Object.entries(BAD_FRAMES) as [keyof typeof BAD_FRAMES, Buffer][]) {
    test(`a connection that sends a ${name} gets GOAWAY and is closed, with a log line`, async () => {
      const before = server.connectionStats().protocol_error;
      const connection = await rawConnect(server.port, await rawIdentity(server.certsDir, 'alice'));
      const peer = `127.0.0.1:${String(connection.socket.localPort)}`;
      connection.socket.write(bytes);
      await closedWithin(connection);
      assert.equal(connection.goawayCode(), EXPECTED_GOAWAY[name]);
      assert.equal(server.connectionStats().protocol_error, before + 1);
      assert.ok(
        server
          .logLines()
          .some(
            (l) =>
              l['reason'] === 'protocol_error' &&
              String(l['msg']).includes('protocol error') &&
              l['peer'] === peer,
          ),
        'the close is logged with its reason and peer',
      );
    });
  }

  test('200 protocol-breaking connections at once: all closed, fds and connection count back to baseline, others still served', async () => {
    const client = await connect(server.address, server.certsDir, 'bob');
    // A call first: the client's own connection and lazily made state exist before the baseline.
    await unary(client, 'listJobs', { pageSize: 1, pageToken: '', state: 0, owner: '' });
    const baselineFds = await openFds();
    const baselineConnections = server.connectionCount();
    const bad = Object.values(BAD_FRAMES);
    const identity = await rawIdentity(server.certsDir, 'alice');
    const connections: RawConnection[] = [];
    for (let i = 0; i < 200; i += 40) {
      connections.push(
        ...(await Promise.all(
          Array.from({ length: 40 }, async (_, j) => {
            const c = await rawConnect(server.port, identity);
            c.socket.write(bad[(i + j) % bad.length] as Buffer);
            return c;
          }),
        )),
      );
    }
    await Promise.all(connections.map((c) => closedWithin(c, 15_000)));
    await eventually(
      () => server.connectionCount() === baselineConnections,
      `connections back to ${baselineConnections}: ${server.connectionCount()}`,
    );
    await eventually(async () => (await openFds()) <= baselineFds, 'fds back to baseline');
    await unary(client, 'listJobs', { pageSize: 1, pageToken: '', state: 0, owner: '' });
    client.close();
  });

  test('a client that sends GOAWAY and keeps the socket open is closed', async () => {
    const connection = await rawConnect(server.port, await rawIdentity(server.certsDir, 'alice'));
    const peer = `127.0.0.1:${String(connection.socket.localPort)}`;
    const goaway = Buffer.alloc(8); // last stream 0, NO_ERROR
    connection.socket.write(frame(FrameType.Goaway, 0, 0, goaway));
    await closedWithin(connection);
    assert.ok(
      server.logLines().some((l) => l['reason'] === 'goaway_received' && l['peer'] === peer),
    );
  });

  test('a peer that stops answering PINGs is closed as unresponsive', async () => {
    const before = server.connectionStats().unresponsive;
    const connection = await rawConnect(server.port, await rawIdentity(server.certsDir, 'alice'));
    await sleep(50); // let the SETTINGS exchange finish
    connection.answer = false;
    await closedWithin(connection);
    assert.ok(connection.received.includes(FrameType.Ping), 'the server probed with a PING');
    assert.equal(server.connectionStats().unresponsive, before + 1);
  });

  test('a peer that answers PINGs is kept (keepalive is not a timeout)', async () => {
    const connection = await rawConnect(server.port, await rawIdentity(server.certsDir, 'alice'));
    await sleep(4 * (KEEPALIVE_MS + KEEPALIVE_TIMEOUT_MS));
    assert.equal(connection.socket.destroyed, false);
    assert.ok(connection.received.filter((t) => t === FrameType.Ping).length >= 2);
    connection.socket.destroy();
    await connection.closed;
  });
});
