/**
 * The server's Prometheus metrics, in a prom-client Registry of their own
 * (never the global default one, which any dependency may write to). The
 * layers below know nothing of prom-client: the job library and the
 * isolation report events through hooks ({@link ServerMetrics.onJobEvent},
 * {@link ServerMetrics.onForkServerRestart}), the seam reports each call's
 * end, and what the server already counts (jobs per state, connections)
 * is read at scrape time, with no polling. docs/rfd/0001-jobworker.md
 * ("Observability") lists every metric; a test keeps the two in step.
 *
 * Labels take values from closed sets only: method paths the server serves,
 * gRPC code names, end, removal, drop and close reasons, job states. Never a
 * job id and never an owner: identities are whatever client certificates
 * name, so each would add a series for ever.
 */
import { status as Status } from '@grpc/grpc-js';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import {
  END_REASONS,
  JOB_STATES,
  OUTPUT_DROP_REASONS,
  REMOVAL_REASONS,
  type JobEvent,
  type Jobs,
  type RecoveryReport,
} from '../job/index.js';
import type { Definition } from './call.js';
import { REFUSAL_REASONS, type CloseReason } from './connection-stats.js';

/** Upper bounds (s) of the RPC duration histogram: a unary call takes ms, a followed stream hours. */
const RPC_BUCKETS_S = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600,
];

/** prom-client default metrics left out (see {@link createMetrics}). */
const REDUNDANT_DEFAULTS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

/** What the server's connections look like at a scrape (JobworkerServer's counters). */
export interface ConnectionSource {
  readonly open: () => number;
  readonly closed: () => Record<CloseReason, number>;
}

/** The metrics of one server and the hooks that feed them. */
export interface ServerMetrics {
  /** Every metric below and prom-client's default process metrics. */
  readonly registry: Registry;
  /** Counts a job library event (JobManagerOptions.onEvent). */
  onJobEvent(event: JobEvent): void;
  /** Counts a fork server replaced (IsolationOptions.onForkServerRestart). */
  onForkServerRestart(): void;
  /** Counts what start-up recovery found: leftover cgroups swept, jobs finished as lost. */
  onRecovery(report: RecoveryReport): void;
  /** Records one call that went through the seam: its method path, gRPC status code and duration. */
  observeCall(method: string, code: Status, seconds: number): void;
  /** `definition` with the response bytes of its server-streaming methods counted. */
  countStreamBytes<D extends Definition>(definition: D): D;
  /** Reads the jobs per state from `jobs` at each scrape. */
  watchJobs(jobs: Pick<Jobs, 'count'>): void;
  /** Reads the connection counters from `source` at each scrape. */
  watchConnections(source: ConnectionSource): void;
}

/** Label value of a gRPC status code: its name, as grpc-go and grpc-prometheus spell it. */
function codeName(code: Status): string {
  return Status[code];
}

/** A counter by `reason` whose values are read from `read` at each scrape (the server counts them already). */
function counterByReason(
  registry: Registry,
  name: string,
  help: string,
  read: () => readonly (readonly [string, number])[],
): void {
  new Counter({
    name,
    help,
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [reason, count] of read()) this.inc({ reason }, count);
    },
  });
}

