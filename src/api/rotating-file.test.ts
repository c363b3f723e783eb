import assert from 'node:assert/strict';
import { closeSync, fstatSync, openSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { openAuditLog } from './audit.js';
import { RotatingFile } from './rotating-file.js';

test('a rotating file stays within its size, keeps its newest lines whole, and drops the oldest', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'jobworker-rotate-'));
  try {
    const path = join(dir, 'audit.log');
    const options = { maxBytes: 100, keep: 2, mode: 0o600 };
    let file = new RotatingFile(path, options);
    const line = (i: number) => `line ${String(i).padStart(3, '0')} ${'x'.repeat(18)}\n`;
    for (let i = 0; i < 5; i++) file.write(line(i));
    file.close();
    // Reopened: the size on disk counts.
    file = new RotatingFile(path, options);
    for (let i = 5; i < 20; i++) file.write(line(i));
    file.close();
    assert.deepEqual((await readdir(dir)).sort(), ['audit.log', 'audit.log.1', 'audit.log.2']);
    let kept = '';
    for (const name of ['audit.log.2', 'audit.log.1', 'audit.log']) {
      assert.ok((await stat(join(dir, name))).size <= 100, name);
      assert.equal((await stat(join(dir, name))).mode & 0o777, 0o600);
      kept += await readFile(join(dir, name), 'utf8');
    }
    const want = Array.from({ length: 20 }, (_, i) => line(i)).join('');
    assert.ok(want.endsWith(kept), 'the newest lines, whole and in order');
    // Three lines fit in a file: lines 12-14, 15-17 and 18-19 are kept.
    assert.equal(kept.length, 8 * line(0).length);
    assert.ok(RotatingFile.footprint(options) >= 3 * 100);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a rotation that fails keeps writing to the file it owns and closes no other descriptor', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'jobworker-rotate-'));
  try {
    const path = join(dir, 'audit.log');
    const file = new RotatingFile(path, { maxBytes: 10, keep: 1, mode: 0o600 });
    file.write('0123456789\n');
    // The new file cannot be made: its name is taken by a directory.
    await mkdir(`${path}.next`);
    const other = openSync(join(dir, 'other'), 'w');
    try {
      // Each write past the bound tries again, and says it failed, after writing its line.
      for (const line of ['second\n', 'third\n']) {
        assert.throws(() => {
          file.write(line);
        }, /EISDIR/);
      }
      assert.ok(fstatSync(other).isFile(), "another file's descriptor is still open");
    } finally {
      closeSync(other);
    }
    file.close();
    assert.equal(await readFile(path, 'utf8'), '0123456789\nsecond\nthird\n');
    assert.deepEqual((await readdir(dir)).sort(), ['audit.log', 'audit.log.next', 'other']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the audit log rotates', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'jobworker-audit-'));
  try {
    const audit = openAuditLog(join(dir, 'audit.log'), { rotation: { maxBytes: 1000, keep: 1 } });
    for (let i = 0; i < 50; i++) {
      audit.record({
        identity: 'alice',
        role: 'user',
        method: '/jobworker.v1.JobService/GetJob',
        jobId: null,
        outcome: 'ok',
        code: null,
        peer: '127.0.0.1:1',
      });
    }
    audit.close();
    assert.deepEqual((await readdir(dir)).sort(), ['audit.log', 'audit.log.1']);
    assert.ok((await stat(join(dir, 'audit.log.1'))).size <= 1000);
    const last = (await readFile(join(dir, 'audit.log'), 'utf8')).trimEnd().split('\n').at(-1);
    assert.equal((JSON.parse(last ?? '{}') as { identity?: string }).identity, 'alice');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
