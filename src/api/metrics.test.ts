import assert from 'node:assert/strict';
import { test } from 'node:test';
import { status as Status } from '@grpc/grpc-js';
import { docsTableRows } from '../../tests/helpers/docs.js';
import { families, value } from '../../tests/helpers/metrics.js';
import { CloseReason } from './connection-stats.js';
import { createMetrics } from './metrics.js';

/** A registry fed one of every event, as a server would. */
async function exercised(): Promise<string> {
  const metrics = createMetrics();
  metrics.watchJobs({ count: (filter) => (filter?.state === 'running' ? 2 : 0) });
  const closed = Object.fromEntries(Object.values(CloseReason).map((r) => [r, 0])) as Record<
    CloseReason,
    number
  >;
  closed[CloseReason.HandshakeTimeout] = 4;
  closed[CloseReason.Idle] = 1;
  metrics.watchConnections({ open: () => 3, closed: () => closed });
  metrics.onJobEvent({ type: 'started' });
  metrics.onJobEvent({ type: 'finished', reason: 'exited' });
  metrics.onJobEvent({ type: 'removed', reason: 'age' });
  metrics.onJobEvent({ type: 'output_dropped', reason: 'cap', bytes: 10 });
  metrics.onForkServerRestart();
  metrics.onRecovery({
    restored: 0,
    lost: 2,
    damaged: [],
    halfMadeRemoved: 0,
    leftoverCgroups: 5,
  });
  metrics.observeCall('/jobworker.v1.JobService/GetJob', Status.NOT_FOUND, 0.002);
  const streaming = metrics.countStreamBytes({
    watch: {
      path: '/x.v1.S/Watch',
      requestStream: false,
      responseStream: true,
      requestDeserialize: (b: Buffer) => b,
      responseSerialize: (v: never) => Buffer.from(v as string),
    },
  });
  streaming.watch.responseSerialize('hello' as never);
  return metrics.registry.metrics();
}

test('the RFD lists every jobworker_ metric with its type and labels, and only those', async () => {
  const rows = (await docsTableRows('rfd/0001-jobworker.md'))
    .map(([, name, type, labels]) => ({ name, type, labels }))
    .filter((r) => /^`jobworker_\w+`$/.test(r.name ?? ''));
  const documented = new Map(
    rows.map((r) => [
      (r.name ?? '').slice(1, -1),
      { type: r.type, labels: [...(r.labels ?? '').matchAll(/`(\w+)`/g)].map((m) => m[1]) },
    ]),
  );
  const exported = new Map(
    [...families(await exercised())]
      .filter(([name]) => name.startsWith('jobworker_'))
      .map(([name, f]) => [name, { type: f.type, labels: [...f.labels].sort() }]),
  );
  assert.deepEqual(
    [...documented.keys()].sort(),
    [...exported.keys()].sort(),
    'the RFD table and the registry name the same metrics',
  );
  for (const [name, doc] of documented) {
    assert.deepEqual(
      { type: doc.type, labels: [...doc.labels].sort() },
      exported.get(name),
      `${name} in the RFD`,
    );
  }
});

test('the hooks move the counters; gauges and connection counters are read at scrape', async () => {
  const text = await exercised();
  assert.equal(value(text, 'jobworker_jobs_started_total'), 1);
  assert.equal(value(text, 'jobworker_jobs_finished_total{reason="exited"}'), 1);
  assert.equal(value(text, 'jobworker_jobs_finished_total{reason="lost"}'), 2);
  assert.equal(value(text, 'jobworker_jobs_finished_total{reason="oom_killed"}'), 0);
  assert.equal(value(text, 'jobworker_retention_removals_total{reason="age"}'), 1);
  assert.equal(value(text, 'jobworker_output_dropped_bytes_total{reason="cap"}'), 10);
  assert.equal(value(text, 'jobworker_fork_server_restarts_total'), 1);
  assert.equal(value(text, 'jobworker_leftover_cgroups_swept_total'), 5);
  assert.equal(value(text, 'jobworker_jobs{state="running"}'), 2);
  assert.equal(value(text, 'jobworker_connections_open'), 3);
  assert.equal(value(text, 'jobworker_connections_refused_total{reason="handshake_timeout"}'), 4);
  assert.equal(value(text, 'jobworker_connections_closed_total{reason="idle"}'), 1);
  assert.doesNotMatch(text, /jobworker_connections_closed_total\{reason="handshake_timeout"\}/);
  assert.equal(
    value(
      text,
      'jobworker_rpc_duration_seconds_count{method="/jobworker.v1.JobService/GetJob",code="NOT_FOUND"}',
    ),
    1,
  );
  assert.equal(value(text, 'jobworker_stream_sent_bytes_total{method="/x.v1.S/Watch"}'), 5);
  // prom-client's default process metrics, in the same registry.
  assert.match(text, /^process_cpu_user_seconds_total /m);
  assert.match(text, /^nodejs_eventloop_lag_seconds /m);
});
