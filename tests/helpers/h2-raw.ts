/**
 * A hand-written HTTP/2 client over node:tls for the hostile-client tests:
 * it sends the bytes grpc-js never would (a garbage HPACK block, a frame of
 * a bad size, DATA on stream 0) and reports what the server sent back and
 * when it closed the connection. Frame layout: RFC 9113 section 4.1.
 */
import { once } from 'node:events';
import { connect, type TLSSocket } from 'node:tls';
import type { TlsIdentity } from '../../src/api/index.js';

/** The client connection preface (RFC 9113 section 3.4). */
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/** Frame types used here (RFC 9113 section 6). */
export const FrameType = {
  Data: 0,
  Headers: 1,
  Settings: 4,
  Ping: 6,
  Goaway: 7,
} as const;

/** Frame flags used here. */
export const Flag = { Ack: 0x1, EndHeaders: 0x4 } as const;

/** One frame: a 9-byte header and its payload. */
export function frame(
  type: number,
  flags: number,
  streamId: number,
  payload = Buffer.alloc(0),
): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId, 5);
  return Buffer.concat([header, payload]);
}

/** Protocol violations a raw client can send, each right after the preface and SETTINGS. */
export const BAD_FRAMES = {
  // An HPACK integer that never ends: a COMPRESSION_ERROR (RFC 7541 section 5.1).
  'garbage HPACK block': frame(FrameType.Headers, Flag.EndHeaders, 1, Buffer.alloc(6, 0xff)),
  // PING payloads are exactly 8 bytes: a FRAME_SIZE_ERROR (RFC 9113 section 6.7).
  'PING of a bad size': frame(FrameType.Ping, 0, 0, Buffer.alloc(7)),
  // DATA must belong to a stream: a PROTOCOL_ERROR (RFC 9113 section 6.1).
  'DATA on stream 0': frame(FrameType.Data, 0, 0, Buffer.from('x')),
} as const;

/** A raw mTLS connection to a test server, with what it has received so far. */
export interface RawConnection {
  readonly socket: TLSSocket;
  /** Types of the frames received, in order. */
  readonly received: number[];
  /** Error code of the first GOAWAY received, if any. */
  goawayCode(): number | undefined;
  /** Resolves when the server has closed the connection (end or reset). */
  readonly closed: Promise<void>;
  /** Answers the server's PINGs and SETTINGS (on by default): a live, well-behaved peer. */
  answer: boolean;
}

/** Opens an mTLS connection with `identity` and ALPN h2, and sends the preface and an empty SETTINGS. */
export async function rawConnect(port: number, identity: TlsIdentity): Promise<RawConnection> {
  const socket = connect({
    host: '127.0.0.1',
    port,
    servername: 'localhost',
    ...identity,
    ALPNProtocols: ['h2'],
  });
  await once(socket, 'secureConnect');
  const received: number[] = [];
  let goaway: number | undefined;
  let pending = Buffer.alloc(0);
  const connection: RawConnection = {
    socket,
    received,
    goawayCode: () => goaway,
    closed: new Promise((resolve) => {
      socket.once('close', () => {
        resolve();
      });
    }),
    answer: true,
  };
  socket.on('error', () => undefined);
  socket.on('data', (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 9) {
      const length = pending.readUIntBE(0, 3);
      if (pending.length < 9 + length) break;
      const type = pending[3] ?? -1;
      const flags = pending[4] ?? 0;
      const payload = pending.subarray(9, 9 + length);
      received.push(type);
      if (type === FrameType.Goaway && goaway === undefined) goaway = payload.readUInt32BE(4);
      if (connection.answer && (flags & Flag.Ack) === 0) {
        if (type === FrameType.Ping) socket.write(frame(FrameType.Ping, Flag.Ack, 0, payload));
        if (type === FrameType.Settings) socket.write(frame(FrameType.Settings, Flag.Ack, 0));
      }
      pending = pending.subarray(9 + length);
    }
  });
  socket.write(Buffer.concat([PREFACE, frame(FrameType.Settings, 0, 0)]));
  return connection;
}
