/**
 * The persisted job record: `<stateDir>/jobs/<id>/record.json`, a JSON object
 * with a `version` field. This module turns parsed JSON back into a
 * {@link JobRecord}, checking every field's type, so that nothing untyped from
 * the disk reaches the rest of the library: a record written by another
 * version, edited by hand or damaged is refused with the field it trips on.
 */
import { NOBODY } from '../isolation/index.js';
import type { EndReason, JobState } from './types.js';
import type { JobRecord, StreamRecord } from './job.js';

/** Format version of record.json; bump on an incompatible change. */
export const RECORD_VERSION = 1;

/** The record as stored: the job's record plus the format version. */
export type StoredRecord = JobRecord & { readonly version: typeof RECORD_VERSION };

const STATES: readonly JobState[] = ['running', 'stopping', 'finished'];
const END_REASONS: readonly EndReason[] = [
  'exited',
  'signaled',
  'oom_killed',
  'stopped',
  'stop_escalated',
  'lost',
  'timed_out',
];

/** Thrown (and caught by {@link parseRecord}) at the first field of the wrong type. */
class ShapeError extends Error {}

type Obj = Readonly<Record<string, unknown>>;

function obj(v: unknown, name: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new ShapeError(`${name} is not an object`);
  return v as Obj;
}
function str(o: Obj, k: string): string {
  const v = o[k];
  if (typeof v !== 'string') throw new ShapeError(`${k} is not a string`);
  return v;
}
function bool(o: Obj, k: string): boolean {
  const v = o[k];
  if (typeof v !== 'boolean') throw new ShapeError(`${k} is not a boolean`);
  return v;
}
/** A non-negative safe integer (counts, byte sizes, times in ms). */
function count(o: Obj, k: string): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    throw new ShapeError(`${k} is not a non-negative integer`);
  return v;
}
function orNull<T>(o: Obj, k: string, read: (o: Obj, k: string) => T): T | null {
  return o[k] === null ? null : read(o, k);
}
function int(o: Obj, k: string): number {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isSafeInteger(v))
    throw new ShapeError(`${k} is not an integer`);
  return v;
}
function oneOf<T extends string>(o: Obj, k: string, values: readonly T[]): T {
  const v = o[k];
  const found = values.find((x) => x === v);
  if (found === undefined) throw new ShapeError(`${k} is not one of ${values.join(', ')}`);
  return found;
}
function strings(o: Obj, k: string): string[] {
  const v = o[k];
  if (!Array.isArray(v) || !v.every((x): x is string => typeof x === 'string'))
    throw new ShapeError(`${k} is not an array of strings`);
  return v;
}

function labels(o: Obj, k: string): Record<string, string> {
  const v = o[k];
  if (v === undefined) return {};
  const entries = Object.entries(obj(v, k));
  for (const [key, value] of entries) {
    if (typeof value !== 'string') throw new ShapeError(`${k}.${key} is not a string`);
  }
  // fromEntries defines own properties: no key can reach a prototype.
  return Object.fromEntries(entries) as Record<string, string>;
}

function stream(v: unknown, name: string): StreamRecord {
  const o = obj(v, name);
  const sha = orNull(o, 'sha256Hex', str);
  if (sha !== null && !/^[0-9a-f]{64}$/.test(sha))
    throw new ShapeError(`${name}.sha256Hex is not 64 hex digits`);
  return {
    storedBytes: count(o, 'storedBytes'),
    droppedBytes: count(o, 'droppedBytes'),
    sha256Hex: sha,
    // Absent in nothing written by this version; tolerated as "complete".
    incompleteAt: o['incompleteAt'] === undefined ? null : orNull(o, 'incompleteAt', count),
  };
}

function fromObject(o: Obj): JobRecord {
  if (o['version'] !== RECORD_VERSION) throw new ShapeError(`version is not ${RECORD_VERSION}`);
  const limits = obj(o['limits'], 'limits');
  const usage = o['usage'] === null ? null : obj(o['usage'], 'usage');
  return {
    id: str(o, 'id'),
    owner: str(o, 'owner'),
    // Absent in records of servers that ran every job as nobody.
    uid: o['uid'] === undefined ? NOBODY : count(o, 'uid'),
    argv: strings(o, 'argv'),
    cwd: str(o, 'cwd'),
    hostNetwork: bool(o, 'hostNetwork'),
    // Both absent in records written before jobs had input.
    stdin: o['stdin'] === undefined ? false : bool(o, 'stdin'),
    tty: o['tty'] === undefined ? false : bool(o, 'tty'),
    limits: {
      cpuMillis: count(limits, 'cpuMillis'),
      memoryBytes: count(limits, 'memoryBytes'),
      ioReadBps: count(limits, 'ioReadBps'),
      ioWriteBps: count(limits, 'ioWriteBps'),
      pidsMax: count(limits, 'pidsMax'),
    },
    startedAtMs: count(o, 'startedAtMs'),
    // Both absent in records written before jobs had names and labels.
    name: o['name'] === undefined ? null : orNull(o, 'name', str),
    labels: labels(o, 'labels'),
    state: oneOf(o, 'state', STATES),
    endReason: o['endReason'] === null ? null : oneOf(o, 'endReason', END_REASONS),
    exitCode: orNull(o, 'exitCode', int),
    signal: orNull(o, 'signal', int),
    oomKilled: bool(o, 'oomKilled'),
    stoppedBy: orNull(o, 'stoppedBy', str),
    finishedAtMs: orNull(o, 'finishedAtMs', count),
    usage:
      usage === null
        ? null
        : {
            cpuTimeNs: count(usage, 'cpuTimeNs'),
            peakMemoryBytes: count(usage, 'peakMemoryBytes'),
            ioReadBytes: count(usage, 'ioReadBytes'),
            ioWriteBytes: count(usage, 'ioWriteBytes'),
          },
    stdout: stream(o['stdout'], 'stdout'),
    stderr: stream(o['stderr'], 'stderr'),
    outputTruncated: bool(o, 'outputTruncated'),
    outputIncomplete: bool(o, 'outputIncomplete'),
    logBytes: orNull(o, 'logBytes', count),
    // Absent in records of servers that wrote no SYNC records: such a log has none.
    lastSyncAt: o['lastSyncAt'] === undefined ? null : orNull(o, 'lastSyncAt', count),
    // Absent in records of servers without timeouts: none.
    timeoutMs: o['timeoutMs'] === undefined ? 0 : count(o, 'timeoutMs'),
  };
}

/**
 * Parses record.json text of the job `id`. Returns the record, or a
 * description of what is wrong with it (not JSON, a field of the wrong type,
 * another job's id, a finished record without its end).
 */
export function parseRecord(text: string, id: string): JobRecord | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return `not JSON (${err instanceof Error ? err.message : String(err)})`;
  }
  try {
    const record = fromObject(obj(parsed, 'record'));
    if (record.id !== id) return `it names another job, ${JSON.stringify(record.id)}`;
    if (
      record.state === 'finished' &&
      (record.endReason === null || record.finishedAtMs === null || record.logBytes === null)
    ) {
      return 'it is finished but lacks its end reason, end time or log length';
    }
    return record;
  } catch (err) {
    if (err instanceof ShapeError) return err.message;
    throw err;
  }
}

/** The JSON text stored for `record`. */
export function serializeRecord(record: JobRecord): string {
  const stored: StoredRecord = { version: RECORD_VERSION, ...record };
  return `${JSON.stringify(stored)}\n`;
}
