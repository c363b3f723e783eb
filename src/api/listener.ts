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
 */
import * as grpc from '@grpc/grpc-js';
import { once } from 'node:events';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { ErrorCode, JobworkerError } from '../errors.js';
import { refuseClientCertificate, serverTlsOptions, type TlsIdentity } from './tls.js';

/** Most simultaneous TCP connections (handshaking or established); more are closed at once. */
const MAX_CONNECTIONS = 1024;

/** A listening TLS endpoint feeding a grpc-js server. */
export interface TlsListener {
  /** Binds `host:port` (port 0 picks a free one) and resolves with the port. */
  listen(host: string, port: number): Promise<number>;
  /** Stops accepting new connections; open ones keep working until {@link close}. */
  stopAccepting(): void;
  /** Resolves once every connection open now has closed (at once if none is). */
  whenDrained(): Promise<void>;
  /** Stops accepting and destroys every open connection (call after the server's calls have ended). */
  close(): Promise<void>;
  /** Number of open client connections (for leak checks in tests). */
  readonly connectionCount: number;
}

/** Creates the listener; nothing is bound until `listen`. */
export function createTlsListener(
  server: grpc.Server,
  identity: TlsIdentity,
  log: Logger,
): TlsListener {
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const sockets = new Set<TLSSocket>();
  const tlsServer = createTlsServer(serverTlsOptions(identity));
  // TODO(configuration system): a hard-coded bound on simultaneous connections.
  tlsServer.maxConnections = MAX_CONNECTIONS;

  tlsServer.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
    // The handshake itself failed: TLS 1.2 client, no common cipher or group, a bad signature.
    log.warn(
      { remote: socket.remoteAddress, reason: err.code ?? err.message },
      'TLS handshake refused',
    );
  });
  tlsServer.on('secureConnection', (socket: TLSSocket) => {
    const refusal = refuseClientCertificate(socket);
    if (refusal !== null) {
      log.warn({ remote: socket.remoteAddress, reason: refusal }, `TLS client refused: ${refusal}`);
      socket.destroy();
      return;
    }
    sockets.add(socket);
    // A reset connection must not crash the server: the error is logged, grpc-js sees the close.
    socket.on('error', (err: NodeJS.ErrnoException) => {
      log.debug(
        { remote: socket.remoteAddress, reason: err.code ?? err.message },
        'connection error',
      );
    });
    socket.once('close', () => sockets.delete(socket));
    injector.injectConnection(socket);
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
    async whenDrained() {
      await Promise.all(
        [...sockets].map((socket) => new Promise((resolve) => socket.once('close', resolve))),
      );
    },
    async close() {
      const closed = tlsServer.listening ? once(tlsServer, 'close') : Promise.resolve();
      tlsServer.close();
      injector.destroy();
      for (const socket of sockets) socket.destroy();
      await closed;
    },
    get connectionCount() {
      return sockets.size;
    },
  };
}
