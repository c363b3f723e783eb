import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatLines, LineSplitter, MAX_LINE_BYTES } from './lines.js';

const text = (lines: Buffer[]) => lines.map((l) => l.toString());

test('LineSplitter: whole lines only, across chunks, the rest kept until flush', () => {
  const s = new LineSplitter();
  assert.deepEqual(text(s.push(Buffer.from('a\nb'))), ['a']);
  assert.deepEqual(text(s.push(Buffer.from('c'))), []);
  assert.deepEqual(text(s.push(Buffer.from('d\n\ne\n'))), ['bcd', '', 'e']);
  assert.equal(s.flush(), undefined);
  s.push(Buffer.from('tail'));
  assert.equal(s.flush()?.toString(), 'tail');
  assert.equal(s.flush(), undefined);
});

test('LineSplitter: a line longer than the bound comes in pieces of the bound', () => {
  const s = new LineSplitter();
  const long = 'x'.repeat(MAX_LINE_BYTES * 2 + 5);
  const first = s.push(Buffer.from(long.slice(0, 10)));
  assert.deepEqual(first, []);
  const pieces = s.push(Buffer.from(`${long.slice(10)}\nnext\n`));
  assert.deepEqual(
    pieces.map((p) => p.length),
    [MAX_LINE_BYTES, MAX_LINE_BYTES, 5, 4],
  );
  assert.equal(Buffer.concat(pieces.slice(0, 3)).toString(), long);
  // A line of exactly the bound stays one line.
  assert.deepEqual(
    s.push(Buffer.from(`${'y'.repeat(MAX_LINE_BYTES)}\n`)).map((p) => p.length),
    [MAX_LINE_BYTES],
  );
});

test('LineSplitter keeps its own copy of an unfinished line', () => {
  const s = new LineSplitter();
  const chunk = Buffer.from('abc');
  s.push(chunk);
  chunk.fill(0);
  assert.equal(s.flush()?.toString(), 'abc');
});

test('formatLines: prefix, escapes (a tab stays), UTF-8 with replacement', () => {
  const lines = [
    Buffer.from('plain'),
    Buffer.from('\x1b]52;c;x\x07\r\tü'),
    Buffer.from([0xff, 0x41]),
  ];
  assert.equal(
    formatLines('web-1', lines),
    'web-1: plain\nweb-1: \\x1b]52;c;x\\x07\\x0d\tü\nweb-1: \uFFFDA\n',
  );
  assert.equal(formatLines(undefined, [Buffer.from('a')]), 'a\n');
});
