/**
 * The server's TLS listener. jobworkerd terminates TLS itself, in a
 * `tls.Server`, and hands each accepted connection to grpc-js through its
 * public `createConnectionInjector` API. Why not grpc-js's own TLS:
 *
 * - `ServerCredentials.createSsl()` takes no version, cipher or curve options
 *   (grpc/proposal#96), and grpc-js keeps its `http2.SecureServer` private,
 *   so a handshake failure cannot be logged with its reason.
 * - Node verifies a client chain in JavaScript after the OpenSSL handshake
 *   (lib/_tls_wrap.js, onServerSocketSecure) and, with
 *   `rejectUnauthorized: true`, destroys the socket without any event. Here
 *   the same decision is made in 'secureConnection' (see
 *   {@link refuseClientCertificate}), which also logs the reason and adds the
 *   checks OpenSSL does not make (clientAuth EKU present, key type).
 *
 * The injector is built over plaintext credentials because the bytes it gets
 * are already decrypted by this listener; grpc-js still sees a `TLSSocket`
 * and serves `getAuthContext()` from it (only when `socket.authorized`).
 *
 * Connections still in their handshake have a budget of their own, in all
 * and per peer address, and a newcomer pushes out the oldest: silent TCP
 * connections cannot keep real clients out. Established ones are watched by
 * a {@link Connection} (connection.ts).
 */
