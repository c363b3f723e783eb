/**
 * Channel credentials whose TLS handshake has a time limit. grpc-js waits
 * for a handshake for ever, and closing the channel does not end it (its
 * Http2SubchannelConnector.shutdown() closes only an established session),
 * so a host that accepts the TCP connection and never answers would keep
 * jobctl from exiting after everything it owns has ended. Measured with
 * grpc-js 1.14.7: `run` on such a host printed its summary and then hung
 * until killed.
 */
import { ChannelCredentials } from '@grpc/grpc-js';

type Connector = ReturnType<ChannelCredentials['_createSecureConnector']>;

/** `inner`, with each handshake ended (its socket destroyed) after `timeoutMs`. */
export class HandshakeBoundCredentials extends ChannelCredentials {
  readonly #inner: ChannelCredentials;
  readonly #timeoutMs: number;

  constructor(inner: ChannelCredentials, timeoutMs: number) {
    super();
    this.#inner = inner;
    this.#timeoutMs = timeoutMs;
  }

  override _isSecure(): boolean {
    return this.#inner._isSecure();
  }

  override _equals(other: ChannelCredentials): boolean {
    return other === this;
  }

  override _createSecureConnector(
    ...args: Parameters<ChannelCredentials['_createSecureConnector']>
  ): Connector {
    const connector = this.#inner._createSecureConnector(...args);
    const timeoutMs = this.#timeoutMs;
    return {
      connect: (socket) => {
        let timer: NodeJS.Timeout | undefined;
        const timedOut = new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            // grpc-js reports this error, and destroys the socket; so does this.
            reject(new Error(`no TLS handshake within ${timeoutMs / 1000}s`));
            socket.destroy();
          }, timeoutMs);
        });
        return Promise.race([connector.connect(socket), timedOut]).finally(() => {
          clearTimeout(timer);
        });
      },
      waitForReady: () => connector.waitForReady(),
      getCallCredentials: () => connector.getCallCredentials(),
      destroy: () => {
        connector.destroy();
      },
    };
  }
}
