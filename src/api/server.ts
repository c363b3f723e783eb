/**
 * jobworkerd's server, built separately from listening so that tests can
 * bind port 0: JobService and Health over grpc-js, behind the TLS listener
 * (listener.ts) and the authorization seam (seam.ts).
 */
import * as grpc from '@grpc/grpc-js';
import { setMaxListeners } from 'node:events';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Logger } from 'pino';
import { ErrorCode, JobworkerError, toJobworkerError } from '../errors.js';
import { deadlineSignal, raceAbort } from '../signals.js';
import { HealthService } from '../gen/grpc/health/v1/health.js';
import type { Jobs } from '../job/index.js';
import type { AuditLog } from './audit.js';
import { HealthState, healthHandlers } from './health.js';
import { jobServiceHandlers } from './job-service.js';
import type { ConnectionPolicy } from './connection-policy.js';
import type { CloseReason } from './connection-stats.js';
import { createTlsListener } from './listener.js';
import { StreamQuota } from './quota.js';
import { auditUnknownMethods, auditUnreceived } from './refusals.js';
import { CallTracker, type Definition } from './call.js';
import { withSafeDecoding } from './decode.js';
import { jobServiceWire } from './encode.js';
import type { ServerMetrics } from './metrics.js';
import { bindService, type SeamDeps } from './seam.js';
import type { TlsIdentity } from './tls.js';

/** What the server is built from. */
export interface ServerOptions {
  readonly jobs: Jobs;
  readonly audit: AuditLog;
  /** Server log (handshake refusals, internal errors, shutdown). */
  readonly log: Logger;
  /** CA to verify clients with, and the server's certificate and key. */
  readonly identity: TlsIdentity;
  /** Bounds on connections other than the defaults (connection-policy.ts). */
  readonly connections?: Partial<ConnectionPolicy>;
  /** Where the server's calls, streams, jobs and connections are counted; none when absent. */
  readonly metrics?: ServerMetrics;
}

/** A built server. */
export interface JobworkerServer {
  /** Listens on `host:port` (port 0: any free port); resolves with the port. Once only. */
  listen(address: string): Promise<number>;
  /**
   * Graceful shutdown, idempotent: health NOT_SERVING, stop accepting, end
   * open calls with UNAVAILABLE "server shutting down", stop every job with
   * its grace period (`jobs.shutdown`), close connections. `signal` cuts the
   * wait for the jobs short.
   */
  shutdown(signal?: AbortSignal): Promise<void>;
  /** Open client connections, for leak checks. */
  readonly connectionCount: number;
  /** Connections closed or refused by the server so far, by reason. */
  connectionStats(): Record<CloseReason, number>;
  /** Calls being handled now, for leak checks. */
  readonly activeCalls: number;
  /** Resolves once no call is being handled. */
  whenIdle(): Promise<void>;
}

/** How long shutdown waits for clients to let their connections close before cutting them. */
const CLOSE_TIMEOUT_MS = 5000;

/** Splits "host:port", "[v6]:port". */
export function parseAddress(address: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(address);
  const port = Number(match?.[3]);
  const host = match?.[1] ?? match?.[2];
  if (host === undefined || !Number.isInteger(port) || port > 65535) {
    throw new JobworkerError(
      ErrorCode.InvalidArgument,
      `listen address ${JSON.stringify(address)} is not HOST:PORT`,
    );
  }
  return { host, port };
}

/** Builds the server; nothing listens until `listen`. */
export function createServer(options: ServerOptions): JobworkerServer {
  const stopping = new AbortController();
  // Every open call listens on it (and stops listening when it ends): a
  // thousand concurrent calls are normal, not a leak worth a warning.
  setMaxListeners(0, stopping.signal);
  const health = new HealthState();
  const grpcServer = new grpc.Server({
    // TODO(configuration system): these bounds are hard-coded defaults.
    'grpc.max_concurrent_streams': 1000,
    'grpc.max_receive_message_length': 1024 * 1024,
    // Calls grpc-js ends before the seam get their audit line here.
    interceptors: [auditUnreceived(options.audit, options.log)],
  });
  auditUnknownMethods(grpcServer, options.audit, options.log);
  const calls = new CallTracker();
  const { metrics } = options;
  const listener = createTlsListener(grpcServer, {
    identity: options.identity,
    log: options.log,
    audit: options.audit,
    policy: options.connections,
  });
  const deps: SeamDeps = {
    jobs: options.jobs,
    audit: options.audit,
    log: options.log,
    shutdown: stopping.signal,
    calls,
    streams: new StreamQuota(),
    connectionSignal: (peer) => listener.connectionSignal(peer),
    ...(metrics ? { observe: metrics.observeCall.bind(metrics) } : {}),
  };
  const wire = <D extends Definition>(definition: D): D =>
    withSafeDecoding(metrics ? metrics.countStreamBytes(definition) : definition);
  grpcServer.addService(
    wire(jobServiceWire),
    bindService(jobServiceWire, jobServiceHandlers, deps),
  );
  grpcServer.addService(
    wire(HealthService),
    bindService(HealthService, healthHandlers(health), deps),
  );
  metrics?.watchJobs(options.jobs);
  metrics?.watchConnections({
    open: () => listener.connectionCount,
    closed: () => listener.stats.snapshot(),
  });
  let shutdownDone: Promise<void> | null = null;

  const shutdown = async (signal?: AbortSignal): Promise<void> => {
    options.log.info('shutting down');
    health.setNotServing();
    listener.stopAccepting();
    // Let health watchers send NOT_SERVING before their calls are ended.
    await nextTurn();
    stopping.abort(new JobworkerError(ErrorCode.Unavailable, 'server shutting down'));
    try {
      await options.jobs.shutdown(signal);
    } catch (err) {
      options.log.error({ err: toJobworkerError(err) }, 'stopping jobs failed');
    }
    // Every call's signal is aborted: wait until each has been answered, then
    // close the HTTP/2 sessions gracefully (GOAWAY, statuses flushed) and,
    // should a peer not let go, force them after a bound.
    // A second signal (`signal`) stops waiting for handlers that ignore theirs.
    await raceAbort(calls.whenIdle(), signal).catch(() => undefined);
    const bound = deadlineSignal(CLOSE_TIMEOUT_MS, 'closing the connections');
    try {
      // The connections' own closes end the wait, not tryShutdown's callback
      // alone: from Node 24 on, http2's server.close() starts closing the
      // sessions itself, and grpc-js then counts a closing session as closed
      // while a stream still waits to send its status trailers.
      await raceAbort(
        Promise.all([
          new Promise<void>((resolve) => {
            grpcServer.tryShutdown(() => {
              resolve();
            });
          }),
          listener.whenDrained(),
        ]),
        bound.signal,
      );
    } catch {
      options.log.warn('connections still open after 5 s: closing them');
      grpcServer.forceShutdown();
    } finally {
      bound.dispose();
    }
    await listener.close();
    options.log.info({ connectionsClosed: listener.stats.snapshot() }, 'shut down');
  };

  return {
    async listen(address) {
      const { host, port } = parseAddress(address);
      return listener.listen(host, port);
    },
    shutdown(signal) {
      shutdownDone ??= shutdown(signal);
      return shutdownDone;
    },
    get connectionCount() {
      return listener.connectionCount;
    },
    connectionStats: () => listener.stats.snapshot(),
    get activeCalls() {
      return calls.active;
    },
    whenIdle: () => calls.whenIdle(),
  };
}
