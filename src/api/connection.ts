/**
 * The life of one client connection after its TLS handshake: the HTTP/2
 * session grpc-js serves on it is watched here, and the socket is ended on
 * every path within a bound.
 *
 * Why not only grpc-js's own options: when nghttp2 ends a session for a
 * protocol error (a garbage HPACK block, a frame of a bad size, DATA on
 * stream 0) it sends GOAWAY and wants neither to read nor to write again;
 * Node 20 then stops reading the socket and emits no event at all, so the
 * socket stays open (CLOSE-WAIT once the peer goes) until something destroys
 * it. Such a session never sends a PING either: the keepalive probe below
 * finds it, tells it from a silent peer (its PING is still queued), and says
 * which in the log. The idle timeout, the maximum age and the certificate's
 * end are kept here too, so that every close has one named reason.
 */
import { setMaxListeners } from 'node:events';
import { constants as h2, type Http2Session, type ServerHttp2Stream } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { ErrorCode, JobworkerError } from '../errors.js';
import type { ConnectionPolicy } from './connection-policy.js';
import { CloseReason, type ConnectionStats } from './connection-stats.js';

/**
 * nghttp2's rapid-reset guard (CVE-2023-44487; nghttp2 lib/nghttp2_session.h
 * NGHTTP2_DEFAULT_STREAM_RESET_BURST / _RATE): a token bucket of stream
 * resets received, refilled per whole second; when it is empty nghttp2 sends
 * GOAWAY(INTERNAL_ERROR) and the client's Node fails every call on the
 * connection (grpc-node#2872). Node 20 cannot configure it
 * (streamResetBurst/Rate arrived in later releases).
 */
const NGHTTP2_RESET_BURST = 1000;
const NGHTTP2_RESET_RATE_PER_S = 33;
/** Resets left in the bucket when the connection is drained instead (GOAWAY NO_ERROR), well before nghttp2's. */
const RESET_DRAIN_AT = 200;
/** After the hard close of a drain, how long the calls' statuses have to reach the socket. */
const FLUSH_MS = 1000;

/** Where a supervised connection reports and what bounds it. */
export interface ConnectionContext {
  readonly policy: ConnectionPolicy;
  readonly stats: ConnectionStats;
  readonly log: Logger;
}

/** One established client connection and its HTTP/2 session. */
export class Connection {
  /** `address:port` of the peer, as grpc-js's `call.getPeer()` spells it. */
  readonly peer: string;
  readonly #socket: TLSSocket;
  readonly #context: ConnectionContext;
  /** Aborted (reason: an UNAVAILABLE JobworkerError) when the connection's calls must end now. */
  readonly #calls = new AbortController();
  readonly #timers = new Set<NodeJS.Timeout>();
  #session: Http2Session | null = null;
  #streams = 0;
  #idle: NodeJS.Timeout | null = null;
  #pinging = false;
  #draining = false;
  /** When the calls still open on a draining connection are ended (ms since the epoch). */
  #hardCloseAt = Infinity;
  #closed = false;
  #resetTokens = NGHTTP2_RESET_BURST;
  #resetSecond = 0;

