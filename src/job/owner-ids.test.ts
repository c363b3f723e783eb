import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ErrorCode, JobworkerError } from '../errors.js';
import { openOwnerIds, OWNERS_FILE, type OwnerIdsOptions } from './owner-ids.js';

let dir: string;
let options: OwnerIdsOptions;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'jobworker-owners-unit-'));
  await writeFile(join(dir, 'passwd'), 'root:x:0:0::/root:/bin/sh\n');
  await writeFile(join(dir, 'group'), 'root:x:0:\n');
  options = {
    stateDir: dir,
    range: { first: 1000, last: 1009 },
    passwdPath: join(dir, 'passwd'),
    groupPath: join(dir, 'group'),
  };
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('concurrent first jobs of new owners get distinct uids, kept on reopen', async () => {
  const ids = await openOwnerIds(options);
  const owners = ['a', 'b', 'c', 'a', 'd', 'b'];
  const uids = await Promise.all(owners.map((o) => ids.uidOf(o)));
  assert.deepEqual(uids, [1000, 1001, 1002, 1000, 1003, 1001]);
  const reopened = await openOwnerIds(options);
  assert.equal(await reopened.uidOf('d'), 1003);
  assert.equal(await reopened.uidOf('e'), 1004);
  assert.ok(!(await readdir(dir)).some((name) => name.endsWith('.tmp')), 'no temp file left');
});

test('a damaged table or a range with nobody in it is refused, naming why', async () => {
  const rows: [string, Partial<OwnerIdsOptions>, RegExp][] = [
    ['{"a":', {}, /owners.json is damaged/],
    ['{"a":5}', {}, /owner "a" has uid 5, outside the range/],
    ['{"a":1000,"b":1000}', {}, /uid 1000 is given twice/],
    ['{}', { range: { first: 65000, last: 65535 } }, /includes 65534/],
  ];
  for (const [table, extra, message] of rows) {
    await writeFile(join(dir, OWNERS_FILE), table);
    await assert.rejects(openOwnerIds({ ...options, ...extra }), (err: unknown) => {
      assert.ok(err instanceof JobworkerError);
      assert.match(err.message, message);
      return true;
    });
  }
  await rm(join(dir, OWNERS_FILE));
});

test('the owner past the end of the range is refused with resource_exhausted', async () => {
  const ids = await openOwnerIds({ ...options, stateDir: dir, range: { first: 7, last: 7 } });
  assert.equal(await ids.uidOf('a'), 7);
  await assert.rejects(ids.uidOf('b'), (err: unknown) => {
    assert.ok(err instanceof JobworkerError);
    assert.equal(err.code, ErrorCode.ResourceExhausted);
    assert.match(err.message, /owner "b"/);
    return true;
  });
  await rm(join(dir, OWNERS_FILE));
});
