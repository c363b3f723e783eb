import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { test } from 'node:test';
import { pino } from 'pino';
import { Counter, Registry } from 'prom-client';
import { fetchFrom, refused } from '../../tests/helpers/metrics.js';
import { checkMetricsAddress, isLoopback, serveMetrics } from './metrics-http.js';

const log = pino({ level: 'silent' });

test('loopback addresses only, unless remote is allowed', () => {
  for (const host of ['127.0.0.1', '127.3.4.5', '::1', '::ffff:127.0.0.1', 'localhost']) {
    assert.equal(isLoopback(host), true, host);
  }
  for (const host of ['0.0.0.0', '::', '10.0.0.1', '::ffff:10.0.0.1', 'example.com', '128.0.0.1']) {
    assert.equal(isLoopback(host), false, host);
  }
  assert.doesNotThrow(() => {
    checkMetricsAddress('[::1]:9464', false);
  });
  assert.throws(() => {
    checkMetricsAddress('0.0.0.0:9464', false);
  }, /metrics listen address "0.0.0.0:9464" is not loopback.*--metrics-allow-remote/);
  assert.doesNotThrow(() => {
    checkMetricsAddress('0.0.0.0:9464', true);
  });
  assert.throws(() => {
    checkMetricsAddress('9464', true);
  }, /metrics listen address "9464" is not HOST:PORT/);
});

test('GET /metrics only: 404 elsewhere, 405 for another method, 431 for oversized headers; close ends it', async () => {
  const registry = new Registry();
  new Counter({ name: 'probe_total', help: 'A probe.', registers: [registry] }).inc(3);
  const endpoint = await serveMetrics(registry, {
    address: '127.0.0.1:0',
    allowRemote: false,
    log,
  });
  try {
    const ok = await fetchFrom(endpoint.port, '/metrics');
    assert.equal(ok.status, 200);
    assert.equal(ok.headers['content-type'], registry.contentType);
    assert.match(ok.body, /^probe_total 3$/m);
    assert.equal((await fetchFrom(endpoint.port, '/')).status, 404);
    assert.equal((await fetchFrom(endpoint.port, '/metrics/x')).status, 404);
    const post = await fetchFrom(endpoint.port, '/metrics', { method: 'POST' });
    assert.deepEqual([post.status, post.headers['allow']], [405, 'GET']);
    assert.equal((await fetchFrom(endpoint.port, '/metrics', { method: 'DELETE' })).status, 405);
    const big = await fetchFrom(endpoint.port, '/metrics', {
      headers: { 'x-big': 'x'.repeat(9000) },
    });
    assert.equal(big.status, 431);
    // An idle client holding a connection open does not hold up the close.
    const idle = connect({ host: '127.0.0.1', port: endpoint.port });
    await once(idle, 'connect');
    const idleClosed = once(idle, 'close');
    await endpoint.close();
    await idleClosed;
    assert.equal(await refused(endpoint.port), true, 'nothing listens after close');
  } finally {
    await endpoint.close();
  }
});

test('a non-loopback address is refused before anything is bound', async () => {
  await assert.rejects(
    serveMetrics(new Registry(), { address: '0.0.0.0:0', allowRemote: false, log }),
    { code: 'invalid_argument' },
  );
});
