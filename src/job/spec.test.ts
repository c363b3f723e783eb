import assert from 'node:assert/strict';
import { test } from 'node:test';
import { JobworkerError } from '../errors.js';
import {
  DEFAULT_PATH,
  MAX_ARGV_BYTES,
  MAX_ENV_BYTES,
  MAX_ARGV_COUNT,
  MAX_ENV_COUNT,
  validateSpec,
  type SpecField,
} from './spec.js';
import type { JobSpec } from './types.js';

const base: JobSpec = { argv: ['/bin/true'], env: [], cwd: '/', limits: {}, hostNetwork: false };

test('a valid spec gets the default PATH and keeps what it has', () => {
  assert.deepEqual(validateSpec(base), {
    argv: ['/bin/true'],
    env: [`PATH=${DEFAULT_PATH}`],
    cwd: '/',
    timeoutMs: 0,
  });
  assert.equal(validateSpec({ ...base, timeoutMs: 1500 }).timeoutMs, 1500);
  const own = validateSpec({ ...base, env: ['PATH=/opt/bin', 'A=b=c', 'EMPTY='], cwd: '' });
  assert.deepEqual(own.env, ['PATH=/opt/bin', 'A=b=c', 'EMPTY=']);
  assert.equal(own.cwd, '/');
  assert.equal(validateSpec({ ...base, cwd: '/tmp/x' }).cwd, '/tmp/x');
  // Binary-ish but valid: non-ASCII text is fine in arguments.
  assert.deepEqual(validateSpec({ ...base, argv: ['echo', 'é\u00ff', ''] }).argv, [
    'echo',
    'é\u00ff',
    '',
  ]);
});

const invalid: [string, Partial<JobSpec>, RegExp][] = [
  ['empty argv', { argv: [] }, /^argv is required$/],
  ['empty argv[0]', { argv: [''] }, /^argv\[0\] is empty/],
  ['NUL in an argument', { argv: ['echo', 'a', 'b', 'x\0y'] }, /^argv\[3\] contains a NUL byte$/],
  [
    'too many arguments',
    { argv: Array<string>(MAX_ARGV_COUNT + 1).fill('a') },
    /^argv has 4097 entries/,
  ],
  [
    'argv too large',
    { argv: ['echo', 'x'.repeat(MAX_ARGV_BYTES)] },
    /^argv is larger than 131072 bytes \(exceeded at argv\[1\]\)/,
  ],
  [
    'one argument over MAX_ARG_STRLEN (its NUL counts)',
    { argv: ['x'.repeat(MAX_ARGV_BYTES)] },
    /^argv\[0\] is 131072 bytes; one entry may have at most 131071 /,
  ],
  [
    'a command name over PATH_MAX (its NUL counts)',
    { argv: ['x'.repeat(4096)] },
    /^argv\[0\] is 4096 bytes; a command name may have at most 4095 /,
  ],
  [
    'one env entry over MAX_ARG_STRLEN',
    { env: [`A=${'x'.repeat(MAX_ENV_BYTES - 2)}`] },
    /^env\[0\] is 131072 bytes; one entry may have at most 131071 /,
  ],
  [
    'too many env entries',
    { env: Array.from({ length: MAX_ENV_COUNT + 1 }, (_, i) => `V${i}=1`) },
    /^env has 1025 entries/,
  ],
  ['env too large', { env: [`A=${'x'.repeat(200_000)}`] }, /^env is larger than/],
  ['NUL in env', { env: ['A=1', 'B=\0'] }, /^env\[1\] contains a NUL byte$/],
  ['env without =', { env: ['NOEQUALS'] }, /^env\[0\] "NOEQUALS" is not NAME=VALUE$/],
  ['env bad name', { env: ['1A=x'] }, /^env\[0\] has an invalid name "1A"$/],
  ['env empty name', { env: ['=x'] }, /^env\[0\] has an invalid name ""$/],
  ['env duplicate', { env: ['A=1', 'A=2'] }, /^env\[1\] repeats the name "A"$/],
  ['relative cwd', { cwd: 'tmp' }, /^cwd "tmp" is not an absolute path$/],
  [
    'cwd with ..',
    { cwd: '/tmp/../etc' },
    /^cwd "\/tmp\/..\/etc" is not normalized \(expected "\/etc"\)$/,
  ],
  ['cwd with //', { cwd: '//tmp' }, /is not normalized/],
  [
    'cwd with trailing slash',
    { cwd: '/tmp/' },
    /^cwd "\/tmp\/" is not normalized \(expected "\/tmp"\)$/,
  ],
  ['cwd with NUL', { cwd: '/tmp\0' }, /^cwd contains a NUL byte$/],
  ['negative limit', { limits: { cpuMillis: -1 } }, /^limits\.cpuMillis: -1 is not a non-negative/],
  ['NaN limit', { limits: { memoryBytes: NaN } }, /^limits\.memoryBytes: NaN is not/],
  ['fractional limit', { limits: { pidsMax: 1.5 } }, /^limits\.pidsMax: 1\.5 is not/],
  ['infinite limit', { limits: { ioReadBps: Infinity } }, /^limits\.ioReadBps: Infinity is/],
  ['unsafe limit', { limits: { ioWriteBps: 2 ** 60 } }, /^limits\.ioWriteBps: \d+ is not/],
];

for (const [name, change, message] of invalid) {
  test(`invalid_argument: ${name}`, () => {
    assert.throws(
      () => validateSpec({ ...base, ...change }),
      (err: unknown) =>
        err instanceof JobworkerError &&
        err.code === 'invalid_argument' &&
        message.test(err.message),
    );
  });
}

test('an edge names the fields its own way', () => {
  const names = (field: SpecField) => `<${field}>`;
  const cases: [Partial<JobSpec>, RegExp][] = [
    [{ argv: ['a', 'b\0'] }, /^JobworkerError: <argv>\[1\] contains a NUL byte$/],
    [
      { argv: ['x'.repeat(MAX_ARGV_BYTES + 1)] },
      /^JobworkerError: <argv> is larger .* \(exceeded at <argv>\[0\]\)$/,
    ],
    [{ env: ['A'] }, /^JobworkerError: <env>\[0\] "A" is not NAME=VALUE$/],
    [{ cwd: 'x' }, /^JobworkerError: <cwd> "x" is not an absolute path$/],
    [{ limits: { memoryBytes: -1 } }, /^JobworkerError: <limits\.memoryBytes>: -1 /],
  ];
  for (const [change, message] of cases) {
    assert.throws(() => validateSpec({ ...base, ...change }, names), message);
  }
});
