/**
 * Rebuilds a job's output summary from its log alone: per-stream stored
 * bytes and SHA-256 digests, whether the TRUNCATED record is there, where
 * the last SYNC record is, and the length of the valid prefix. Used at start-up for jobs that were running
 * when the server died: their record has no final counts, and the last
 * record of the log may be torn (the server died mid-write). Everything from
 * the first incomplete or invalid record on is cut off.
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { decodeHeader, decodeSync, HEADER_BYTES, SYNC_BYTES } from './log-format.js';
import type { StreamName } from './types.js';

/** What a scan found. */
export interface LogScan {
  /** Bytes of whole, valid records from the start of the file. */
  readonly validLength: number;
  /** File length; more than validLength when a torn or damaged tail was found. */
  readonly fileLength: number;
  readonly truncated: boolean;
  readonly streams: Record<
    StreamName,
    { readonly storedBytes: number; readonly sha256Hex: string }
  >;
  /** Position of the last SYNC record in the valid prefix, or null (none). */
  readonly lastSyncAt: number | null;
  /** Why the scan stopped before the end of the file, or null. */
  readonly damage: string | null;
}

/** Size of the scan's read buffer. */
const SCAN_BUFFER_BYTES = 1024 * 1024;

/** Scans the log at `path`; rejects only if the file cannot be opened or read. */
export async function scanLog(path: string): Promise<LogScan> {
  const file = await open(path, 'r');
  try {
    const fileLength = (await file.stat()).size;
    const hashes = { stdout: createHash('sha256'), stderr: createHash('sha256') };
    const stored = { stdout: 0, stderr: 0 };
    let truncated = false;
    let pos = 0;
    let damage: string | null = null;
    let lastSyncAt: number | null = null;
    const header = Buffer.alloc(SYNC_BYTES);
    const buf = Buffer.allocUnsafe(SCAN_BUFFER_BYTES);
    while (pos < fileLength) {
      if (fileLength - pos < HEADER_BYTES) {
        damage = `torn record header at byte ${pos}`;
        break;
      }
      await file.read(header, 0, HEADER_BYTES, pos);
      const h = decodeHeader(header, 0);
      if (typeof h === 'string') {
        damage = `${h} at byte ${pos}`;
        break;
      }
      if (pos + HEADER_BYTES + h.length > fileLength) {
        damage = `torn record at byte ${pos}`;
        break;
      }
      if (h.type === 'truncated') {
        truncated = true;
        pos += HEADER_BYTES + h.length;
        continue;
      }
      if (h.type === 'sync') {
        // The chain readers walk back must hold: each SYNC points at the one before.
        await file.read(header, HEADER_BYTES, h.length, pos + HEADER_BYTES);
        const sync = decodeSync(header, pos);
        if (typeof sync === 'string' || sync.previous !== lastSyncAt) {
          damage = `sync record at byte ${pos} does not point at the previous one`;
          break;
        }
        lastSyncAt = pos;
        pos += SYNC_BYTES;
        continue;
      }
      if (h.offset !== stored[h.stream]) {
        damage = `${h.stream} record at byte ${pos} has offset ${h.offset}, expected ${stored[h.stream]}`;
        break;
      }
      // The payload goes through the hash in buffer-sized pieces: memory stays bounded.
      let left = h.length;
      let at = pos + HEADER_BYTES;
      while (left > 0) {
        const n = Math.min(left, buf.length);
        await file.read(buf, 0, n, at);
        hashes[h.stream].update(buf.subarray(0, n));
        left -= n;
        at += n;
      }
      stored[h.stream] += h.length;
      pos = at;
    }
    return {
      validLength: pos,
      fileLength,
      truncated,
      lastSyncAt,
      damage,
      streams: {
        stdout: { storedBytes: stored.stdout, sha256Hex: hashes.stdout.digest('hex') },
        stderr: { storedBytes: stored.stderr, sha256Hex: hashes.stderr.digest('hex') },
      },
    };
  } finally {
    await file.close();
  }
}
