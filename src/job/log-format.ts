/**
 * The on-disk format of a job's output log: one append-only file of framed
 * records, so that stdout and stderr keep their own offsets and their
 * interleaving, and so that a restarted server can rebuild the per-stream
 * counts from the file alone.
 *
 * Every record is a 16-byte header followed by its payload:
 *
 * | bytes | field                                                       |
 * |-------|-------------------------------------------------------------|
 * | 0     | magic 0x4a ('J'), also the format version                   |
 * | 1     | type: 1 DATA, 2 TRUNCATED, 3 SYNC                           |
 * | 2     | stream: 1 stdout, 2 stderr (0 for TRUNCATED and SYNC)       |
 * | 3     | reserved, 0                                                 |
 * | 4-7   | payload length, u32 little endian                           |
 * | 8-15  | DATA: offset of the payload's first byte in its stream;     |
 * |       | TRUNCATED: the output cap in bytes;                         |
 * |       | SYNC: wall-clock time in ms since the epoch; u64 LE         |
 *
 * A TRUNCATED record has no payload and appears at most once: where the job
 * reached the cap across both streams. Bytes after it are counted, not stored.
 *
 * A SYNC record dates the records after it: they were written at its time
 * (to the millisecond) and up to the next SYNC. Its 8-byte payload (u64 LE)
 * is its distance back to the previous SYNC record, 0 for the first: from the
 * last one (kept in the job record) a reader walks back to where a tail or a
 * time starts without reading the log from byte 0. The writer starts every
 * write whose clock reading differs from the last SYNC's with one, and one
 * every SYNC_INTERVAL_BYTES within a write, so no stretch between two is long
 * (log-seek.ts). Logs written before SYNC existed have none: their output is
 * undated, and a seek there reads from byte 0.
 *
 * The dropped-byte counts and the exit report live in the job record
 * (record-schema.ts). For a job that was running when the server died, a
 * restarted server rebuilds stored counts and digests by scanning the log
 * (log-scan.ts) and cuts off a torn last record there.
 */
import type { StreamName } from './types.js';

/** Size of a record header in bytes. */
export const HEADER_BYTES = 16;
/** First byte of every record (format version 1). */
export const MAGIC = 0x4a;
/** Record type of output bytes. */
export const TYPE_DATA = 1;
/** Record type of the truncation marker. */
export const TYPE_TRUNCATED = 2;
/** Record type of a time and seek point. */
export const TYPE_SYNC = 3;
/** Payload bytes of a SYNC record. */
const SYNC_PAYLOAD_BYTES = 8;
/** Size of a whole SYNC record. */
export const SYNC_BYTES = HEADER_BYTES + SYNC_PAYLOAD_BYTES;
/** Log bytes after which the writer puts another SYNC record even within one write. */
export const SYNC_INTERVAL_BYTES = 1024 * 1024;

/** A decoded record header. */
export type RecordHeader =
  | {
      readonly type: 'data';
      readonly stream: StreamName;
      readonly length: number;
      readonly offset: number;
    }
  | { readonly type: 'truncated'; readonly length: number; readonly capBytes: number }
  | { readonly type: 'sync'; readonly length: number; readonly timeMs: number };

const STREAM_CODES: Record<StreamName, number> = { stdout: 1, stderr: 2 };

/** Header of a DATA record. */
export function dataHeader(stream: StreamName, length: number, offset: number): Buffer {
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  header.writeUInt8(MAGIC, 0);
  header.writeUInt8(TYPE_DATA, 1);
  header.writeUInt8(STREAM_CODES[stream], 2);
  header.writeUInt8(0, 3);
  header.writeUInt32LE(length, 4);
  header.writeBigUInt64LE(BigInt(offset), 8);
  return header;
}

/** The TRUNCATED record, header only. */
export function truncatedHeader(capBytes: number): Buffer {
  const header = Buffer.alloc(HEADER_BYTES);
  header.writeUInt8(MAGIC, 0);
  header.writeUInt8(TYPE_TRUNCATED, 1);
  header.writeBigUInt64LE(BigInt(capBytes), 8);
  return header;
}

/** A whole SYNC record at log position `at`, dated `timeMs`, after the previous one at `previous` (null: none). */
export function syncRecord(at: number, timeMs: number, previous: number | null): Buffer {
  const record = Buffer.alloc(SYNC_BYTES);
  record.writeUInt8(MAGIC, 0);
  record.writeUInt8(TYPE_SYNC, 1);
  record.writeUInt32LE(SYNC_PAYLOAD_BYTES, 4);
  record.writeBigUInt64LE(BigInt(timeMs), 8);
  record.writeBigUInt64LE(BigInt(previous === null ? 0 : at - previous), HEADER_BYTES);
  return record;
}

/**
 * The previous SYNC's position from the SYNC record at `buf[0..SYNC_BYTES)`,
 * found at log position `at`; null for the first. Returns a description of
 * the damage when the bytes are not a SYNC record pointing backwards.
 */
export function decodeSync(
  buf: Buffer,
  at: number,
): { readonly timeMs: number; readonly previous: number | null } | string {
  const header = decodeHeader(buf, 0);
  if (typeof header === 'string') return header;
  if (header.type !== 'sync') return `a ${header.type} record where a sync record should be`;
  const back = Number(buf.readBigUInt64LE(HEADER_BYTES));
  if (back > at) return `sync record points ${back} bytes back, before the log's start`;
  return { timeMs: header.timeMs, previous: back === 0 ? null : at - back };
}

/**
 * Decodes the header at `buf[at..at+16)`. Returns a description of the
 * damage instead of a header when the bytes are not a valid header.
 */
export function decodeHeader(buf: Buffer, at: number): RecordHeader | string {
  const magic = buf.readUInt8(at);
  if (magic !== MAGIC) return `bad magic 0x${magic.toString(16)}`;
  const type = buf.readUInt8(at + 1);
  const length = buf.readUInt32LE(at + 4);
  const value = Number(buf.readBigUInt64LE(at + 8));
  if (type === TYPE_TRUNCATED) return { type: 'truncated', length, capBytes: value };
  if (type === TYPE_SYNC) {
    if (length !== SYNC_PAYLOAD_BYTES) return `sync record of ${length} bytes`;
    return { type: 'sync', length, timeMs: value };
  }
  if (type !== TYPE_DATA) return `unknown record type ${type}`;
  const code = buf.readUInt8(at + 2);
  if (code === STREAM_CODES.stdout)
    return { type: 'data', stream: 'stdout', length, offset: value };
  if (code === STREAM_CODES.stderr)
    return { type: 'data', stream: 'stderr', length, offset: value };
  return `unknown stream ${code}`;
}
