import assert from 'node:assert/strict';
import { test } from 'node:test';
import { JobworkerError } from '../errors.js';
import {
  DEFAULT_PATH,
  MAX_ARGV_BYTES,
  MAX_ENV_BYTES,
  MAX_ARGV_COUNT,
  MAX_ENV_COUNT,
  MAX_TERM_BYTES,
  validateSpec,
  type SpecField,
} from './spec.js';
import type { JobSpec } from './types.js';

const base: JobSpec = { argv: ['/bin/true'], env: [], cwd: '/', limits: {}, hostNetwork: false };
const tty = { rows: 24, cols: 80, term: 'xterm-256color' };

test('a terminal implies stdin and sets TERM', () => {
  const valid = validateSpec({ ...base, env: ['A=1'], tty });
  assert.equal(valid.stdin, true);
  assert.deepEqual(valid.tty, tty);
  assert.deepEqual(valid.env, ['A=1', `PATH=${DEFAULT_PATH}`, 'TERM=xterm-256color']);
  assert.deepEqual(validateSpec({ ...base, tty: { rows: 65535, cols: 1, term: 'vt100' } }).tty, {
    rows: 65535,
    cols: 1,
    term: 'vt100',
  });
});

test('a valid spec gets the default PATH and keeps what it has', () => {
  assert.deepEqual(validateSpec(base), {
    argv: ['/bin/true'],
    env: [`PATH=${DEFAULT_PATH}`],
    cwd: '/',
    timeoutMs: 0,
    stdin: false,
    tty: null,
  });
  assert.equal(validateSpec({ ...base, timeoutMs: 1500 }).timeoutMs, 1500);
  assert.equal(validateSpec({ ...base, stdin: true }).stdin, true);
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
  ['no rows', { tty: { ...tty, rows: 0 } }, /^tty\.rows: 0 is not in 1\.\.65535$/],
  ['too many cols', { tty: { ...tty, cols: 65536 } }, /^tty\.cols: 65536 is not in 1\.\.65535$/],
  ['fractional rows', { tty: { ...tty, rows: 2.5 } }, /^tty\.rows: 2\.5 is not/],
  ['empty TERM', { tty: { ...tty, term: '' } }, /^tty\.term "" is not printable ASCII/],
  ['TERM with a space', { tty: { ...tty, term: 'a b' } }, /^tty\.term "a b" is not printable/],
  ['TERM with a newline', { tty: { ...tty, term: 'xterm\n' } }, /^tty\.term "xterm\\n" is not/],
  [
    'TERM too long',
    { tty: { ...tty, term: 'x'.repeat(MAX_TERM_BYTES + 1) } },
    /^tty\.term is longer than 64 bytes$/,
  ],
  [
    'TERM in env as well',
    { env: ['A=1', 'TERM=vt100'], tty },
    /^env\[1\] sets TERM, which tty\.term sets for a terminal$/,
  ],
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
    [{ tty: { ...tty, cols: 0 } }, /^JobworkerError: <tty\.cols>: 0 is not in/],
  ];
  for (const [change, message] of cases) {
    assert.throws(() => validateSpec({ ...base, ...change }, names), message);
  }
});
