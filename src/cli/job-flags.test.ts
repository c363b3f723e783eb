import assert from 'node:assert/strict';
import { test } from 'node:test';
import { splitAtPositional } from './args.js';
import { parseCompletion } from './completion.js';
import { UsageError } from './failures.js';
import { jobOptions, parseJobCommand } from './job-flags.js';
import { parseList } from './list.js';
import { parseLogs } from './logs.js';
import { parseStatus } from './status.js';
import { parseStop } from './stop.js';
import { JobState, OutputStream } from '../gen/jobworker/v1/job_service.js';

test('options end at the first positional or at --', () => {
  assert.deepEqual(splitAtPositional(['--cpu', '1', 'sh', '-c', 'x'], jobOptions), {
    head: ['--cpu', '1'],
    rest: ['sh', '-c', 'x'],
  });
  assert.deepEqual(splitAtPositional(['--cpu=1', '--', '--weird'], jobOptions), {
    head: ['--cpu=1'],
    rest: ['--weird'],
  });
  assert.deepEqual(splitAtPositional(['-e', 'A=1', 'env'], jobOptions), {
    head: ['-e', 'A=1'],
    rest: ['env'],
  });
  assert.deepEqual(splitAtPositional(['--help'], jobOptions), { head: ['--help'], rest: [] });
});

test('start/run flags become a StartJobRequest', () => {
  const parsed = parseJobCommand('run', [
    '--cpu',
    '0.5',
    '--memory',
    '256M',
    '--io-read',
    '10M',
    '--io-write=1G',
    '--pids',
    '64',
    '-e',
    'A=1',
    '--env',
    'B=x=y',
    '--cwd',
    '/tmp',
    '--network',
    'host',
    '--server',
    'example.com:7000',
    '--user',
    'bob',
    'sh',
    '-c',
    'echo "$A"',
  ]);
  assert.ok(parsed.kind === 'job');
  assert.deepEqual(parsed.request, {
    command: ['sh', '-c', 'echo "$A"'],
    env: ['A=1', 'B=x=y'],
    workingDir: '/tmp',
    hostNetwork: true,
    limits: {
      cpuMillis: 500,
      memoryBytes: 256 * 1024 ** 2,
      ioReadBps: 10 * 1024 ** 2,
      ioWriteBps: 1024 ** 3,
      pidsMax: 64,
    },
  });
  assert.equal(parsed.connection.server, 'example.com:7000');
  assert.equal(parsed.connection.user, 'bob');
});

test('start/run without flags leave every limit to the server (zero)', () => {
  const parsed = parseJobCommand('start', ['--', 'true']);
  assert.ok(parsed.kind === 'job');
  assert.deepEqual(parsed.request.limits, {
    cpuMillis: 0,
    memoryBytes: 0,
    ioReadBps: 0,
    ioWriteBps: 0,
    pidsMax: 0,
  });
  assert.equal(parsed.request.workingDir, '');
  assert.equal(parsed.request.hostNetwork, false);
  assert.deepEqual(parseJobCommand('start', ['--help', 'ignored']), { kind: 'help' });
});

test('bad start/run arguments are usage errors', () => {
  const cases: [string[], RegExp][] = [
    [[], /missing the command/],
    [['--'], /missing the command/],
    [['--cpu', '0', 'x'], /--cpu "0"/],
    [['--env', 'A', 'x'], /--env "A" is not NAME=VALUE/],
    [['--env', '=1', 'x'], /--env "=1"/],
    [['--cwd', 'tmp', 'x'], /--cwd "tmp"/],
    [['--network', 'none', 'x'], /--network "none"/],
    [['--bogus', 'x'], /unknown flag '--bogus'/],
    [['--memory'], /--memory/],
  ];
  for (const [args, message] of cases) {
    assert.throws(
      () => parseJobCommand('run', args),
      (err: unknown) => err instanceof UsageError && message.test(err.message),
      args.join(' '),
    );
  }
});

test('status, stop, logs, list and completion parse into their results', () => {
  assert.deepEqual(parseStatus(['--json', 'abc']), {
    kind: 'status',
    id: 'abc',
    json: true,
    connection: {
      server: undefined,
      tlsServerName: undefined,
      certs: undefined,
      user: undefined,
      cert: undefined,
      key: undefined,
      ca: undefined,
      context: undefined,
      contextSelector: undefined,
      config: undefined,
    },
  });
  const stop = parseStop(['--grace', '1m30s', 'abc']);
  assert.ok(stop.kind === 'stop');
  assert.equal(stop.graceMs, 90_000);
  const noGrace = parseStop(['abc']);
  assert.ok(noGrace.kind === 'stop');
  assert.equal(noGrace.graceMs, undefined);
  const logs = parseLogs(['-f', '--stderr', 'abc']);
  assert.ok(logs.kind === 'logs');
  assert.equal(logs.follow, true);
  assert.equal(logs.stream, OutputStream.OUTPUT_STREAM_STDERR);
  const list = parseList(['--state', 'running', '-q']);
  assert.ok(list.kind === 'list');
  assert.equal(list.filter.state, JobState.JOB_STATE_RUNNING);
  assert.equal(list.output, 'ids');
  assert.deepEqual(parseCompletion(['zsh']), { kind: 'completion', shell: 'zsh' });
  for (const parse of [parseStatus, parseStop, parseLogs, parseList, parseCompletion]) {
    assert.deepEqual(parse(['-h']), { kind: 'help' });
  }
});

test('commands taking a job id insist on exactly one', () => {
  for (const parse of [parseStatus, parseStop, parseLogs]) {
    assert.throws(() => parse([]), /missing job id/);
    assert.throws(() => parse(['a', 'b']), /unexpected argument "b"/);
  }
  assert.throws(() => parseList(['extra']), UsageError);
  assert.throws(() => parseList(['--json', '-q']), /exclude each other/);
  assert.throws(() => parseCompletion(['fish']), /unsupported shell "fish"/);
  assert.throws(() => parseCompletion([]), /missing the shell/);
});
