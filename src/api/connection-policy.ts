/**
 * The bounds on client connections, in one place: how many may be open or
 * still in their TLS handshake, and how long each phase of a connection may
 * last. TODO(configuration system): defaults only; tests and benchmarks pass
 * their own through ServerOptions.
 */

/** Bounds on connections (see {@link DEFAULT_CONNECTION_POLICY}). */
export interface ConnectionPolicy {
  /** Most connections past their TLS handshake; one more is closed at once. */
  readonly maxConnections: number;
  /** Most of them with one client certificate identity (CN), so that no user holds every slot. */
  readonly maxConnectionsPerIdentity: number;
  /** Most connections still in their TLS handshake; a new one pushes out the oldest. */
  readonly maxHandshaking: number;
  /** The same, per peer IPv4 address or IPv6 /64 (one host's usual share), so that one peer cannot hold them all. */
  readonly maxHandshakingPerPeer: number;
  /** A TLS handshake not done by then is dropped. */
  readonly handshakeTimeoutMs: number;
  /** A connection without a call for this long is closed gracefully. */
  readonly idleTimeoutMs: number;
  /** After this long without a frame either way the server sends a PING (HTTP/2 keepalive)... */
  readonly keepaliveMs: number;
  /** ...and drops the connection if the ACK takes longer than this. */
  readonly keepaliveTimeoutMs: number;
  /** A connection is closed by this age, and by its client certificate's notAfter if sooner. */
  readonly maxAgeMs: number;
  /**
   * Before such a close, and after a GOAWAY either way, the calls in flight
   * have this long to finish (no new ones are taken); the rest then end
   * UNAVAILABLE with the reason.
   */
  readonly drainGraceMs: number;
}

/** The defaults; docs/rfd/0001-jobworker.md ("Connections") says why each. */
export const DEFAULT_CONNECTION_POLICY: ConnectionPolicy = {
  maxConnections: 1024,
  maxConnectionsPerIdentity: 64,
  maxHandshaking: 256,
  maxHandshakingPerPeer: 64,
  handshakeTimeoutMs: 5_000,
  idleTimeoutMs: 120_000,
  keepaliveMs: 10_000,
  keepaliveTimeoutMs: 5_000,
  maxAgeMs: 3_600_000,
  drainGraceMs: 10_000,
};

/** setTimeout's longest delay: a longer one fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The defaults with `overrides` applied; throws a RangeError naming a field out of range. */
export function connectionPolicy(overrides: Partial<ConnectionPolicy> = {}): ConnectionPolicy {
  const policy = { ...DEFAULT_CONNECTION_POLICY, ...overrides };
  for (const [name, value] of Object.entries(policy)) {
    if (!Number.isInteger(value) || value < 1 || value > MAX_TIMER_MS) {
      throw new RangeError(
        `connection policy ${name} is ${String(value)}; expected 1..${MAX_TIMER_MS}`,
      );
    }
  }
  if (policy.drainGraceMs >= policy.maxAgeMs) {
    throw new RangeError(
      `connection policy drainGraceMs (${policy.drainGraceMs}) must be below maxAgeMs (${policy.maxAgeMs})`,
    );
  }
  return policy;
}
