import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError } from './failures.js';
import {
  formatAge,
  formatBytes,
  formatDuration,
  parseCount,
  parseCpu,
  parseDuration,
  parseSize,
} from './units.js';

test('parseSize reads bytes and binary multiples', () => {
  const cases: [string, number][] = [
    ['1024B', 1024],
    ['1b', 1],
    ['512K', 512 * 1024],
    ['512k', 512 * 1024],
    ['256M', 256 * 1024 ** 2],
    ['256MiB', 256 * 1024 ** 2],
    ['256mb', 256 * 1024 ** 2],
    ['1.5G', 1.5 * 1024 ** 3],
    ['2T', 2 * 1024 ** 4],
    ['100B', 100],
    ['10M/s', 10 * 1024 ** 2],
  ];
  for (const [text, bytes] of cases) assert.equal(parseSize('--memory', text), bytes, text);
});

test('parseSize rejects what is not a positive size, naming flag and value', () => {
  for (const text of [
    '',
    'M',
    '12Q',
    '-1',
    '0B',
    '0.1B',
    '256',
    '1.5.2G',
    'ten',
    '1e3',
    '99999999999T',
  ]) {
    assert.throws(
      () => parseSize('--memory', text),
      (err: unknown) =>
        err instanceof UsageError && err.message.startsWith(`--memory ${JSON.stringify(text)}`),
      text,
    );
  }
});

test('parseSize refuses a size without a unit, suggesting one', () => {
  assert.throws(
    () => parseSize('--memory', '256'),
    (err: unknown) =>
      err instanceof UsageError &&
      err.message === '--memory "256" has no unit; say 256M (or B, K, G, T)',
  );
});

test('parseDuration reads ms, s, m, h and their sums', () => {
  const cases: [string, number][] = [
    ['0', 0],
    ['500ms', 500],
    ['10s', 10_000],
    ['1.5s', 1500],
    ['1m30s', 90_000],
    ['2h', 7_200_000],
    ['1h1m1s1ms', 3_661_001],
  ];
  for (const [text, ms] of cases) assert.equal(parseDuration('--grace', text), ms, text);
});

test('parseDuration requires a unit and rejects junk', () => {
  for (const text of ['10', '', 's', '10 s', '10sec', '-5s', '1m30', 'm30s', '5d']) {
    assert.throws(
      () => parseDuration('--grace', text),
      (err: unknown) =>
        err instanceof UsageError && err.message.includes(`--grace ${JSON.stringify(text)}`),
      text,
    );
  }
});

test('parseCpu reads cores and millicores into thousandths of a core', () => {
  const cases: [string, number][] = [
    ['0.5', 500],
    ['2', 2000],
    ['1.25', 1250],
    ['500m', 500],
    ['0.001', 1],
  ];
  for (const [text, millis] of cases) assert.equal(parseCpu('--cpu', text), millis, text);
  for (const text of ['0', '0.0001', 'lots', '-1', '', '1.5m', '5000000']) {
    assert.throws(() => parseCpu('--cpu', text), UsageError, text);
  }
});

test('parseCount takes whole numbers within range', () => {
  assert.equal(parseCount('--pids', '100'), 100);
  for (const text of ['0', '-1', '1.5', 'x', '', '4294967296']) {
    assert.throws(() => parseCount('--pids', text), UsageError, text);
  }
});

test('formatBytes uses binary units with at most three significant digits', () => {
  const cases: [number, string][] = [
    [0, '0 B'],
    [1023, '1023 B'],
    [1024, '1 KiB'],
    [1536, '1.5 KiB'],
    [256 * 1024 ** 2, '256 MiB'],
    [1.5 * 1024 ** 3, '1.5 GiB'],
    [10.25 * 1024 ** 2, '10.3 MiB'],
  ];
  for (const [bytes, text] of cases) assert.equal(formatBytes(bytes), text, String(bytes));
});

test('formatDuration and formatAge', () => {
  const durations: [number, string][] = [
    [0, '0ms'],
    [750, '750ms'],
    [1234, '1.23s'],
    [12_340, '12.3s'],
    [125_000, '2m05s'],
    [3 * 3_600_000 + 600_000, '3h10m'],
    [2 * 86_400_000 + 4 * 3_600_000, '2d4h'],
  ];
  for (const [ms, text] of durations) assert.equal(formatDuration(ms), text, String(ms));
  const ages: [number, string][] = [
    [-5, '0s'],
    [5_000, '5s'],
    [180_000, '3m'],
    [7_200_000, '2h'],
    [4 * 86_400_000, '4d'],
  ];
  for (const [ms, text] of ages) assert.equal(formatAge(ms), text, String(ms));
});
