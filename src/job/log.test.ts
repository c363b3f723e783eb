/** Unit tests of the output log writer and its followers, on real files in a temp dir. */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, test } from 'node:test';
import { JobworkerError } from '../errors.js';
import { dataHeader, SYNC_BYTES, SYNC_INTERVAL_BYTES } from './log-format.js';
import { followLog, READ_BUFFER_BYTES, type LogSource } from './log-reader.js';
import { scanLog } from './log-scan.js';
import { OutputLogWriter, type LogFile } from './log-writer.js';
import { Notifier } from './notifier.js';
import { SharedBlocks } from './shared-blocks.js';
import type { JobStatus, OutputEvent, OutputOptions, StreamName } from './types.js';

let dir: string;
let n = 0;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'jobworker-log-test-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The writer's clock unless a test needs time to pass: one SYNC record at the start. */
const T0 = Date.UTC(2026, 0, 2, 3, 4, 5, 678);

/** A log and the LogSource a follower reads it through; `finish()` plays the job's end. */
async function newLog(
  capBytes = 1 << 30,
  file?: LogFile,
  shared?: SharedBlocks,
  clock: () => number = () => T0,
) {
  const notifier = new Notifier();
  const path = join(dir, `log-${n++}`);
  /** Bytes the writer reported dropped, by reason. */
  const dropped = { cap: 0, write_error: 0 };
  const onDropped = (reason: keyof typeof dropped, bytes: number): void => {
    dropped[reason] += bytes;
  };
  const writer = file
    ? new OutputLogWriter(file, { capBytes, notifier, clock, onDropped })
    : await OutputLogWriter.create(path, { capBytes, notifier, clock, onDropped });
  let status: JobStatus | null = null;
  let followers = 0;
  /** Called when a follower joins: it has read its start (length, last SYNC) in the same tick. */
  const joined: (() => void)[] = [];
  const source: LogSource = {
    jobId: 'testjob',
    path,
    committedLength: () => writer.committedLength,
    lastSyncAt: () => writer.lastSyncAt,
    finishedStatus: () => status,
    notifier,
    followerCount: (d) => {
      followers += d;
      if (d > 0) for (const resolve of joined.splice(0)) resolve();
    },
    ...(shared ? { sharedBlocks: () => shared } : {}),
  };
  return {
    writer,
    dropped,
    source,
    path,
    notifier,
    followers: () => followers,
    nextFollower: () => new Promise<void>((resolve) => joined.push(resolve)),
    finish: async () => {
      await writer.close();
      status = { id: 'testjob' } as JobStatus;
      notifier.notify();
    },
  };
}

async function collect(source: LogSource, options: OutputOptions) {
  const events: OutputEvent[] = [];
  for await (const e of followLog(source, options)) events.push(e);
  const streams = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
  for (const e of events) if (e.type === 'chunk') streams[e.stream].push(e.data);
  return { events, stdout: Buffer.concat(streams.stdout), stderr: Buffer.concat(streams.stderr) };
}

const sha = (b: Buffer): Buffer => createHash('sha256').update(b).digest();

test('binary chunks round-trip with their offsets, order and digests', async () => {
  const log = await newLog();
  log.writer.append('stdout', Buffer.from([0x00, 0xff, 0x41]));
  log.writer.append('stderr', Buffer.from('err1'));
  log.writer.append('stdout', Buffer.from('\nlast line, no newline'));
  await log.finish();
  const { events, stdout, stderr } = await collect(log.source, { follow: true });
  assert.deepEqual(
    events.map((e) =>
      e.type === 'chunk' ? [e.stream, e.offset, e.data.toString('latin1')] : [e.type],
    ),
    [
      ['stdout', 0, '\x00\xffA'],
      ['stderr', 0, 'err1'],
      ['stdout', 3, '\nlast line, no newline'],
      ['finished'],
    ],
  );
  assert.deepEqual(log.writer.summary('stdout').sha256, sha(stdout));
  assert.deepEqual(log.writer.summary('stderr').sha256, sha(stderr));
  assert.equal(log.writer.summary('stdout').storedBytes, stdout.length);
  assert.equal(log.followers(), 0);
});

