/**
 * Audit lines for calls grpc-js ends before they reach the seam (seam.ts),
 * which writes the line of every other call: a call whose request message
 * never arrived (over the size limit, or cancelled or expired before it
 * did), and a call of a method the server does not have; and refused TLS
 * handshakes (called by listener.ts at its refusal points).
 */
import * as grpc from '@grpc/grpc-js';
import type { ServerHttp2Stream } from 'node:http2';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { ErrorCode } from '../errors.js';
import { recordSafely, TLS_HANDSHAKE, type AuditLog } from './audit.js';
import { principalOf } from './authz.js';

/** Longest method path written to the audit log: it is the client's text. */
const MAX_METHOD_CHARS = 256;

function who(cert: PeerCertificate | undefined): { identity: string | null; role: string | null } {
  try {
    const principal = principalOf(cert);
    return { identity: principal.name, role: principal.role };
  } catch {
    return { identity: null, role: null };
  }
}

/** A server interceptor that audits each call ending before its request message reached a handler. */
export function auditUnreceived(audit: AuditLog, log: Logger): grpc.ServerInterceptor {
  return (method, call) => {
    let received = false;
    return new grpc.ServerInterceptingCall(call, {
      start(next) {
        next({
          onReceiveMessage(message, nextMessage) {
            received = true;
            nextMessage(message);
          },
          onCancel() {
            if (received) return;
            recordSafely(audit, log, {
              ...who(call.getAuthContext().sslPeerCertificate),
              method: method.path,
              jobId: null,
              outcome: 'error',
              code: null,
              peer: call.getPeer(),
              reason:
                'ended before its request message arrived: over the size limit, cancelled or expired',
            });
          },
        });
      },
    });
  };
}

/** The part of grpc-js's Server (private, grpc-js 1.14) that answers calls of unknown methods. */
interface Responding {
  _respondWithError?: (
    this: unknown,
    err: { code?: number; details?: string },
    stream: ServerHttp2Stream,
    ...rest: unknown[]
  ) => void;
}

/**
 * Audits calls of methods `server` does not have. grpc-js answers them
 * UNIMPLEMENTED itself, before any handler or interceptor; the one place
 * that sees them, with their stream, is its private `_respondWithError`,
 * wrapped here (a grpc-js without it is logged, and such calls go unaudited).
 */
export function auditUnknownMethods(server: grpc.Server, audit: AuditLog, log: Logger): void {
  const target = server as unknown as Responding;
  const respond = target._respondWithError;
  if (typeof respond !== 'function') {
    log.warn('this grpc-js has no _respondWithError: calls of unknown methods are not audited');
    return;
  }
  target._respondWithError = function (err, stream, ...rest) {
    if (err.code === grpc.status.UNIMPLEMENTED) {
      const socket = stream.session?.socket as TLSSocket | undefined;
      const method = /^The server does not implement the method (.*)$/s.exec(err.details ?? '');
      recordSafely(audit, log, {
        ...who(socket?.getPeerCertificate()),
        method: (method?.[1] ?? '').slice(0, MAX_METHOD_CHARS),
        jobId: null,
        outcome: 'error',
        code: null,
        peer: `${socket?.remoteAddress ?? '?'}:${socket?.remotePort ?? '?'}`,
        reason: 'no such method: answered UNIMPLEMENTED',
      });
    }
    respond.call(this, err, stream, ...rest);
  };
}

/** Audits a refused TLS handshake or client certificate of `socket`, with the reason the server logs. */
export function auditHandshakeRefusal(
  audit: AuditLog,
  log: Logger,
  socket: TLSSocket,
  reason: string,
): void {
  recordSafely(audit, log, {
    identity: null,
    role: null,
    method: TLS_HANDSHAKE,
    jobId: null,
    outcome: 'denied',
    code: ErrorCode.Unauthenticated,
    peer: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`,
    reason,
  });
}
