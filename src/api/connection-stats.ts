/**
 * Why connections were closed, counted per reason: the closed set of
 * reasons the listener and each connection log, and one counter each. The
 * server shows them in its log at shutdown and through
 * `JobworkerServer.connectionStats`.
 */

/** Every reason a connection is closed or refused by the server. */
export const CloseReason = {
  /** The TLS handshake failed (protocol version, cipher, group, signature, a reset). */
  HandshakeFailed: 'handshake_failed',
  /** The TLS handshake did not end within its deadline. */
  HandshakeTimeout: 'handshake_timeout',
  /** Pushed out of the handshake budget (total or per address) by a newer connection. */
  HandshakeEvicted: 'handshake_evicted',
  /** Handshake done, client certificate refused (unverified, no clientAuth EKU, key type, no h2). */
  ClientRefused: 'client_refused',
  /** The most established connections were open already. */
  ConnectionLimit: 'connection_limit',
  /** The client certificate's identity had the most connections open already. */
  IdentityConnectionLimit: 'identity_connection_limit',
  /** nghttp2 ended the session for a protocol error (GOAWAY sent) and the peer stayed. */
  ProtocolError: 'protocol_error',
  /** The HTTP/2 session emitted an error. */
  SessionError: 'session_error',
  /** No PING ACK within the keepalive timeout. */
  Unresponsive: 'unresponsive',
  /** The client sent GOAWAY. */
  GoawayReceived: 'goaway_received',
  /** No call for the idle timeout. */
  Idle: 'idle',
  /** The connection reached its maximum age. */
  MaxAge: 'max_age',
  /** The client certificate's notAfter came. */
  CertificateExpiry: 'certificate_expiry',
  /** So many streams were reset that nghttp2 would soon end the connection with an error. */
  ResetBudget: 'reset_budget',
  /** The server shut down with the connection still open. */
  Shutdown: 'shutdown',
} as const;

/** One of {@link CloseReason}. */
export type CloseReason = (typeof CloseReason)[keyof typeof CloseReason];

/**
 * The reasons that refuse a connection before it serves a call (its TLS
 * handshake, its client certificate, the connection budgets); every other
 * reason closes an established one.
 */
export const REFUSAL_REASONS: ReadonlySet<CloseReason> = new Set([
  CloseReason.HandshakeFailed,
  CloseReason.HandshakeTimeout,
  CloseReason.HandshakeEvicted,
  CloseReason.ClientRefused,
  CloseReason.ConnectionLimit,
  CloseReason.IdentityConnectionLimit,
]);

/** Counters of closed connections, by reason. */
export class ConnectionStats {
  readonly #counts = new Map<CloseReason, number>();

  /** Adds one close for `reason`. */
  count(reason: CloseReason): void {
    this.#counts.set(reason, (this.#counts.get(reason) ?? 0) + 1);
  }

  /** Every reason with its count (0 for those not seen). */
  snapshot(): Record<CloseReason, number> {
    const all = {} as Record<CloseReason, number>;
    for (const reason of Object.values(CloseReason)) all[reason] = this.#counts.get(reason) ?? 0;
    return all;
  }
}
