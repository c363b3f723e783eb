import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_LIMITS, MIN_LIMITS, resolveLimits } from './limits.js';
import type { Limits } from './types.js';

const maxima: Limits = {
  cpuMillis: 2000,
  memoryBytes: 1 << 30,
  ioReadBps: 0,
  ioWriteBps: 50_000_000,
  pidsMax: 32768,
};

test('an empty request gets the defaults', () => {
  assert.deepEqual(resolveLimits({}, DEFAULT_LIMITS, maxima), DEFAULT_LIMITS);
});

test('zero means the default', () => {
  assert.deepEqual(
    resolveLimits({ cpuMillis: 0, pidsMax: 0 }, DEFAULT_LIMITS, maxima),
    DEFAULT_LIMITS,
  );
});

test('requests are clamped to the maxima; a maximum of 0 leaves the field uncapped', () => {
  const limits = resolveLimits(
    {
      cpuMillis: 64_000,
      memoryBytes: 2 ** 40,
      ioReadBps: 10 ** 12,
      ioWriteBps: 10 ** 12,
      pidsMax: 10 ** 9,
    },
    DEFAULT_LIMITS,
    maxima,
  );
  assert.deepEqual(limits, {
    cpuMillis: 2000,
    memoryBytes: 1 << 30,
    ioReadBps: 10 ** 12,
    ioWriteBps: 50_000_000,
    pidsMax: 32768,
  });
});

test('requests below what the kernel accepts are raised to the minimum', () => {
  const limits = resolveLimits({ cpuMillis: 1, memoryBytes: 1 }, DEFAULT_LIMITS, maxima);
  assert.equal(limits.cpuMillis, MIN_LIMITS.cpuMillis);
  assert.equal(limits.memoryBytes, MIN_LIMITS.memoryBytes);
});
