/**
 * Request decoding that never throws into grpc-js (which would answer
 * INTERNAL) and names the field of a 64-bit integer JavaScript cannot hold.
 * ts-proto's decoders refuse a uint64 or int64 beyond 2^53-1 with an error
 * that names no field; here the reader hands them a stand-in that decodes
 * to NaN instead, and the NaN's place in the decoded message names the field.
 */
import { BinaryReader } from '@bufbuild/protobuf/wire';
import type { Definition } from './call.js';
import { protoFieldName } from './validate.js';

/** Stands in for a request that could not be decoded, so the seam can answer INVALID_ARGUMENT. */
export class Undecodable {
  readonly message: string;
  constructor(message: string) {
    this.message = message;
  }
}

/** ts-proto's longToNumber reads a 64-bit value through toString(): this one reads as NaN. */
const OUT_OF_RANGE = { toString: () => 'NaN' };

const MAX = BigInt(Number.MAX_SAFE_INTEGER);

/** A reader that records 64-bit values beyond ±(2^53-1) and returns {@link OUT_OF_RANGE} for them. */
class SafeIntegerReader extends BinaryReader {
  readonly outOfRange: string[] = [];

  override uint64(): bigint | string {
    return this.#check(super.uint64());
  }

  override int64(): bigint | string {
    return this.#check(super.int64());
  }

  #check(value: bigint | string): bigint | string {
    const big = BigInt(value);
    if (big <= MAX && big >= -MAX) return value;
    this.outOfRange.push(String(value));
    return OUT_OF_RANGE as unknown as string;
  }
}

/** Paths (proto field names) of the NaN numbers in `value`, in the message's field order. */
function nanPaths(value: unknown, path: string[] = []): string[] {
  if (typeof value === 'number') return Number.isNaN(value) ? [path.join('.')] : [];
  if (typeof value !== 'object' || value === null || value instanceof Uint8Array) return [];
  return Object.entries(value).flatMap(([key, v]) => nanPaths(v, [...path, protoFieldName(key)]));
}

function outOfRangeMessage(paths: readonly string[], values: readonly string[]): string {
  const [value] = values;
  const what =
    paths.length === 1 && values.length === 1 && value !== undefined
      ? `${paths.join('')}: ${value} is`
      : `${paths.join(', ')} are`;
  return `${what} beyond ${Number.MAX_SAFE_INTEGER} (2^53-1), the largest integer this server takes`;
}

/** Decodes `bytes` with `decode`; an Undecodable for what it cannot decode or hold. */
export function decodeRequest(decode: (bytes: Buffer) => unknown, bytes: Buffer): unknown {
  const reader = new SafeIntegerReader(bytes);
  let request: unknown;
  try {
    // The generated decoders take a BinaryReader in place of the bytes (ts-proto's decode(input)).
    request = decode(reader as unknown as Buffer);
  } catch (err) {
    return new Undecodable(
      `request could not be decoded: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  if (reader.outOfRange.length === 0) return request;
  return new Undecodable(outOfRangeMessage(nanPaths(request), reader.outOfRange));
}

/** `definition` with request decoders that do not throw (see {@link decodeRequest}). */
export function withSafeDecoding<D extends Definition>(definition: D): D {
  const safe: Record<string, unknown> = {};
  for (const [name, method] of Object.entries(definition)) {
    safe[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer): unknown =>
        decodeRequest((b) => method.requestDeserialize(b), bytes),
    };
  }
  return safe as D;
}