/** Builds the registry and every metric; nothing is served until serveMetrics (metrics-http.ts). */
export function createMetrics(): ServerMetrics {
  const registry = new Registry();
  // process_* and nodejs_*: their conventional names, unprefixed, as dashboards expect them.
  collectDefaultMetrics({ register: registry });
  // Gauges named like counters (`promtool check metrics` refuses them; prometheus/client_js#283),
  // and only sums of nodejs_active_{handles,requests,resources} over their `type` label.
  for (const name of REDUNDANT_DEFAULTS) registry.removeSingleMetric(name);
  const registers = [registry];
  const started = new Counter({
    name: 'jobworker_jobs_started_total',
    help: 'Jobs started.',
    registers,
  });
  const finished = new Counter({
    name: 'jobworker_jobs_finished_total',
    help: 'Jobs finished, by end reason (lost: left running by a previous server, found at start).',
    labelNames: ['reason'],
    registers,
  });
  const removed = new Counter({
    name: 'jobworker_retention_removals_total',
    help: 'Finished jobs removed by retention, by the rule that removed them.',
    labelNames: ['reason'],
    registers,
  });
  const dropped = new Counter({
    name: 'jobworker_output_dropped_bytes_total',
    help: 'Job output bytes not stored: over the output cap, or after a write to the log failed.',
    labelNames: ['reason'],
    registers,
  });
  const restarts = new Counter({
    name: 'jobworker_fork_server_restarts_total',
    help: 'Sandbox fork servers replaced after they died or failed to start.',
    registers,
  });
  const swept = new Counter({
    name: 'jobworker_leftover_cgroups_swept_total',
    help: 'Job cgroups left by a previous server, killed and removed at start.',
    registers,
  });
  const rpcs = new Histogram({
    name: 'jobworker_rpc_duration_seconds',
    help: 'Calls handled, by method and gRPC status code, and how long each took (its _count is the call count).',
    labelNames: ['method', 'code'],
    buckets: RPC_BUCKETS_S,
    registers,
  });
  const streamBytes = new Counter({
    name: 'jobworker_stream_sent_bytes_total',
    help: 'Bytes of response messages written to server streams, by method (serialized, before HTTP/2 framing and TLS).',
    labelNames: ['method'],
    registers,
  });
  // Every label value of a closed set is there from the start, at 0: rate() needs the series before the first event.
  started.inc(0);
  for (const reason of END_REASONS) finished.inc({ reason }, 0);
  for (const reason of REMOVAL_REASONS) removed.inc({ reason }, 0);
  for (const reason of OUTPUT_DROP_REASONS) dropped.inc({ reason }, 0);
  restarts.inc(0);
  swept.inc(0);

  return {
    registry,
    onJobEvent(event) {
      switch (event.type) {
        case 'started':
          started.inc();
          return;
        case 'finished':
          finished.inc({ reason: event.reason });
          return;
        case 'removed':
          removed.inc({ reason: event.reason });
          return;
        case 'output_dropped':
          dropped.inc({ reason: event.reason }, event.bytes);
          return;
      }
    },
    onForkServerRestart() {
      restarts.inc();
    },
    onRecovery(report) {
      swept.inc(report.leftoverCgroups ?? 0);
      finished.inc({ reason: 'lost' }, report.lost);
    },
    observeCall(method, code, seconds) {
      rpcs.observe({ method, code: codeName(code) }, seconds);
    },
    countStreamBytes<D extends Definition>(definition: D): D {
      const counted: Record<string, unknown> = {};
      for (const [name, method] of Object.entries(definition)) {
        if (!method.responseStream) {
          counted[name] = method;
          continue;
        }
        streamBytes.inc({ method: method.path }, 0);
        counted[name] = {
          ...method,
          responseSerialize: (value: never): Buffer => {
            const bytes = method.responseSerialize(value);
            streamBytes.inc({ method: method.path }, bytes.length);
            return bytes;
          },
        };
      }
      return counted as D;
    },
    watchJobs(jobs) {
      new Gauge({
        name: 'jobworker_jobs',
        help: 'Jobs held now, by state (finished: kept until retention removes them).',
        labelNames: ['state'],
        registers,
        collect() {
          for (const state of JOB_STATES) this.set({ state }, jobs.count({ state }));
        },
      });
    },
    watchConnections(source) {
      new Gauge({
        name: 'jobworker_connections_open',
        help: 'Client connections established and open now.',
        registers,
        collect() {
          this.set(source.open());
        },
      });
      const byKind = (refused: boolean) => () =>
        Object.entries(source.closed()).filter(
          ([reason]) => REFUSAL_REASONS.has(reason as CloseReason) === refused,
        );
      counterByReason(
        registry,
        'jobworker_connections_refused_total',
        'Connections refused before serving a call (TLS handshake, client certificate, connection budgets), by reason.',
        byKind(true),
      );
      counterByReason(
        registry,
        'jobworker_connections_closed_total',
        'Established connections closed by the server, by reason.',
        byKind(false),
      );
    },
  };
}
