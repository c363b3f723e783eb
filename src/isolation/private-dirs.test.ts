import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Mount } from './cgroup/detect.js';
import { type ScanBounds, scanWorldWritable } from './private-dirs.js';

let root = '';
const wide: ScanBounds = { maxDepth: 5, maxVisited: 1000, maxFound: 10 };
const mount = (mountPoint: string, options: string, fstype = 'ext4'): Mount => ({
  root: '/',
  mountPoint,
  options: options.split(','),
  fstype,
  superOptions: ['rw'],
});

// mode per directory, made in this order below the root (the root is 0755).
const tree: [string, number][] = [
  ['lock', 0o1777], // listed
  ['lock/inner', 0o777], // hidden by lock's tmpfs: not listed
  ['open', 0o755],
  ['open/drop', 0o733], // o+wx without read: listed
  ['open/nosearch', 0o772], // o+w without o+x: nobody can create there
  ['closed', 0o700],
  ['closed/drop', 0o777], // unreachable below a directory others cannot search
  ['ro', 0o755],
  ['ro/drop', 0o777], // on a read-only mount
  ['ro/sub', 0o755], // not walked: nothing below is writable
  ['ro/sub/rw', 0o755], // ...except this read-write mount below ro
  ['ro/sub/rw/drop', 0o777], // listed
  ['ro/other', 0o755],
  ['ro/other/x', 0o777], // never read: ro/other is not walked
  ['auto', 0o755],
  ['auto/drop', 0o777], // below an autofs mount
  ['skipped', 0o777], // in the skip set
  ['a', 0o755],
  ['a/b', 0o755],
  ['a/b/deep', 0o777], // level 3
];

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'jobworker-private-dirs-'));
  for (const [path, mode] of tree) {
    await mkdir(join(root, path));
    await chmod(join(root, path), mode);
  }
  await symlink(join(root, 'lock'), join(root, 'open/link')); // not followed
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

const scan = (bounds: ScanBounds = wide) =>
  scanWorldWritable(
    root,
    new Set([join(root, 'skipped')]),
    [
      mount('/', 'rw'),
      mount(join(root, 'ro'), 'ro,nosuid'),
      mount(join(root, 'ro/sub/rw'), 'rw'),
      mount(join(root, 'auto'), 'rw', 'autofs'),
    ],
    bounds,
  );

test('lists the directories others may write and search, where a job can reach them', async () => {
  const { dirs, truncated } = await scan();
  assert.deepEqual(
    [...dirs].sort(),
    ['a/b/deep', 'lock', 'open/drop', 'ro/sub/rw/drop'].map((d) => join(root, d)),
  );
  assert.equal(truncated, false);
});

test('a read-only mount is walked only on the way to a read-write mount below it', async () => {
  // Visited: the root's 6 (skipped excluded), open's 2, ro's 3, a's 1, ro/sub's
  // 1, a/b's 1, ro/sub/rw's 1 = 15. Walking ro/other too would visit a 16th (x).
  const { dirs, truncated } = await scan({ ...wide, maxVisited: 15 });
  assert.equal(truncated, false);
  assert.ok(dirs.includes(join(root, 'ro/sub/rw/drop')));
  assert.equal((await scan({ ...wide, maxVisited: 14 })).truncated, true);
});

test('levels below maxDepth are not examined', async () => {
  const { dirs, truncated } = await scan({ ...wide, maxDepth: 2 });
  assert.deepEqual(
    [...dirs].sort(),
    ['lock', 'open/drop'].map((d) => join(root, d)),
  );
  assert.equal(truncated, false, 'the depth is the rule, not a cut');
});

test('a scan cut by maxVisited or maxFound says so', async () => {
  assert.equal((await scan({ ...wide, maxVisited: 3 })).truncated, true);
  const found = await scan({ ...wide, maxFound: 1 });
  assert.deepEqual([found.dirs.length, found.truncated], [1, true]);
});
