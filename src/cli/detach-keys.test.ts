import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DetachKeys } from './detach-keys.js';

const bytes = (...b: number[]) => Uint8Array.from(b);

test('Ctrl-P Ctrl-Q detaches; the keys before it are sent, the sequence is not', () => {
  const keys = new DetachKeys();
  assert.deepEqual(keys.feed(bytes(0x61, 0x10, 0x11, 0x62)), { data: bytes(0x61), detach: true });
});

test('the sequence is found across chunks', () => {
  const keys = new DetachKeys();
  assert.deepEqual(keys.feed(bytes(0x61, 0x10)), { data: bytes(0x61), detach: false });
  assert.deepEqual(keys.feed(bytes(0x11)), { data: bytes(), detach: true });
});

test('Ctrl-P followed by another key sends both; Ctrl-P Ctrl-P Ctrl-Q still detaches', () => {
  const keys = new DetachKeys();
  assert.deepEqual(keys.feed(bytes(0x10, 0x62)), { data: bytes(0x10, 0x62), detach: false });
  assert.deepEqual(keys.feed(bytes(0x10, 0x10, 0x11)), { data: bytes(0x10), detach: true });
});