import * as grpc from '@grpc/grpc-js';
import { once } from 'node:events';
import type { Http2Server, Http2Session } from 'node:http2';
import { isIPv6, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { ErrorCode, JobworkerError } from '../errors.js';
import type { AuditLog } from './audit.js';
import { auditHandshakeRefusal } from './refusals.js';
import { Connection } from './connection.js';
import { connectionPolicy, type ConnectionPolicy } from './connection-policy.js';
import { CloseReason, ConnectionStats } from './connection-stats.js';
import { Handshakes } from './handshakes.js';
import { refuseClientCertificate, serverTlsOptions, type TlsIdentity } from './tls.js';

/** A listening TLS endpoint feeding a grpc-js server. */
export interface TlsListener {
  /** Binds `host:port` (port 0 picks a free one) and resolves with the port. */
  listen(host: string, port: number): Promise<number>;
  /** Stops accepting new connections; open ones keep working until {@link close}. */
  stopAccepting(): void;
  /** Resolves once no connection is open (at once if none is); call after stopAccepting. */
  whenDrained(): Promise<void>;
  /** Stops accepting and destroys every open connection (call after the server's calls have ended). */
  close(): Promise<void>;
  /** Number of open client connections (for leak checks in tests). */
  readonly connectionCount: number;
  /** Closed and refused connections by reason. */
  readonly stats: ConnectionStats;
  /** The signal that ends the calls of the connection `peer` (grpc-js's `call.getPeer()`), if it is open. */
  connectionSignal(peer: string): AbortSignal | undefined;
}

/** `address:port`, the way grpc-js's `call.getPeer()` spells a peer. */
function peerOf(socket: Socket): string {
  return `${String(socket.remoteAddress)}:${String(socket.remotePort)}`;
}

/**
 * The peer a handshake budget counts: an IPv4 address, or an IPv6 address's
 * /64, which one host usually holds whole (an IPv4-mapped address counts as
 * its IPv4 address).
 */
export function peerGroup(address: string): string {
  if (!isIPv6(address)) return address;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped?.[1] !== undefined) return mapped[1];
  const [head = '', tail = ''] = address.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = address.includes('::') && tail !== '' ? tail.split(':') : [];
  const groups = address.includes('::')
    ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right]
    : left;
  return `${groups
    .slice(0, 4)
    .map((g) => Number.parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}

/** A grpc-js connection injector. */
type Injector = ReturnType<grpc.Server['createConnectionInjector']>;

/**
 * A connection injector over plaintext credentials, and the HTTP/2 server
 * grpc-js keeps behind it: its 'session' event is the only place a
 * connection's session can be seen. grpc-js holds that server in a private
 * map; this fails at start-up, not silently, should that change.
 */
function createInjector(server: grpc.Server): { injector: Injector; http2Server: Http2Server } {
  const internals = server as unknown as { http2Servers?: Map<Http2Server, unknown> };
  const before = new Set(internals.http2Servers?.keys());
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const added = [...(internals.http2Servers?.keys() ?? [])].filter((s) => !before.has(s));
  const http2Server = added[0];
  if (added.length !== 1 || typeof http2Server?.on !== 'function') {
    throw new JobworkerError(ErrorCode.Internal, 'grpc-js injector internals are not as expected');
  }
  return { injector, http2Server };
}

/** What {@link createTlsListener} needs. */
export interface TlsListenerOptions {
  readonly identity: TlsIdentity;
  readonly log: Logger;
  /** Where refused handshakes and client certificates are audited. */
  readonly audit: AuditLog;
  /** Overrides of the connection limits (connection-policy.ts). */
  readonly policy?: Partial<ConnectionPolicy> | undefined;
}

/** Creates the listener; nothing is bound until `listen`. */
export function createTlsListener(
  server: grpc.Server,
  { identity, log, audit, policy: overrides = {} }: TlsListenerOptions,
): TlsListener {
  const policy = connectionPolicy(overrides);
  const stats = new ConnectionStats();
  const { injector, http2Server } = createInjector(server);
  const connections = new Map<string, Connection>();
  /** Established connections per client identity (CN); no larger than `connections`. */
  const perIdentity = new Map<string, number>();
  /** Waiters of whenDrained(), called when the last connection has closed. */
  const drained: (() => void)[] = [];
  const handshakes = new Handshakes();
  /** Pushed-out handshakes, so that their TLS error is not counted twice. */
  const evicted = new Set<string>();
  const tlsServer = createTlsServer({
    ...serverTlsOptions(identity),
    handshakeTimeout: policy.handshakeTimeoutMs,
  });
  // A hard ceiling on sockets; the budgets below keep well within it.
  tlsServer.maxConnections = policy.maxConnections + 2 * policy.maxHandshaking;

  const refuse = (peer: string, reason: CloseReason, detail: string): void => {
    stats.count(reason);
    log.info({ remote: peer, reason }, `connection refused: ${detail}`);
  };
  const evict = (peer: string | undefined, detail: string): void => {
    if (peer === undefined) return;
    const address = peerGroup(peer.slice(0, peer.lastIndexOf(':')));
    const socket = handshakes.remove(peer, address);
    if (socket === undefined) return;
    evicted.add(peer);
    refuse(peer, CloseReason.HandshakeEvicted, detail);
    socket.destroy();
  };

  // Raw TCP, before TLS: the handshake budgets.
  tlsServer.on('connection', (socket: Socket) => {
    if (socket.remoteAddress === undefined) {
      socket.destroy();
      return;
    }
    const address = peerGroup(socket.remoteAddress);
    const peer = peerOf(socket);
    if (handshakes.countOf(address) >= policy.maxHandshakingPerPeer) {
      evict(handshakes.oldest(address), `too many handshakes from ${address}`);
    }
    if (handshakes.size >= policy.maxHandshaking) {
      evict(handshakes.oldest(), 'too many handshakes');
    }
    handshakes.add(peer, address, socket);
    socket.once('close', () => {
      handshakes.remove(peer, address);
      evicted.delete(peer);
    });
  });
  tlsServer.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
    const peer = peerOf(socket);
    if (evicted.delete(peer)) {
      socket.destroy();
      return;
    }
    // The handshake itself failed: TLS 1.2 client, no common cipher or group, a bad signature, its deadline.
    const reason =
      err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT'
        ? CloseReason.HandshakeTimeout
        : CloseReason.HandshakeFailed;
    stats.count(reason);
    log.warn(
      { remote: socket.remoteAddress, reason: err.code ?? err.message },
      'TLS handshake refused',
    );
    auditHandshakeRefusal(audit, log, socket, err.code ?? err.message);
    // With a 'tlsClientError' listener Node leaves the socket open (a timed-out handshake included).
    socket.destroy();
  });
  tlsServer.on('secureConnection', (socket: TLSSocket) => {
    const peer = peerOf(socket);
    handshakes.remove(peer, peerGroup(String(socket.remoteAddress)));
    // A reset connection must not crash the server: the error is logged, grpc-js sees the close.
    socket.on('error', (err: NodeJS.ErrnoException) => {
      log.debug({ remote: peer, reason: err.code ?? err.message }, 'connection error');
    });
    const refusal = refuseClientCertificate(socket);
    if (refusal !== null) {
      stats.count(CloseReason.ClientRefused);
      log.warn({ remote: socket.remoteAddress, reason: refusal }, `TLS client refused: ${refusal}`);
      auditHandshakeRefusal(audit, log, socket, refusal);
      socket.destroy();
      return;
    }
    if (connections.size >= policy.maxConnections) {
      refuse(peer, CloseReason.ConnectionLimit, `${connections.size} connections open already`);
      socket.destroy();
      return;
    }
    // Verified above: the certificate and its subject are there.
    const identity = String(socket.getPeerCertificate().subject.CN);
    const held = perIdentity.get(identity) ?? 0;
    if (held >= policy.maxConnectionsPerIdentity) {
      refuse(
        peer,
        CloseReason.IdentityConnectionLimit,
        `${JSON.stringify(identity)} has ${held} connections open already`,
      );
      socket.destroy();
      return;
    }
    perIdentity.set(identity, held + 1);
    const connection = new Connection(socket, peer, { policy, stats, log });
    connections.set(peer, connection);
    socket.once('close', () => {
      const left = (perIdentity.get(identity) ?? 1) - 1;
      if (left === 0) perIdentity.delete(identity);
      else perIdentity.set(identity, left);
      connections.delete(peer);
      if (connections.size === 0) for (const resolve of drained.splice(0)) resolve();
    });
    let session: Http2Session | undefined;
    const onSession = (s: Http2Session): void => {
      session = s;
    };
    // Node emits 'session' while the connection is handed over, synchronously.
    http2Server.once('session', onSession);
    injector.injectConnection(socket);
    http2Server.off('session', onSession);
    if (session === undefined) {
      connection.destroy(CloseReason.SessionError, 'no HTTP/2 session was created');
      return;
    }
    // Verified above, so the certificate is there.
    const notAfter = new Date(socket.getPeerX509Certificate()?.validTo ?? 0);
    connection.attach(session, notAfter);
  });

  return {
    listen(host, port) {
      return new Promise<number>((resolve, reject) => {
        const onError = (err: Error): void => {
          reject(
            new JobworkerError(
              ErrorCode.Unavailable,
              `cannot listen on ${host}:${port}: ${err.message}`,
              { cause: err },
            ),
          );
        };
        tlsServer.once('error', onError);
        tlsServer.listen({ host, port }, () => {
          tlsServer.off('error', onError);
          // From now on an accept error (EMFILE, ...) is logged; unheard, it would crash the server.
          tlsServer.on('error', (err: NodeJS.ErrnoException) => {
            log.error({ reason: err.code ?? err.message }, 'listener error');
          });
          const address = tlsServer.address();
          if (address === null || typeof address === 'string') {
            reject(
              new JobworkerError(ErrorCode.Internal, `listener on ${host}:${port} has no port`),
            );
          } else {
            resolve(address.port);
          }
        });
      });
    },
    stopAccepting() {
      // close() only stops accepting; its callback waits for open connections, which close() below ends.
      if (tlsServer.listening) tlsServer.close();
    },
    whenDrained() {
      if (connections.size === 0) return Promise.resolve();
      return new Promise<void>((resolve) => drained.push(resolve));
    },
    async close() {
      const closed = tlsServer.listening ? once(tlsServer, 'close') : Promise.resolve();
      tlsServer.close();
      injector.destroy();
      handshakes.destroyAll();
      for (const connection of connections.values())
        connection.destroy(CloseReason.Shutdown, 'server shut down');
      await closed;
    },
    get connectionCount() {
      return connections.size;
    },
    stats,
    connectionSignal(peer) {
      return connections.get(peer)?.signal;
    },
  };
}
