import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { StartJobRequest } from '../gen/jobworker/v1/job_service.js';
import { parseAddress } from './server.js';
import { checkJobRef, listFilter, outputOptions, startSpec, stopOptions } from './validate.js';

const signal = new AbortController().signal;

test('job ids and names are checked before anything else', () => {
  assert.deepEqual(checkJobRef('aaaaaaaaaaaaaaaaaaaaaaaaaa'), { id: 'aaaaaaaaaaaaaaaaaaaaaaaaaa' });
  assert.deepEqual(checkJobRef('nightly-db'), { name: 'nightly-db' });
  for (const bad of ['', '../x', 'A'.repeat(26), 'a'.repeat(64), '-x', 'a_b', 1]) {
    assert.throws(() => checkJobRef(bad), /^JobworkerError: job_id/);
  }
});

test('list selectors: name and labels checked, errors name the field', () => {
  const base = { state: 0, owner: '', pageSize: 0, pageToken: '' } as const;
  assert.deepEqual(
    listFilter({ ...base, selector: { name: 'db', labelSelector: 'team=db,env!=prod' } }),
    {
      name: 'db',
      selector: [
        { op: 'in', key: 'team', values: ['db'] },
        { op: 'notin', key: 'env', values: ['prod'] },
      ],
    },
  );
  assert.throws(
    () => listFilter({ ...base, selector: { name: '', labelSelector: 'team in (db' } }),
    /^JobworkerError: selector.label_selector "team in \(db" does not parse/,
  );
  assert.throws(
    () => listFilter({ ...base, selector: { name: 'Bad_Name', labelSelector: '' } }),
    /^JobworkerError: selector.name "Bad_Name" is not a DNS label/,
  );
});

const request = {
  command: ['echo', 'hi'],
  env: ['A=1'],
  workingDir: '/tmp',
  hostNetwork: true,
  limits: { cpuMillis: 500, memoryBytes: 0, ioReadBps: 0, ioWriteBps: 1000, pidsMax: 0 },
  timeout: { seconds: 90, nanos: 500_000_000 },
  metadata: { name: 'web', labels: { team: 'db' } },
};

test('start: every proto field lands in its JobSpec field', () => {
  assert.deepEqual(startSpec(request), {
    argv: ['echo', 'hi'],
    env: ['A=1'],
    cwd: '/tmp',
    limits: request.limits,
    hostNetwork: true,
    timeoutMs: 90_500,
    name: 'web',
    labels: { team: 'db' },
    stdin: false,
  });
  assert.deepEqual(startSpec({ ...request, limits: undefined }).limits, {});
  assert.equal(startSpec({ ...request, stdin: true }).stdin, true);
  // A terminal is stdin: asking for one opens it.
  assert.deepEqual(startSpec({ ...request, terminal: { rows: 24, cols: 80, term: 'xterm' } }), {
    ...startSpec(request),
    stdin: true,
    tty: { rows: 24, cols: 80, term: 'xterm' },
  });
  assert.equal(startSpec({ ...request, timeout: undefined }).timeoutMs, 0);
  assert.deepEqual(startSpec({ ...request, metadata: undefined }).labels, {});
});

// The rules are the job library's (src/job/spec.test.ts); here only that refusals use proto names.
test('start: a refused field is named as the proto spells it', () => {
  const cases: [Partial<StartJobRequest>, RegExp][] = [
    [{ command: [] }, /^JobworkerError: command is required$/],
    [{ command: ['a', '\0'] }, /^JobworkerError: command\[1\] contains a NUL byte$/],
    [{ env: ['1=x'] }, /^JobworkerError: env\[0\] has an invalid name "1"$/],
    [{ workingDir: '/a/' }, /^JobworkerError: working_dir "\/a\/" is not normalized/],
    [
      { terminal: { rows: 0, cols: 80, term: 'xterm' } },
      /^JobworkerError: terminal\.rows 0 is not between 1 and 65535$/,
    ],
    [{ terminal: { rows: 24, cols: 80, term: 'x y' } }, /^JobworkerError: terminal\.term /],
    [
      { limits: { ...request.limits, memoryBytes: 0.5 } },
      /^JobworkerError: limits\.memory_bytes: 0\.5 is not a non-negative integer$/,
    ],
    [{ limits: { ...request.limits, ioReadBps: -1 } }, /^JobworkerError: limits\.io_read_bps: -1 /],
    [{ timeout: { seconds: -1, nanos: 0 } }, /^JobworkerError: timeout -1s 0ns is negative/],
  ];
  for (const [change, message] of cases) {
    assert.throws(() => startSpec({ ...request, ...change }), message);
  }
});

