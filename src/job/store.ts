/**
 * Job records on disk: one `record.json` per job directory, replaced
 * atomically so that a crash at any instant leaves either the old or the new
 * record, never a mix (write a uniquely named temp file, fsync it, rename it
 * over record.json, fsync the directory: the POSIX rename is atomic, and the
 * fsyncs order the data before the name). Written when a job starts and when
 * it finishes (the final record through the file that reserved its room).
 */
import { randomBytes } from 'node:crypto';
import { open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, JobworkerError } from '../errors.js';
import { isValidJobId } from './ids.js';
import type { JobRecord } from './job.js';
import { parseRecord, serializeRecord } from './record-schema.js';

/** Name of a job's record file in its directory. */
export const RECORD_FILE = 'record.json';
/** Name of a job's output log in its directory. */
export const LOG_FILE = 'output.log';
/** Name of the file that reserves room for a running job's final record. */
export const RESERVE_FILE = 'record.reserve';
/** Room reserved beyond the start record's size (the final record adds counts and digests). */
const RESERVE_EXTRA_BYTES = 4096;

/** Whether `err` says the disk (or the quota) is full. */
export function isDiskFull(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/**
 * Codes a failed write of the state directory: disk full is
 * resource_exhausted, the rest internal. A resource_exhausted message reaches
 * the client as it is, so it names only the errno: the system's message
 * names server paths, and stays in `cause` for the log.
 */
export function storageError(err: unknown, what: string): JobworkerError {
  if (err instanceof JobworkerError) return err;
  if (isDiskFull(err)) {
    const code = (err as NodeJS.ErrnoException).code ?? 'ENOSPC';
    return new JobworkerError(
      ErrorCode.ResourceExhausted,
      `output storage full (${code}): ${what}`,
      {
        cause: err,
      },
    );
  }
  const detail = err instanceof Error ? err.message : String(err);
  return new JobworkerError(ErrorCode.Internal, `${what}: ${detail}`, { cause: err });
}

/** fsyncs a directory, so that entries created or renamed in it survive a crash. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Writes `text` into a uniquely named temp file in `dir` (two writes of one
 * file never share one), fsyncs it and renames it over `<dir>/<name>`; the
 * directory's fsync is the caller's. Rejects with the failed call's error;
 * the old file, if any, is then still intact, and no temp file is left behind.
 */
async function renameIntoPlace(dir: string, name: string, text: string): Promise<void> {
  const tmp = join(dir, `${name}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(tmp, 'wx', 0o600);
    try {
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, join(dir, name));
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
}

/** Atomically replaces `<dir>/<name>` with `text` ({@link renameIntoPlace}), then fsyncs `dir`. */
export async function replaceFile(dir: string, name: string, text: string): Promise<void> {
  await renameIntoPlace(dir, name, text);
  await syncDir(dir);
}

/** Waits for every promise; then rejects with the first failure, if any. */
async function settleAll(promises: readonly Promise<unknown>[]): Promise<void> {
  const failed = (await Promise.allSettled(promises)).find((r) => r.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
}

/**
 * Persists a starting job in `dir`, a new directory of `jobsDir`: its start
 * record and the room for its final one ({@link reserveRecordSpace}), written
 * side by side, then both directories fsynced side by side (the round trips
 * overlap; docs/benchmarks.md, issue 18). `alongside` is the creation of
 * another entry of `dir` (the output log, whose failure is its creator's to
 * report): the directory is fsynced once it settled. When this resolves, the
 * record, that entry, the job's directory and the reservation's entry are
 * durable (the reservation's zeros need no fsync: its blocks are allocated
 * at the write, or it fails with ENOSPC, and its content is overwritten).
 * Rejects with a coded error once every write has ended, so the caller may
 * remove `dir`.
 */
export async function writeStartRecord(
  jobsDir: string,
  dir: string,
  record: JobRecord,
  alongside: Promise<unknown>,
): Promise<void> {
  await settleAll([
    reserveRecordSpace(dir, record),
    renameIntoPlace(dir, RECORD_FILE, serializeRecord(record)).catch((err: unknown) => {
      throw storageError(err, `cannot write the record of job ${record.id}`);
    }),
    alongside.catch(() => undefined),
  ]);
  await settleAll([syncDir(dir), syncDir(jobsDir)]).catch((err: unknown) => {
    throw storageError(err, `cannot sync the directory of job ${record.id}`);
  });
}

/**
 * Atomically replaces `<dir>/record.json` with `record` ({@link replaceFile}).
 * Rejects with a coded error (resource_exhausted when the disk is full).
 */
export async function writeRecord(dir: string, record: JobRecord): Promise<void> {
  // Serialized now: the caller may change the record while this write waits.
  await replaceFile(dir, RECORD_FILE, serializeRecord(record)).catch((err: unknown) => {
    throw storageError(err, `cannot write the record of job ${record.id}`);
  });
}

/**
 * Reserves room for the job's final record: a file as large as the record
 * may become, written in full (no holes). {@link writeFinalRecord} writes the
 * final record into it, so that it needs no new space even when the job's
 * own output filled the disk.
 */
export async function reserveRecordSpace(dir: string, record: JobRecord): Promise<void> {
  const bytes = Buffer.byteLength(serializeRecord(record)) + RESERVE_EXTRA_BYTES;
  try {
    const handle = await open(join(dir, RESERVE_FILE), 'w', 0o600);
    try {
      await handle.writeFile(Buffer.alloc(bytes));
    } finally {
      await handle.close();
    }
  } catch (err) {
    throw storageError(err, `cannot reserve room for the record of job ${record.id}`);
  }
}

/**
 * Writes the final record of a job started with a reservation: into the
 * reservation itself (its blocks are allocated: no new space needed), fsync,
 * rename it over record.json, fsync the directory. A crash before the rename
 * leaves the start record, and the reservation to write into again. Reusing
 * the file instead of writing a new temp one and deleting the reservation
 * spares the file system one inode allocation and one deletion per job:
 * ext4's inode allocator skips every recently deleted inode, one buffer
 * lookup each, and that scan was the largest item of the server's kernel
 * time when starting many jobs (docs/benchmarks.md). Without a reservation
 * (none was made), a plain {@link writeRecord}.
 */
export async function writeFinalRecord(dir: string, record: JobRecord): Promise<void> {
  const reserve = join(dir, RESERVE_FILE);
  const text = Buffer.from(serializeRecord(record));
  let handle;
  try {
    handle = await open(reserve, 'r+');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return writeRecord(dir, record);
    throw storageError(err, `cannot open the reserved record of job ${record.id}`);
  }
  try {
    try {
      // writeFile loops until every byte is written (from position 0: just opened) and
      // throws on ENOSPC: a short write must never reach the rename.
      await handle.writeFile(text);
      await handle.truncate(text.length);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(reserve, join(dir, RECORD_FILE));
    await syncDir(dir);
  } catch (err) {
    throw storageError(err, `cannot write the record of job ${record.id}`);
  }
}

/** One job directory found under `<stateDir>/jobs`, as {@link scanJobsDir} classified it. */
export type ScannedEntry =
  | {
      readonly kind: 'record';
      readonly id: string;
      readonly dir: string;
      readonly record: JobRecord;
      readonly logSize: number | null;
    }
  | { readonly kind: 'half-made'; readonly id: string; readonly dir: string }
  | { readonly kind: 'damaged'; readonly id: string; readonly dir: string; readonly reason: string }
  | { readonly kind: 'foreign'; readonly name: string };

async function scanOne(jobsDir: string, name: string): Promise<ScannedEntry> {
  // Checked before the name is used to build any path below it.
  if (!isValidJobId(name)) return { kind: 'foreign', name };
  const dir = join(jobsDir, name);
  const info = await stat(dir).catch(() => null);
  if (info?.isDirectory() !== true) return { kind: 'foreign', name };
  let text: string;
  try {
    text = await readFile(join(dir, RECORD_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      return { kind: 'half-made', id: name, dir };
    return { kind: 'damaged', id: name, dir, reason: `record unreadable: ${String(err)}` };
  }
  const record = parseRecord(text, name);
  if (typeof record === 'string')
    return { kind: 'damaged', id: name, dir, reason: `record.json: ${record}` };
  const log = await stat(join(dir, LOG_FILE)).catch(() => null);
  return {
    kind: 'record',
    id: name,
    dir,
    record,
    logSize: log?.isFile() === true ? log.size : null,
  };
}

/** Most directories examined at once at start-up: bounds open files and memory. */
const SCAN_CONCURRENCY = 32;

/**
 * Reads and classifies every entry of `jobsDir` (missing: none). Entries are
 * examined SCAN_CONCURRENCY at a time; the result is in no particular order.
 */
export async function scanJobsDir(jobsDir: string): Promise<ScannedEntry[]> {
  const names = await readdir(jobsDir).catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw storageError(err, `cannot read ${jobsDir}`);
  });
  const out: ScannedEntry[] = [];
  for (let i = 0; i < names.length; i += SCAN_CONCURRENCY) {
    out.push(
      ...(await Promise.all(names.slice(i, i + SCAN_CONCURRENCY).map((n) => scanOne(jobsDir, n)))),
    );
  }
  return out;
}