  constructor(socket: TLSSocket, peer: string, context: ConnectionContext) {
    // Each open call of the connection listens on it: hundreds are normal, not a leak.
    setMaxListeners(0, this.#calls.signal);
    this.#socket = socket;
    this.peer = peer;
    this.#context = context;
    socket.once('close', () => {
      this.#closed = true;
      for (const timer of this.#timers) clearTimeout(timer);
      this.#timers.clear();
      // Its calls are not aborted here: grpc-js cancels them (a reset or vanished client is a cancel).
      if (this.#idle !== null) clearTimeout(this.#idle);
    });
  }

  /** Aborts when the connection's calls must end (drain over, connection dropped). */
  get signal(): AbortSignal {
    return this.#calls.signal;
  }

  /**
   * Watches `session` (grpc-js serves it) and schedules the end of the
   * connection: at its maximum age or its client certificate's `notAfter`,
   * whichever comes first, drained so that the calls end by then.
   */
  attach(session: Http2Session, notAfter: Date): void {
    this.#session = session;
    const { policy } = this.#context;
    session.on('stream', (stream: ServerHttp2Stream) => {
      this.#onStream(stream);
    });
    session.on('goaway', (code: number) => {
      // Node closes the session itself (at once for an error code, after the open streams for NO_ERROR).
      this.#drain(
        CloseReason.GoawayReceived,
        `client sent GOAWAY (HTTP/2 error ${code})`,
        policy.drainGraceMs,
      );
    });
    session.on('error', (err: NodeJS.ErrnoException) => {
      // From Node 24 on, a session nghttp2 ended over a bad frame errs with
      // ERR_HTTP2_ERROR (Node 20 stays silent: the PING probe finds it).
      // Otherwise a reset by the peer, mostly: grpc-js cancels the calls, audited as cancelled.
      if (err.code === 'ERR_HTTP2_ERROR') {
        this.#note(
          CloseReason.ProtocolError,
          `HTTP/2 session ended by a protocol error (${err.message})`,
        );
      } else {
        this.#note(CloseReason.SessionError, `HTTP/2 session error ${err.code ?? err.message}`);
      }
      this.#closed = true;
      this.#socket.destroy();
    });
    session.on('frameError', (type: number, code: number, id: number) => {
      this.#context.log.debug({ peer: this.peer, type, code, stream: id }, 'HTTP/2 frame error');
    });
    this.#after(policy.keepaliveMs, () => {
      this.#probe();
    });
    this.#armIdle();
    const byAge = Date.now() + policy.maxAgeMs;
    const expires = notAfter.getTime();
    const [closeBy, reason, why] =
      expires <= byAge
        ? [
            expires,
            CloseReason.CertificateExpiry,
            `client certificate expires at ${notAfter.toISOString()}`,
          ]
        : [
            byAge,
            CloseReason.MaxAge,
            `connection reached its maximum age of ${policy.maxAgeMs} ms`,
          ];
    const drainAt = Math.max(0, closeBy - policy.drainGraceMs - Date.now());
    this.#after(drainAt, () => {
      this.#drain(reason, why, Math.max(0, closeBy - Date.now()));
    });
  }

  /** Ends the connection now: its calls are aborted, the socket destroyed. Idempotent. */
  destroy(reason: CloseReason, detail: string): void {
    if (this.#closed) return;
    this.#note(reason, detail);
    this.#closed = true;
    this.#calls.abort(new JobworkerError(ErrorCode.Unavailable, `connection closed: ${detail}`));
    this.#socket.destroy();
  }

  #onStream(stream: ServerHttp2Stream): void {
    this.#streams++;
    if (this.#idle !== null) {
      clearTimeout(this.#idle);
      this.#idle = null;
    }
    stream.once('close', () => {
      this.#streams--;
      // Reset by the peer, or closed before our trailers went out: nghttp2 saw
      // the reset even when Node closed the stream before it could record it.
      // A trailers-only answer (an error before any message) counts too: it
      // cannot be told from one to a stream the client had already reset
      // (measured: such answers went to streams of the cancel test), and
      // counting too many only drains a connection early, gracefully.
      // TODO(Node >= 22): set nghttp2's streamResetBurst/Rate and drop this count.
      if (stream.rstCode !== h2.NGHTTP2_NO_ERROR || stream.sentTrailers === undefined) {
        this.#onReset();
      }
      if (this.#streams > 0) return;
      if (this.#draining) this.#linger();
      else this.#armIdle();
    });
  }

  #armIdle(): void {
    if (this.#closed || this.#draining) return;
    this.#idle = setTimeout(() => {
      this.#idle = null;
      this.#drain(
        CloseReason.Idle,
        `no call for ${this.#context.policy.idleTimeoutMs} ms`,
        this.#context.policy.drainGraceMs,
      );
    }, this.#context.policy.idleTimeoutMs);
  }

  /** Mirrors nghttp2's reset bucket and drains the connection before nghttp2 would kill it. */
  #onReset(): void {
    const second = Math.floor(Date.now() / 1000);
    const refill = (second - this.#resetSecond) * NGHTTP2_RESET_RATE_PER_S;
    this.#resetSecond = second;
    this.#resetTokens = Math.min(NGHTTP2_RESET_BURST, this.#resetTokens + refill) - 1;
    if (this.#resetTokens <= RESET_DRAIN_AT && !this.#draining) {
      // No deadline of its own: the calls open on it are the client's, not at fault (max age still applies).
      this.#drain(
        CloseReason.ResetBudget,
        'too many cancelled streams on one connection; new calls go to a new one',
        null,
      );
    }
  }

  /** Every `keepaliveMs`: PING, and drop the connection if no ACK comes in time. */
  #probe(): void {
    const session = this.#session;
    // A closed (draining) session sends no PING; its hard close or the peer's end bounds it.
    if (session === null || session.closed || this.#pinging || this.#closed) return;
    this.#pinging = true;
    const timeout = this.#after(this.#context.policy.keepaliveTimeoutMs, () => {
      // A PING nghttp2 never sent means the session was ended on our side (a protocol error, GOAWAY sent).
      if (!session.destroyed && (session.state.outboundQueueSize ?? 0) > 0) {
        this.destroy(CloseReason.ProtocolError, 'HTTP/2 session ended by a protocol error');
      } else {
        this.destroy(
          CloseReason.Unresponsive,
          `no PING ACK within ${this.#context.policy.keepaliveTimeoutMs} ms`,
        );
      }
    });
    const sent = session.ping((err) => {
      this.#pinging = false;
      this.#clear(timeout);
      if (err === null && !this.#closed) {
        this.#after(this.#context.policy.keepaliveMs, () => {
          this.#probe();
        });
      }
    });
    if (!sent) {
      this.#clear(timeout);
      this.destroy(CloseReason.Unresponsive, 'too many PINGs unanswered');
    }
  }

  /**
   * Graceful close: GOAWAY (no new calls; the client reconnects for its next
   * ones), then `hardInMs` (null: no limit of this drain's own) for the open
   * calls to finish, then the rest end UNAVAILABLE with `detail` and the
   * socket is closed. A second drain only brings the hard close forward.
   */
  #drain(reason: CloseReason, detail: string, hardInMs: number | null): void {
    if (this.#closed) return;
    const hardAt = hardInMs === null ? Infinity : Date.now() + hardInMs;
    if (this.#draining && hardAt >= this.#hardCloseAt) return;
    this.#note(reason, detail);
    if (!this.#draining) {
      this.#draining = true;
      if (this.#idle !== null) clearTimeout(this.#idle);
      // GOAWAY NO_ERROR; Node ends the session once its streams have (received GOAWAY: Node already did).
      const session = this.#session;
      if (session !== null && !session.closed) session.close();
      if (this.#streams === 0) this.#linger();
    }
    if (hardInMs === null) return;
    this.#hardCloseAt = hardAt;
    this.#after(hardInMs, () => {
      if (this.#hardCloseAt !== hardAt) return; // a sooner one took over
      this.#calls.abort(new JobworkerError(ErrorCode.Unavailable, `connection closed: ${detail}`));
      this.#after(FLUSH_MS, () => {
        this.#closed = true;
        this.#socket.destroy();
      });
    });
  }

  /**
   * The last call of a draining connection has ended: Node ends the socket
   * once the GOAWAY is out and then waits for the peer's end, for ever;
   * the socket is destroyed should the peer not end it in time.
   */
  #linger(): void {
    this.#after(FLUSH_MS, () => {
      this.#closed = true;
      this.#socket.destroy();
    });
  }

  #note(reason: CloseReason, detail: string): void {
    this.#context.stats.count(reason);
    this.#context.log.info({ peer: this.peer, reason }, `closing connection: ${detail}`);
  }

  #after(ms: number, run: () => void): NodeJS.Timeout {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      run();
    }, ms);
    this.#timers.add(timer);
    return timer;
  }

  #clear(timer: NodeJS.Timeout): void {
    clearTimeout(timer);
    this.#timers.delete(timer);
  }
}
