/**
 * The metrics endpoint: `GET /metrics` in Prometheus's text format over plain
 * HTTP, on a listener of its own, apart from the mTLS API. It has no
 * authentication, so it listens on loopback unless the operator says
 * otherwise in so many words ({@link MetricsListenOptions.allowRemote}).
 * Anything may connect to it, so everything is bounded: header size,
 * the time to send headers and a request, idle sockets, connections at
 * once; any other path is 404, any other method 405.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { isIPv4 } from 'node:net';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { ErrorCode, JobworkerError } from '../errors.js';
import { parseAddress } from './server.js';

/** The one path served. */
export const METRICS_PATH = '/metrics';

/** Bounds of the listener: a scraper needs little, anyone else gets little. */
const LIMITS = {
  /** Node's default is 16 KiB; a scrape sends a few hundred bytes. */
  maxHeaderBytes: 8 * 1024,
  headersTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
  /** A socket with nothing sent or received for this long is closed. */
  idleTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  /** How often Node checks the two timeouts above (its default is 30 s). */
  checkIntervalMs: 1_000,
  /** Prometheus keeps one connection per target; a few more for a curl or a second scraper. */
  maxConnections: 16,
} as const;

/** Options of {@link serveMetrics}. */
export interface MetricsListenOptions {
  /** `HOST:PORT`; port 0 picks a free one. */
  readonly address: string;
  /** Serve on an address other than loopback (the endpoint has no authentication: firewall it). */
  readonly allowRemote: boolean;
  readonly log: Logger;
}

/** A listening metrics endpoint; its owner closes it. */
export interface MetricsListener {
  /** The bound port. */
  readonly port: number;
  /** Stops listening and ends every connection, a scrape in progress included. Idempotent. */
  close(): Promise<void>;
}

/** Whether `host` names the loopback interface: localhost, 127.0.0.0/8 or ::1 (IPv4-mapped too). */
export function isLoopback(host: string): boolean {
  const v4 = /^::ffff:(.+)$/i.exec(host)?.[1] ?? host;
  if (isIPv4(v4)) return v4.startsWith('127.');
  return host === 'localhost' || host === '::1' || host === '0:0:0:0:0:0:0:1';
}

/**
 * Checks `address` as a metrics address: HOST:PORT, and loopback unless
 * `allowRemote`. Throws invalid_argument naming the option and value.
 */
export function checkMetricsAddress(address: string, allowRemote: boolean): void {
  let host: string;
  try {
    ({ host } = parseAddress(address));
  } catch {
    throw new JobworkerError(
      ErrorCode.InvalidArgument,
      `metrics listen address ${JSON.stringify(address)} is not HOST:PORT`,
    );
  }
  if (!allowRemote && !isLoopback(host)) {
    throw new JobworkerError(
      ErrorCode.InvalidArgument,
      `metrics listen address ${JSON.stringify(address)} is not loopback; /metrics has no authentication, so serving it elsewhere takes --metrics-allow-remote (and a firewall)`,
    );
  }
}

function answer(res: ServerResponse, status: number, text: string, headers = {}): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers });
  res.end(`${text}\n`);
}

/** Binds the metrics endpoint of `registry`; rejects (unavailable) when the address cannot be bound. */
export async function serveMetrics(
  registry: Registry,
  options: MetricsListenOptions,
): Promise<MetricsListener> {
  checkMetricsAddress(options.address, options.allowRemote);
  const { host, port } = parseAddress(options.address);
  const { log } = options;
  const server = createServer(
    {
      maxHeaderSize: LIMITS.maxHeaderBytes,
      headersTimeout: LIMITS.headersTimeoutMs,
      requestTimeout: LIMITS.requestTimeoutMs,
      keepAliveTimeout: LIMITS.keepAliveTimeoutMs,
      connectionsCheckingInterval: LIMITS.checkIntervalMs,
    },
    (req: IncomingMessage, res: ServerResponse) => {
      const path = (req.url ?? '').split('?')[0];
      if (path !== METRICS_PATH) {
        answer(res, 404, 'not found: only GET /metrics is served');
        return;
      }
      if (req.method !== 'GET') {
        answer(res, 405, 'method not allowed: only GET /metrics is served', { allow: 'GET' });
        return;
      }
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': registry.contentType });
          res.end(text);
        },
        (err: unknown) => {
          log.error({ err }, 'cannot collect the metrics');
          answer(res, 500, 'cannot collect the metrics; the server log says why');
        },
      );
    },
  );
  server.maxConnections = LIMITS.maxConnections;
  server.timeout = LIMITS.idleTimeoutMs;
  // Malformed requests and resets: Node's own clientError handling answers
  // 400 (431 for oversized headers, 408 past the timeouts) and closes the socket.
  const bound = await new Promise<number>((resolve, reject) => {
    const onError = (err: Error): void => {
      reject(
        new JobworkerError(
          ErrorCode.Unavailable,
          `cannot listen for metrics on ${options.address}: ${err.message}`,
          { cause: err },
        ),
      );
    };
    server.once('error', onError);
    server.listen({ host, port }, () => {
      server.off('error', onError);
      server.on('error', (err: NodeJS.ErrnoException) => {
        log.error({ reason: err.code ?? err.message }, 'metrics listener error');
      });
      const address = server.address();
      if (address === null || typeof address === 'string') {
        reject(new JobworkerError(ErrorCode.Internal, 'the metrics listener has no port'));
      } else {
        resolve(address.port);
      }
    });
  }).catch((err: unknown) => {
    server.close();
    throw err;
  });
  let closed: Promise<void> | null = null;
  return {
    port: bound,
    close() {
      closed ??= (async () => {
        const done = server.listening ? once(server, 'close') : Promise.resolve();
        server.close();
        server.closeAllConnections();
        await done;
      })();
      return closed;
    },
  };
}
