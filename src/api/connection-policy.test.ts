import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connectionPolicy, DEFAULT_CONNECTION_POLICY } from './connection-policy.js';

test('the defaults are a valid policy, and overrides replace single fields', () => {
  assert.deepEqual(connectionPolicy(), DEFAULT_CONNECTION_POLICY);
  assert.equal(connectionPolicy({ idleTimeoutMs: 5 }).idleTimeoutMs, 5);
});

test('a field out of range is refused by name', () => {
  for (const value of [0, -1, 1.5, 2 ** 31]) {
    assert.throws(() => connectionPolicy({ keepaliveMs: value }), /keepaliveMs is /);
  }
  assert.throws(
    () => connectionPolicy({ maxAgeMs: 1000, drainGraceMs: 1000 }),
    /drainGraceMs \(1000\) must be below maxAgeMs/,
  );
});
