import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseAddress } from './server.js';
import { checkJobId, listFilter, outputOptions, startSpec, stopOptions } from './validate.js';

const signal = new AbortController().signal;

test('job ids are checked before anything else', () => {
  assert.equal(checkJobId('aaaaaaaaaaaaaaaaaaaaaaaaaa'), 'aaaaaaaaaaaaaaaaaaaaaaaaaa');
  for (const bad of ['', '../x', 'A'.repeat(26), 'a'.repeat(27), 'aaaaaaaaaaaaaaaaaaaaaaaaab', 1]) {
    assert.throws(() => checkJobId(bad), /^JobworkerError: job_id/);
  }
});

test('start: zero limits are left to the server, the rest passed on', () => {
  const spec = startSpec({
    command: ['echo', 'hi'],
    env: ['A=1'],
    workingDir: '',
    hostNetwork: false,
    limits: { cpuMillis: 500, memoryBytes: 0, ioReadBps: 0, ioWriteBps: 1000, pidsMax: 0 },
  });
  assert.deepEqual(spec.limits, { cpuMillis: 500, ioWriteBps: 1000 });
  assert.deepEqual(spec.argv, ['echo', 'hi']);
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

test('listen addresses', () => {
  assert.deepEqual(parseAddress('127.0.0.1:50051'), { host: '127.0.0.1', port: 50051 });
  assert.deepEqual(parseAddress('[::1]:0'), { host: '::1', port: 0 });
  assert.deepEqual(parseAddress('localhost:8080'), { host: 'localhost', port: 8080 });
  for (const bad of ['127.0.0.1', ':50051', '127.0.0.1:99999', '::1:50051']) {
    assert.throws(() => parseAddress(bad), /listen address/);
  }
});