test('live followers sharing blocks each get every byte from their offsets, reading each block about once', async () => {
  let loads = 0;
  let reads = 0;
  const shared = new (class extends SharedBlocks {
    override read(start: number, end: number, load: () => Promise<Buffer>): Promise<Buffer> {
      reads++;
      return super.read(start, end, () => {
        loads++;
        return load();
      });
    }
  })();
  const log = await newLog(1 << 30, undefined, shared);
  const offsets = [0, 0, 0, 1, 70_000, 200_000, 0, 5];
  const followers = offsets.map((offset, k) =>
    collect(log.source, {
      follow: true,
      stdoutOffset: offset,
      ...(k === 6 ? { stream: 'stderr' as const } : {}),
    }),
  );
  const want = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
  // Odd sizes (headers fall across block boundaries) and a few records larger than a block,
  // committed in batches that the followers catch up with.
  for (let batch = 0; batch < 20; batch++) {
    for (let i = 0; i < 15; i++) {
      const k = batch * 15 + i;
      const stream: StreamName = k % 3 === 0 ? 'stderr' : 'stdout';
      const size = k % 50 === 7 ? READ_BUFFER_BYTES * 2 + 13 : 1 + ((k * 7919) % 3001);
      const chunk = randomBytes(size);
      want[stream].push(chunk);
      log.writer.append(stream, chunk);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await log.finish();
  const all = { stdout: Buffer.concat(want.stdout), stderr: Buffer.concat(want.stderr) };
  const got = await Promise.all(followers);
  got.forEach((g, k) => {
    const offset = offsets[k] ?? 0;
    const stdout = k === 6 ? Buffer.alloc(0) : all.stdout.subarray(offset);
    assert.ok(g.stdout.equals(stdout), `follower ${k}: stdout from ${offset}`);
    assert.ok(g.stderr.equals(all.stderr), `follower ${k}: stderr`);
    assert.equal(g.events.at(-1)?.type, 'finished');
  });
  assert.ok(loads * 2 < reads, `${loads} loads for ${reads} shared reads`);
  assert.equal(log.followers(), 0);
});

test('followers reading the same shared blocks get the same chunk Buffers, each its own bytes', async () => {
  let joins = 0;
  const shared = new (class extends SharedBlocks {
    override chunk(...args: Parameters<SharedBlocks['chunk']>): Buffer {
      const [buffer, start, stream, offset, bytes, join] = args;
      return super.chunk(buffer, start, stream, offset, bytes, () => {
        joins++;
        return join();
      });
    }
  })();
  const log = await newLog(1 << 30, undefined, shared);
  // Pairs with the same options share; the others cut other chunks from the same blocks.
  const options: OutputOptions[] = [
    { follow: true },
    { follow: true },
    { follow: true, stream: 'stdout' },
    { follow: true, stream: 'stdout' },
    { follow: true, stream: 'stderr' },
    { follow: true, stdoutOffset: 1 },
  ];
  const want = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
  // Many small records per block, in pairs of one size on both streams (so the two streams
  // have chunks at the same offset and length, and each stream chunks of one length at other
  // offsets): both-stream followers cut one record a chunk, stdout-only ones a block's stdout.
  for (let i = 0; i < 300; i++) {
    const size = [100, 300, 700][i % 3] ?? 1;
    for (const stream of ['stdout', 'stderr'] as const) {
      const chunk = randomBytes(size);
      want[stream].push(chunk);
      log.writer.append(stream, chunk);
    }
  }
  // All of it committed before the followers start: they read the same aligned blocks
  // whatever their pace (with live commits, where a block is cut depends on timing).
  await log.finish();
  const followers = options.map((o) => collect(log.source, o));
  const all = { stdout: Buffer.concat(want.stdout), stderr: Buffer.concat(want.stderr) };
  const got = await Promise.all(followers);
  got.forEach((g, k) => {
    const { stream, stdoutOffset = 0 } = options[k] ?? {};
    const stdout = stream === 'stderr' ? Buffer.alloc(0) : all.stdout.subarray(stdoutOffset);
    const stderr = stream === 'stdout' ? Buffer.alloc(0) : all.stderr;
    assert.ok(g.stdout.equals(stdout), `follower ${k}: stdout`);
    assert.ok(g.stderr.equals(stderr), `follower ${k}: stderr`);
  });
  const chunksOf = (k: number) =>
    got[k]?.events.flatMap((e) => (e.type === 'chunk' ? [e] : [])) ?? [];
  let cut = 0;
  for (const [a, b] of [
    [0, 1],
    [2, 3],
  ] as const) {
    const first = new Map(chunksOf(a).map((e) => [`${e.stream}:${e.offset}:${e.data.length}`, e]));
    const second = chunksOf(b);
    cut += first.size;
    const same = second.filter(
      (e) => first.get(`${e.stream}:${e.offset}:${e.data.length}`)?.data === e.data,
    ).length;
    assert.ok(same * 2 > second.length, `followers ${a}, ${b}: ${same} of ${second.length} shared`);
  }
  for (const k of [4, 5]) cut += chunksOf(k).length;
  assert.ok(joins < cut + cut / 2, `${joins} chunks cut for ${cut} per distinct follower`);
});

test('a kept block keeps chunks up to three times its bytes, each charged 1 KiB more; a dropped or other block keeps none', async () => {
  const shared = new SharedBlocks();
  const block = Buffer.alloc(10_000);
  await shared.read(0, 10_000, () => Promise.resolve(block));
  let joins = 0;
  const cut = (offset: number, bytes: number, buffer = block, start = 0) =>
    shared.chunk(buffer, start, 'stdout', offset, bytes, () => {
      joins++;
      return Buffer.from(buffer.subarray(0, bytes));
    });
  // 3 x 10,000 bytes of room: two chunks of 10,000 (+ 1,024 each), then one of 6,900 (+ 1,024).
  const kept = [cut(0, 10_000), cut(10_000, 10_000), cut(20_000, 6_900)];
  assert.equal(joins, 3);
  assert.deepEqual([cut(0, 10_000), cut(10_000, 10_000), cut(20_000, 6_900)], kept);
  assert.equal(joins, 3);
  // Full: 28 bytes of room are left, less than a 1-byte chunk's charge.
  assert.notEqual(cut(26_900, 1), cut(26_900, 1));
  assert.equal(joins, 5);
  // The same range read into another Buffer (after a drop) keeps nothing; a range not kept neither.
  const again = Buffer.alloc(10_000);
  assert.notEqual(cut(0, 10, again), cut(0, 10, again));
  assert.notEqual(cut(0, 10, block, 50_000), cut(0, 10, block, 50_000));
  assert.equal(joins, 9);
  shared.clear();
  assert.notEqual(cut(0, 10_000), kept[0]);
});

test('followers at the tail of a job committing small pieces do not re-read whole blocks', async () => {
  let loaded = 0;
  const shared = new (class extends SharedBlocks {
    override read(start: number, end: number, load: () => Promise<Buffer>): Promise<Buffer> {
      return super.read(start, end, async () => {
        const buf = await load();
        loaded += buf.length;
        return buf;
      });
    }
  })();
  const log = await newLog(1 << 30, undefined, shared);
  const followers = [0, 1].map(() => collect(log.source, { follow: true }));
  for (let i = 0; i < 300; i++) {
    log.writer.append('stdout', Buffer.alloc(80, 'x'));
    await new Promise((resolve) => setImmediate(resolve));
  }
  await log.finish();
  for (const got of await Promise.all(followers)) assert.equal(got.stdout.length, 300 * 80);
  const size = log.writer.committedLength;
  assert.ok(loaded <= 3 * size, `${loaded} bytes read for a log of ${size}`);
});

test('offsets inside a record, stream filters and records larger than the read buffer', async () => {
  const log = await newLog();
  const want = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
  // Odd sizes so that headers fall across read-buffer boundaries, and a few chunks larger than the buffer.
  for (let i = 0; i < 300; i++) {
    const stream: StreamName = i % 3 === 0 ? 'stderr' : 'stdout';
    const size = i % 50 === 7 ? READ_BUFFER_BYTES * 2 + 13 : 1 + ((i * 7919) % 3001);
    const chunk = randomBytes(size);
    want[stream].push(chunk);
    log.writer.append(stream, chunk);
  }
  await log.finish();
  const all = { stdout: Buffer.concat(want.stdout), stderr: Buffer.concat(want.stderr) };
  const full = await collect(log.source, { follow: false });
  assert.ok(full.stdout.equals(all.stdout));
  assert.ok(full.stderr.equals(all.stderr));
  assert.ok(!full.events.some((e) => e.type === 'finished'), 'no finished event without follow');
  for (const [o1, o2] of [
    [1, 0],
    [12345, 54321],
    [all.stdout.length - 1, all.stderr.length],
    [all.stdout.length + 10, 0],
  ] as const) {
    const got = await collect(log.source, { follow: false, stdoutOffset: o1, stderrOffset: o2 });
    assert.ok(got.stdout.equals(all.stdout.subarray(o1)), `stdout from ${o1}`);
    assert.ok(got.stderr.equals(all.stderr.subarray(o2)), `stderr from ${o2}`);
    const first = got.events.find((e) => e.type === 'chunk' && e.stream === 'stdout');
    if (o1 < all.stdout.length) assert.equal(first?.type === 'chunk' && first.offset, o1);
  }
  const onlyErr = await collect(log.source, { follow: false, stream: 'stderr', stderrOffset: 5 });
  assert.equal(onlyErr.stdout.length, 0);
  assert.ok(onlyErr.stderr.equals(all.stderr.subarray(5)));
});

test('the cap stores exactly capBytes across both streams, marks the place once and counts the rest', async () => {
  const log = await newLog(10);
  log.writer.append('stdout', Buffer.from('123456'));
  log.writer.append('stderr', Buffer.from('abcdef'));
  log.writer.append('stdout', Buffer.from('789'));
  await log.finish();
  const { events } = await collect(log.source, { follow: true });
  assert.deepEqual(
    events.map((e) =>
      e.type === 'chunk'
        ? `${e.stream}:${e.data.toString()}`
        : e.type === 'truncated'
          ? `truncated:${e.capBytes}`
          : e.type,
    ),
    ['stdout:123456', 'stderr:abcd', 'truncated:10', 'finished'],
  );
  assert.deepEqual(log.writer.summary('stdout'), {
    storedBytes: 6,
    droppedBytes: 3,
    sha256: sha(Buffer.from('123456')),
  });
  assert.equal(log.writer.summary('stderr').droppedBytes, 2);
  assert.equal(log.writer.truncated, true);
  assert.deepEqual(log.dropped, { cap: 5, write_error: 0 }, 'reported as dropped (metrics)');
});

test('a follower sleeps until new output is committed, then gets it and the end', async () => {
  const log = await newLog();
  log.writer.append('stdout', Buffer.from('>'));
  const it = followLog(log.source, { follow: true })[Symbol.asyncIterator]();
  const r0 = await it.next();
  assert.equal(r0.done !== true && r0.value.type === 'chunk' && r0.value.data.toString(), '>');
  const first = it.next();
  // Caught up: the follower must now be asleep on the notifier, not polling.
  assert.equal(log.notifier.waiterCount, 1);
  log.writer.append('stdout', Buffer.from('hello'));
  const r1 = await first;
  assert.equal(r1.done !== true && r1.value.type === 'chunk' && r1.value.data.toString(), 'hello');
  const second = it.next();
  await log.finish();
  const r2 = await second;
  assert.equal(r2.done !== true && r2.value.type, 'finished');
  assert.equal((await it.next()).done, true);
  assert.equal(log.followers(), 0);
  assert.equal(log.notifier.waiterCount, 0);
});

test('abort while waiting ends the follower with cancelled and frees everything', async () => {
  const log = await newLog();
  const ac = new AbortController();
  log.writer.append('stderr', Buffer.from('>'));
  const it = followLog(log.source, { follow: true, signal: ac.signal })[Symbol.asyncIterator]();
  assert.equal((await it.next()).done, false);
  const pending = it.next();
  assert.equal(log.followers(), 1);
  assert.equal(log.notifier.waiterCount, 1);
  ac.abort();
  await assert.rejects(
    pending,
    (err: unknown) => err instanceof JobworkerError && err.code === 'cancelled',
  );
  assert.equal(log.followers(), 0);
  assert.equal(log.notifier.waiterCount, 0);
  await log.finish();
});

test('partial writes are completed', async () => {
  const path = join(dir, 'partial');
  const fh = await open(path, 'ax');
  // At most 7 bytes per writev, as a signal or a nearly full disk may do.
  const file: LogFile = {
    writev: (buffers) => fh.write(Buffer.concat(buffers).subarray(0, 7)),
    close: () => fh.close(),
  };
  const log = await newLog(1 << 20, file);
  const data = randomBytes(1000);
  log.writer.append('stdout', data.subarray(0, 600));
  log.writer.append('stderr', data.subarray(600));
  await log.writer.close();
  assert.equal((await readFile(path)).length, SYNC_BYTES + 1000 + 2 * 16);
  assert.equal(log.writer.committedLength, SYNC_BYTES + 1032);
  assert.deepEqual(log.writer.summary('stdout').sha256, sha(data.subarray(0, 600)));
});

test('a write error marks the log incomplete, keeps draining the pipes and keeps what was written', async () => {
  let calls = 0;
  const path = join(dir, 'failing');
  const fh = await open(path, 'ax');
  const file: LogFile = {
    writev: async (buffers) => {
      if (++calls > 1)
        throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
      return fh.writev(buffers);
    },
    close: () => fh.close(),
  };
  const log = await newLog(1 << 30, file);
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const drained = Promise.all([
    log.writer.consume('stdout', stdout),
    log.writer.consume('stderr', stderr),
  ]);
  stdout.write('first');
  await new Promise<void>((resolve) => setImmediate(resolve));
  // Far more than the writer's queue bound: if the pipes were not drained this would never end.
  for (let i = 0; i < 200; i++) {
    stdout.write(Buffer.alloc(64 * 1024, 1));
    stderr.write(Buffer.alloc(1000, 2));
  }
  stdout.end();
  stderr.end();
  await drained;
  await log.writer.close();
  assert.match(String(log.writer.writeError), /ENOSPC/);
  assert.deepEqual(log.writer.summary('stdout'), {
    storedBytes: 5,
    droppedBytes: 200 * 64 * 1024,
    sha256: sha(Buffer.from('first')),
  });
  assert.equal(log.writer.summary('stderr').droppedBytes, 200 * 1000);
  assert.deepEqual(log.dropped, { cap: 0, write_error: 200 * (64 * 1024 + 1000) });
});

test('a follower joining at the end (log closed, job not yet finished) gets every byte, then the end', async () => {
  const log = await newLog();
  log.writer.append('stdout', Buffer.from('all of it'));
  await log.writer.close();
  // Between the log's close and the job's finish: the follower must read everything and wait.
  const it = followLog(log.source, { follow: true })[Symbol.asyncIterator]();
  const r1 = await it.next();
  assert.equal(
    r1.done !== true && r1.value.type === 'chunk' && r1.value.data.toString(),
    'all of it',
  );
  const r2 = it.next();
  assert.equal(log.notifier.waiterCount, 1);
  await log.finish();
  assert.equal(((await r2).value as OutputEvent).type, 'finished');
  assert.equal((await it.next()).done, true);
});

test('a slow disk pauses the pipes instead of buffering without bound, and nothing is lost', async () => {
  const path = join(dir, 'slow');
  const fh = await open(path, 'ax');
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const file: LogFile = {
    writev: async (buffers) => {
      await gate;
      return fh.writev(buffers);
    },
    close: () => fh.close(),
  };
  const log = await newLog(1 << 30, file);
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const drained = Promise.all([
    log.writer.consume('stdout', stdout),
    log.writer.consume('stderr', stderr),
  ]);
  const data = randomBytes(16 * 1024 * 1024);
  for (let at = 0; at < data.length; at += 64 * 1024)
    stdout.write(data.subarray(at, at + 64 * 1024));
  stdout.end();
  stderr.end();
  await new Promise<void>((resolve) => setImmediate(resolve));
  // The disk has not completed a write: the writer stopped taking chunks (the pipe would now block the job).
  assert.equal(stdout.isPaused(), true);
  assert.ok(stdout.readableLength > 0, 'chunks are left in the pipe, not taken into the writer');
  release();
  await drained;
  await log.writer.close();
  assert.equal(log.writer.summary('stdout').storedBytes, data.length);
  assert.deepEqual(log.writer.summary('stdout').sha256, sha(data));
});

/** `tail -n` of `text`: its last `n` lines, a last line without a newline counting as one. */
function tailOf(text: string, n: number): string {
  if (n === 0 || text === '') return '';
  const lines = (text.endsWith('\n') ? text.slice(0, -1) : text).split('\n');
  if (lines.length <= n) return text;
  return `${lines.slice(-n).join('\n')}${text.endsWith('\n') ? '\n' : ''}`;
}

/** The chunks' bytes in the order sent, as text. */
const text = (events: readonly OutputEvent[]): string =>
  events.map((e) => (e.type === 'chunk' ? e.data.toString() : '')).join('');

/**
 * A finished log of lines of random length on both streams, cut at random
 * places, over several writes and clock readings and more than one SYNC
 * interval: many stretches.
 */
async function linesLog() {
  let now = T0;
  const log = await newLog(1 << 30, undefined, undefined, () => (now += 1));
  let bytes = 0;
  for (let line = 0; bytes < 3 * SYNC_INTERVAL_BYTES; line++) {
    const stream: StreamName = line % 3 === 0 ? 'stderr' : 'stdout';
    const chunk = Buffer.from(`${stream} ${line} ${'x'.repeat(line % 200)}\n`);
    log.writer.append(stream, chunk);
    bytes += chunk.length;
    if (line % 1000 === 0) await new Promise(setImmediate);
  }
  log.writer.append('stdout', Buffer.from('no newline at the end'));
  await log.finish();
  return log;
}

test('a tail is the last N lines of the wanted streams, as tail -n, with a follower from any offset', async () => {
  const log = await linesLog();
  const all = await collect(log.source, { follow: false });
  const byStream = {
    both: text(all.events),
    stdout: all.stdout.toString(),
    stderr: all.stderr.toString(),
  };
  for (const n of [0, 1, 2, 17, 1000, 50_000]) {
    for (const stream of ['both', 'stdout', 'stderr'] as const) {
      const options = stream === 'both' ? {} : { stream };
      const got = await collect(log.source, { follow: false, tailLines: n, ...options });
      assert.equal(text(got.events), tailOf(byStream[stream], n), `tail ${n} of ${stream}`);
    }
  }
  // An offset beyond the tail's start wins: both bounds hold.
  const late = await collect(log.source, {
    follow: false,
    tailLines: 1000,
    stdoutOffset: all.stdout.length - 5,
  });
  assert.equal(late.stdout.toString(), all.stdout.subarray(-5).toString());
  assert.equal(log.followers(), 0);
});

test('a tail and a time read from the last SYNC record back, never the start of a long log', async () => {
  const log = await linesLog();
  const all = await collect(log.source, { follow: false });
  const chunks = all.events.filter((e) => e.type === 'chunk');
  const lastMs = chunks.at(-1)?.storedAtMs ?? null;
  assert.ok(lastMs !== null);
  // Damage the first DATA record (after the first SYNC): a reader from byte 0 trips on it.
  const file = await open(log.path, 'r+');
  await file.write(Buffer.from([0]), 0, 1, SYNC_BYTES);
  await file.close();
  await assert.rejects(collect(log.source, { follow: false }), /damaged at byte 24/);
  const tail = await collect(log.source, { follow: false, tailLines: 100 });
  assert.equal(text(tail.events), tailOf(text(all.events), 100));
  const since = await collect(log.source, { follow: false, sinceMs: lastMs });
  assert.equal(text(since.events), text(chunks.filter((e) => (e.storedAtMs ?? 0) >= lastMs)));
});

test('chunks carry the time they were stored; since keeps what was stored at or after it', async () => {
  const log = await linesLog();
  const all = await collect(log.source, { follow: false });
  const chunks = all.events.filter((e) => e.type === 'chunk');
  const times = chunks.map((e) => e.storedAtMs ?? 0);
  assert.deepEqual(
    times,
    [...times].sort((a, b) => a - b),
  );
  assert.ok(times[0] !== undefined && times[0] > T0);
  const middle = times[Math.floor(times.length / 2)] ?? 0;
  for (const sinceMs of [0, middle, middle + 1, (times.at(-1) ?? 0) + 1]) {
    const got = await collect(log.source, { follow: false, sinceMs });
    assert.equal(text(got.events), text(chunks.filter((e) => (e.storedAtMs ?? 0) >= sinceMs)));
    // With a tail too: the later start of the two.
    const both = await collect(log.source, { follow: false, sinceMs, tailLines: 3 });
    assert.equal(text(both.events), tailOf(text(got.events), 3));
  }
});

test('a tail then follows live output; tail 0 sends only what comes next', async () => {
  let now = T0;
  const log = await newLog(1 << 30, undefined, undefined, () => (now += 1000));
  log.writer.append('stdout', Buffer.from('one\ntwo\nthree\n'));
  // The tail is of what is committed when the follower starts: wait for the write.
  while (log.writer.committedLength === 0) await log.notifier.wait();
  for (const [tailLines, first] of [
    [2, 'two\nthree\n'],
    [0, 'four\n'],
  ] as const) {
    const it = followLog(log.source, { follow: true, tailLines })[Symbol.asyncIterator]();
    const started = log.nextFollower();
    const next = it.next();
    if (tailLines === 0) {
      // Only once the follower has taken its start: "what comes next" is after it.
      await started;
      log.writer.append('stdout', Buffer.from('four\n'));
    }
    const r = await next;
    assert.equal(r.done !== true && r.value.type === 'chunk' && r.value.data.toString(), first);
    assert.equal(r.done !== true && r.value.type === 'chunk' && r.value.storedAtMs !== null, true);
    await it.return(undefined);
  }
  await log.finish();
});

test('a log without SYNC records (an older format) is read whole: undated, and recent for since', async () => {
  const path = join(dir, 'old-format');
  const out = Buffer.from('a\nb\nc\n');
  await writeFile(path, Buffer.concat([dataHeader('stdout', out.length, 0), out]));
  const notifier = new Notifier();
  const status = { id: 'old' } as JobStatus;
  const source: LogSource = {
    jobId: 'old',
    path,
    committedLength: () => 16 + out.length,
    lastSyncAt: () => null,
    finishedStatus: () => status,
    notifier,
    followerCount: () => undefined,
  };
  const tail = await collect(source, { follow: false, tailLines: 2 });
  assert.equal(tail.stdout.toString(), 'b\nc\n');
  assert.deepEqual(
    tail.events.map((e) => e.type === 'chunk' && e.storedAtMs),
    [null],
  );
  const since = await collect(source, { follow: false, sinceMs: Date.now() });
  assert.equal(since.stdout.toString(), 'a\nb\nc\n');
  const scan = await scanLog(path);
  assert.equal(scan.lastSyncAt, null);
  assert.equal(scan.damage, null);
});

test('a restarted server finds the last SYNC record by scanning, and refuses a broken chain', async () => {
  const log = await linesLog();
  const scan = await scanLog(log.path);
  assert.equal(scan.damage, null);
  assert.equal(scan.lastSyncAt, log.writer.lastSyncAt);
  assert.equal(scan.validLength, log.writer.committedLength);
  // The last SYNC record's back pointer (its payload) made to point elsewhere.
  const at = scan.lastSyncAt ?? 0;
  const file = await open(log.path, 'r+');
  await file.write(Buffer.from([1]), 0, 1, at + 16);
  await file.close();
  const cut = await scanLog(log.path);
  assert.equal(cut.validLength, at);
  assert.match(cut.damage ?? '', new RegExp(`sync record at byte ${at} does not point`));
});
