/**
 * Response encoding for the output-carrying streams. ts-proto's writer
 * grows a zero-filled buffer by doubling, shifts a 64 KiB chunk once more
 * for its length prefix, copies it out in `finish()` and once more in the
 * generated `Buffer.from()`: per follower and per message, the largest
 * share of a fan-out's CPU and garbage (docs/benchmarks.md). Here a chunk
 * event is written into one Buffer of its exact size with one copy of its
 * bytes; the small fields around it are still ts-proto's, and the result is
 * byte for byte what ts-proto writes (encode.test.ts). Every other event
 * goes through ts-proto unchanged.
 *
 * Followers of one live job that cut the same chunk get the same Buffer
 * (src/job/shared-blocks.ts): its encoding is kept beside it, in a WeakMap
 * that lets it go with the Buffer, and given to every call that sends the
 * same chunk (grpc-js copies a message into its frame and never writes
 * into it). A cached encoding is used only where the fields around the
 * data encode to the same bytes.
 */
import { JobServiceService, OutputChunk } from '../gen/jobworker/v1/job_service.js';

/** A response whose oneof `event` has the chunk in field 1 (StreamOutputResponse, AttachResponse). */
interface ChunkEvents {
  readonly event?: { readonly $case: string; readonly value: unknown } | undefined;
}

/** Tag of field 1, length-delimited: the chunk of both responses. */
const CHUNK_TAG = 0x0a;
/** Tag of OutputChunk.data (field 3, length-delimited). */
const DATA_TAG = 0x1a;
const EMPTY = Buffer.alloc(0);

function varintSize(value: number): number {
  let size = 1;
  for (let rest = value >>> 7; rest !== 0; rest >>>= 7) size++;
  return size;
}

/** Writes `value` (below 2^32: checked by the caller) as a varint at `at`; returns the position after it. */
function putVarint(out: Buffer, at: number, value: number): number {
  let rest = value >>> 0;
  while (rest >= 0x80) {
    out[at++] = (rest & 0x7f) | 0x80;
    rest >>>= 7;
  }
  out[at++] = rest;
  return at;
}

interface Encoded {
  readonly head: Uint8Array;
  readonly tail: Uint8Array;
  readonly out: Buffer;
}

/** `serialize` with its chunk events written by hand (see the module comment). */
export function chunkSerializer<T extends ChunkEvents>(
  serialize: (value: T) => Buffer,
): (value: T) => Buffer {
  // One per response type: the same chunk is a different message in each.
  const encoded = new WeakMap<Uint8Array, Encoded>();
  return (value) => {
    const { event } = value;
    if (event?.$case !== 'chunk') return serialize(value);
    const chunk = event.value as OutputChunk;
    // In ts-proto's field order: stream and offset, the data, then the time.
    const head = OutputChunk.encode({ ...chunk, data: EMPTY, storedAt: undefined }).finish();
    const tail =
      chunk.storedAt === undefined
        ? EMPTY
        : OutputChunk.encode({
            stream: 0,
            offset: 0,
            data: EMPTY,
            storedAt: chunk.storedAt,
          }).finish();
    const { data } = chunk;
    const known = encoded.get(data);
    if (known !== undefined && equal(known.head, head) && equal(known.tail, tail)) return known.out;
    const dataField = data.length === 0 ? 0 : 1 + varintSize(data.length) + data.length;
    const inner = head.length + dataField + tail.length;
    // Beyond a 32-bit length ts-proto's own refusal stands (no such chunk is ever read).
    if (inner > 0xffff_ffff) return serialize(value);
    const out = Buffer.allocUnsafe(1 + varintSize(inner) + inner);
    let at = 0;
    out[at++] = CHUNK_TAG;
    at = putVarint(out, at, inner);
    out.set(head, at);
    at += head.length;
    if (dataField !== 0) {
      out[at++] = DATA_TAG;
      at = putVarint(out, at, data.length);
      out.set(data, at);
      at += data.length;
    }
    out.set(tail, at);
    encoded.set(data, { head, tail, out });
    return out;
  };
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}

/** JobService's definition with {@link chunkSerializer} on the calls that carry output. */
export const jobServiceWire: typeof JobServiceService = {
  ...JobServiceService,
  streamOutput: {
    ...JobServiceService.streamOutput,
    responseSerialize: chunkSerializer(JobServiceService.streamOutput.responseSerialize),
  },
  attach: {
    ...JobServiceService.attach,
    responseSerialize: chunkSerializer(JobServiceService.attach.responseSerialize),
  },
};