test('stop: grace period bounds', () => {
  assert.equal(
    stopOptions({ jobId: 'x', gracePeriod: { seconds: 300, nanos: 0 } }, signal).graceMs,
    300_000,
  );
  assert.equal(
    stopOptions({ jobId: 'x', gracePeriod: { seconds: 0, nanos: 1 } }, signal).graceMs,
    1,
  );
  assert.equal(stopOptions({ jobId: 'x' }, signal).graceMs, undefined);
  assert.throws(
    () => stopOptions({ jobId: 'x', gracePeriod: { seconds: 300, nanos: 1_000_000 } }, signal),
    /grace_period/,
  );
});

test('list and stream enums', () => {
  assert.deepEqual(listFilter({ state: 3, owner: 'bob', pageSize: 0, pageToken: '' }), {
    state: 'finished',
    owner: 'bob',
  });
  assert.deepEqual(listFilter({ state: 0, owner: '', pageSize: 0, pageToken: '' }), {});
  assert.throws(
    () => listFilter({ state: -1, owner: '', pageSize: 0, pageToken: '' }),
    /^JobworkerError: state -1/,
  );
  assert.equal(
    outputOptions({ jobId: 'x', stream: 2, stdoutOffset: 0, stderrOffset: 5, follow: true }, signal)
      .stream,
    'stderr',
  );
  assert.throws(
    () =>
      outputOptions(
        { jobId: 'x', stream: 3 as 0, stdoutOffset: 0, stderrOffset: 0, follow: true },
        signal,
      ),
    /stream 3/,
  );
});

test('stream: tail_lines and since bounds', () => {
  const request = {
    jobId: 'x',
    stream: 0 as const,
    stdoutOffset: 0,
    stderrOffset: 0,
    follow: false,
  };
  const since = new Date('2026-01-02T03:04:05.678Z');
  const options = outputOptions({ ...request, tailLines: 0, since }, signal);
  assert.equal(options.tailLines, 0);
  assert.equal(options.sinceMs, since.getTime());
  assert.equal(outputOptions({ ...request, tailLines: 100_000 }, signal).tailLines, 100_000);
  assert.equal(outputOptions(request, signal).tailLines, undefined);
  assert.throws(
    () => outputOptions({ ...request, tailLines: 100_001 }, signal),
    /^JobworkerError: tail_lines 100001 exceeds the maximum of 100000$/,
  );
  assert.throws(
    () => outputOptions({ ...request, since: new Date(Number.NaN) }, signal),
    /^JobworkerError: since a time no date can hold is outside the years 1 to 9999$/,
  );
  assert.throws(
    () => outputOptions({ ...request, since: new Date(Date.UTC(10000, 0, 1)) }, signal),
    /^JobworkerError: since \+010000-01-01T00:00:00.000Z is outside/,
  );
});

test('listen addresses', () => {
  assert.deepEqual(parseAddress('127.0.0.1:50051'), { host: '127.0.0.1', port: 50051 });
  assert.deepEqual(parseAddress('[::1]:0'), { host: '::1', port: 0 });
  assert.deepEqual(parseAddress('localhost:8080'), { host: 'localhost', port: 8080 });
  for (const bad of ['127.0.0.1', ':50051', '127.0.0.1:99999', '::1:50051']) {
    assert.throws(() => parseAddress(bad), /listen address/);
  }
});
