import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OutputStream, type StreamOutputResponse } from '../gen/jobworker/v1/job_service.js';
import { UsageError } from './failures.js';
import { parseLogs, parseSince, withTimestamps } from './logs.js';

const ID = 'aaaaaaaaaaaaaaaaaaaaaaaaaa';

test('--tail, --since and -t become request fields', () => {
  const before = Date.now();
  const logs = parseLogs(['-n', '0', '--since', '1h30m', '-t', ID]);
  const after = Date.now();
  assert.ok(logs.kind === 'logs');
  assert.equal(logs.tailLines, 0);
  assert.equal(logs.timestamps, true);
  const since = logs.since?.getTime() ?? 0;
  assert.ok(since >= before - 5_400_000 && since <= after - 5_400_000, String(since));
  const plain = parseLogs([ID]);
  assert.ok(plain.kind === 'logs');
  assert.deepEqual([plain.tailLines, plain.since, plain.timestamps], [undefined, undefined, false]);
  assert.equal(parseLogs(['--tail', '4294967295', ID]).kind, 'logs');
});

test('--since takes RFC 3339 times with a zone', () => {
  for (const [text, iso] of [
    ['2026-01-02T15:04:05Z', '2026-01-02T15:04:05.000Z'],
    ['2026-01-02 17:04:05.5+02:00', '2026-01-02T15:04:05.500Z'],
  ] as const) {
    assert.equal(parseSince(text, 0).toISOString(), iso);
  }
  assert.equal(parseSince('10m', 1_000_000).getTime(), 400_000);
});

test('bad --tail and --since are usage errors naming the flag and value', () => {
  for (const [args, pattern] of [
    [['--tail=-1', ID], /^logs: --tail "-1" is not a number of lines/],
    [['--tail', 'ten', ID], /^logs: --tail "ten" is not/],
    [['--tail', '4294967296', ID], /^logs: --tail "4294967296" is not/],
    [['--tail', '1.5', ID], /^logs: --tail "1.5" is not/],
    [['--since', '10x', ID], /^logs: --since "10x" is neither a duration/],
    [['--since', '2026-01-02T15:04:05', ID], /^logs: --since "2026-01-02T15:04:05" is neither/],
    [['--since', '2026-13-45T15:04:05Z', ID], /^logs: --since "2026-13-45T15:04:05Z" is neither/],
    [['--since=-5m', ID], /^logs: --since "-5m" is neither/],
  ] as const) {
    assert.throws(
      () => parseLogs(args),
      (err: unknown) => {
        assert.ok(err instanceof UsageError);
        assert.match(err.message, pattern);
        return true;
      },
    );
  }
});

test('-t stamps each line where it starts, per stream, and marks undated output', async () => {
  const at = new Date('2026-01-02T15:04:05.678Z');
  const later = new Date('2026-01-02T15:04:06.000Z');
  const chunk = (stream: OutputStream, data: string, storedAt?: Date): StreamOutputResponse => ({
    event: {
      $case: 'chunk',
      value: { stream, offset: 0, data: Buffer.from(data), ...(storedAt ? { storedAt } : {}) },
    },
  });
  const stamped = (messages: StreamOutputResponse[]) =>
    withTimestamps(
      (async function* () {
        for (const m of messages) yield await Promise.resolve(m);
      })(),
    );
  const out: string[] = [];
  for await (const m of stamped([
    chunk(OutputStream.OUTPUT_STREAM_STDOUT, 'one\ntw', at),
    chunk(OutputStream.OUTPUT_STREAM_STDERR, 'err\n', later),
    chunk(OutputStream.OUTPUT_STREAM_STDOUT, 'o\nthree', later),
    chunk(OutputStream.OUTPUT_STREAM_STDOUT, '\n'),
    { event: { $case: 'truncated', value: { capBytes: 9 } } },
  ])) {
    out.push(m.event?.$case === 'chunk' ? Buffer.from(m.event.value.data).toString() : '|');
  }
  assert.deepEqual(out, [
    '2026-01-02T15:04:05.678Z one\n2026-01-02T15:04:05.678Z tw',
    '2026-01-02T15:04:06.000Z err\n',
    'o\n2026-01-02T15:04:06.000Z three',
    '\n',
    '|',
  ]);
  for await (const m of stamped([chunk(OutputStream.OUTPUT_STREAM_STDOUT, 'x\n')])) {
    assert.equal(
      m.event?.$case === 'chunk' && Buffer.from(m.event.value.data).toString(),
      `-${' '.repeat(23)} x\n`,
    );
  }
});
