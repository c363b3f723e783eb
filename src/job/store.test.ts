/** Job records on real files: round trip, atomic replace, validation, disk-full reservation. */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { newJobId } from './ids.js';
import type { JobRecord } from './job.js';
import { parseRecord, serializeRecord } from './record-schema.js';
import {
  RECORD_FILE,
  RESERVE_FILE,
  reserveRecordSpace,
  writeFinalRecord,
  writeRecord,
} from './store.js';

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'jobworker-store-test-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

function sample(id: string): JobRecord {
  return {
    id,
    owner: 'alice',
    uid: 60514,
    argv: ['printf', 'x\u0000y'],
    cwd: '/',
    hostNetwork: false,
    stdin: false,
    tty: false,
    limits: { cpuMillis: 500, memoryBytes: 1 << 20, ioReadBps: 0, ioWriteBps: 0, pidsMax: 10 },
    startedAtMs: 1_700_000_000_000,
    state: 'finished',
    endReason: 'exited',
    exitCode: 0,
    signal: null,
    oomKilled: false,
    stoppedBy: null,
    finishedAtMs: 1_700_000_000_500,
    usage: { cpuTimeNs: 1, peakMemoryBytes: 2, ioReadBytes: 3, ioWriteBytes: 4 },
    stdout: { storedBytes: 3, droppedBytes: 0, sha256Hex: 'ab'.repeat(32), incompleteAt: null },
    stderr: { storedBytes: 0, droppedBytes: 7, sha256Hex: 'cd'.repeat(32), incompleteAt: 0 },
    outputTruncated: false,
    name: null,
    labels: {},
    outputIncomplete: true,
    logBytes: 19,
    lastSyncAt: 0,
    timeoutMs: 90_000,
  };
}

async function jobDir(): Promise<{ id: string; dir: string }> {
  const id = newJobId();
  const dir = join(root, id);
  await mkdir(dir);
  return { id, dir };
}

test('a written record reads back equal, and no temp file is left', async () => {
  const { id, dir } = await jobDir();
  await writeRecord(dir, { ...sample(id), state: 'running' });
  await writeRecord(dir, sample(id));
  assert.deepEqual(parseRecord(await readFile(join(dir, RECORD_FILE), 'utf8'), id), sample(id));
  assert.deepEqual(await readdir(dir), [RECORD_FILE]);
});

test('a record without a uid (every job ran as nobody) reads as uid 65534', () => {
  const id = newJobId();
  const old = { ...(JSON.parse(serializeRecord(sample(id))) as object), uid: undefined };
  assert.deepEqual(parseRecord(JSON.stringify(old), id), { ...sample(id), uid: 65534 });
});

test('stdin and tty read back; a record without them (no input then) reads as false', () => {
  const id = newJobId();
  const interactive = { ...sample(id), stdin: true, tty: true };
  assert.deepEqual(parseRecord(serializeRecord(interactive), id), interactive);
  const old = { ...(JSON.parse(serializeRecord(interactive)) as object), stdin: undefined };
  assert.deepEqual(parseRecord(JSON.stringify({ ...old, tty: undefined }), id), sample(id));
  assert.equal(parseRecord(JSON.stringify({ ...old, stdin: 1 }), id), 'stdin is not a boolean');
});

test('validation names what is wrong and never throws', () => {
  const id = newJobId();
  const good = JSON.parse(serializeRecord(sample(id))) as Record<string, unknown>;
  const rows: [unknown, RegExp][] = [
    ['{"version":1,', /not JSON/],
    [[], /record is not an object/],
    [{ ...good, version: 2 }, /version is not 1/],
    [{ ...good, argv: ['ok', 3] }, /argv is not an array of strings/],
    [{ ...good, state: 'sleeping' }, /state is not one of/],
    [{ ...good, startedAtMs: -1 }, /startedAtMs is not a non-negative integer/],
    [{ ...good, uid: 'alice' }, /uid is not a non-negative integer/],
    [{ ...good, stdout: { ...(good['stdout'] as object), sha256Hex: 'xyz' } }, /stdout.sha256Hex/],
    [{ ...good, id: newJobId() }, /names another job/],
    [{ ...good, logBytes: null }, /lacks its end reason, end time or log length/],
  ];
  for (const [value, reason] of rows) {
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    const got = parseRecord(text, id);
    assert.equal(typeof got, 'string', text);
    assert.match(got as string, reason);
  }
});

test('the reservation is released once the final record is written', async () => {
  const { id, dir } = await jobDir();
  await reserveRecordSpace(dir, sample(id));
  assert.ok((await readdir(dir)).includes(RESERVE_FILE));
  await writeFinalRecord(dir, sample(id));
  assert.deepEqual(await readdir(dir), [RECORD_FILE], 'the reservation is released');
});
