import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isValidJobId, JOB_ID_LENGTH, newJobId } from './ids.js';

test('new ids are 26 lowercase base32 characters, valid and distinct', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const id = newJobId();
    assert.equal(id.length, JOB_ID_LENGTH);
    assert.match(id, /^[a-z2-7]+$/);
    assert.ok(isValidJobId(id), id);
    seen.add(id);
  }
  assert.equal(seen.size, 2000);
});

test('isValidJobId rejects anything that could escape a path or is not canonical', () => {
  const good = newJobId();
  for (const bad of [
    '',
    '..',
    '../../etc/passwd',
    good.toUpperCase(),
    good.slice(0, 25),
    `${good}a`,
    `${good.slice(0, 25)}b`, // last character must carry only 3 bits
    `${good.slice(0, 24)}1a`,
    `${good.slice(0, 25)}/`,
    42,
    null,
  ]) {
    assert.equal(isValidJobId(bad), false, String(bad));
  }
});
