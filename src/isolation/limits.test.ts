import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCode, JobworkerError } from '../errors.js';
import { DEFAULT_LIMITS, resolveLimits } from './limits.js';
import type { Limits, RequestedLimits } from './types.js';

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

test('a maximum of 0 leaves the field uncapped; values within range are kept', () => {
  const limits = resolveLimits(
    { cpuMillis: 2000, memoryBytes: 1 << 30, ioReadBps: 10 ** 12, pidsMax: 3 },
    DEFAULT_LIMITS,
    maxima,
  );
  assert.deepEqual(limits, {
    ...DEFAULT_LIMITS,
    cpuMillis: 2000,
    memoryBytes: 1 << 30,
    ioReadBps: 10 ** 12,
    pidsMax: 3,
  });
});

const outOfRange: [string, RequestedLimits, RegExp][] = [
  [
    'cpu above the maximum',
    { cpuMillis: 64_000 },
    /^limits\.cpuMillis: 64000 is above the maximum 2000$/,
  ],
  [
    'memory above the maximum',
    { memoryBytes: 2 ** 40 },
    /limits\.memoryBytes: 1099511627776 is above the maximum 1073741824/,
  ],
  [
    'io above its maximum',
    { ioWriteBps: 10 ** 12 },
    /limits\.ioWriteBps: 1000000000000 is above the maximum 50000000/,
  ],
  [
    'pids above the maximum',
    { pidsMax: 10 ** 9 },
    /limits\.pidsMax: 1000000000 is above the maximum 32768/,
  ],
  ['cpu below the minimum', { cpuMillis: 1 }, /limits\.cpuMillis: 1 is below the minimum 10/],
  [
    'memory below the minimum',
    { memoryBytes: 256 },
    /limits\.memoryBytes: 256 is below the minimum 4194304/,
  ],
  [
    'pids below what init and the job need',
    { pidsMax: 2 },
    /limits\.pidsMax: 2 is below the minimum 3/,
  ],
];

for (const [name, requested, message] of outOfRange) {
  test(`refused, not clamped: ${name}`, () => {
    assert.throws(
      () => resolveLimits(requested, DEFAULT_LIMITS, maxima),
      (err: unknown) =>
        err instanceof JobworkerError &&
        err.code === ErrorCode.InvalidArgument &&
        message.test(err.message),
    );
  });
}
