import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ErrorCode, JobworkerError } from '../errors.js';
import { openOwnerIds, OWNERS_FILE, type OwnerIdsOptions } from './owner-ids.js';

let dir: string;
let options: OwnerIdsOptions;
/** Uids whose keyrings were cleared (the range here holds real users' uids: nothing is cleared for real). */
const cleared: number[] = [];
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'jobworker-owners-unit-'));
  await writeFile(join(dir, 'passwd'), 'root:x:0:0::/root:/bin/sh\n');
  await writeFile(join(dir, 'group'), 'root:x:0:\n');
  options = {
    stateDir: dir,
    range: { first: 1000, last: 1009 },
    passwdPath: join(dir, 'passwd'),
    groupPath: join(dir, 'group'),
    registry: join(dir, 'registry'),
    clearKeys: (uid) => {
      cleared.push(uid);
      return Promise.resolve();
    },
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
  assert.deepEqual(
    cleared,
    [1000, 1001, 1002, 1003],
    "each new owner's uid has its keyrings cleared once",
  );
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

test('servers on other state directories never get a uid another one holds', async () => {
  const registry = join(dir, 'shared-registry');
  const server = async (name: string) => {
    const stateDir = join(dir, name);
    await mkdir(stateDir, { recursive: true });
    return openOwnerIds({ ...options, stateDir, registry });
  };
  const [one, two] = await Promise.all([server('one'), server('two')]);
  // Both at once: the registry's lock orders them.
  const owners = ['a', 'b', 'c'];
  const uids = await Promise.all([
    ...owners.map((o) => one.uidOf(o)),
    ...owners.map((o) => two.uidOf(o)),
  ]);
  assert.equal(new Set(uids).size, 6, `distinct: ${uids.join(' ')}`);
  assert.deepEqual([...uids].sort(), [1000, 1001, 1002, 1003, 1004, 1005]);

  // A state directory that leases another's live uid is refused at open, naming both.
  const three = join(dir, 'three');
  await mkdir(three);
  await writeFile(join(three, OWNERS_FILE), JSON.stringify({ x: uids[0] }));
  await assert.rejects(openOwnerIds({ ...options, stateDir: three, registry }), (err: unknown) => {
    assert.ok(err instanceof JobworkerError);
    assert.match(
      err.message,
      new RegExp(`uid ${uids[0]} of owner "x" in .*three is also given to owner "a" of .*one`),
    );
    return true;
  });

  // A removed state directory gives its uids back to the host.
  await rm(join(dir, 'one'), { recursive: true });
  const reopened = await openOwnerIds({ ...options, stateDir: three, registry });
  assert.equal(await reopened.uidOf('x'), uids[0], 'x keeps the uid one had');
  const freed = await two.uidOf('d');
  assert.ok(uids.slice(1, 3).includes(freed), `uid ${freed} was one's`);
  await rm(three, { recursive: true });
  await rm(join(dir, 'two'), { recursive: true });
});
