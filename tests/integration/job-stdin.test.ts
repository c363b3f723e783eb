/**
 * A job's input through JobManager.attach, against every isolation of
 * tests/helpers/isolations.ts: bytes through `cat` byte-exact, end of input,
 * backpressure from a job that never reads, the one writer seat, detach and
 * re-attach, and the end of a job with a write pending.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { ErrorCode } from '../../src/errors.js';
import { newJobId, STDIN_PIECE_BYTES } from '../../src/job/index.js';
import { isolationFactories } from '../helpers/isolations.js';
import { rejectsWith, throwsWith, writeUntilWaiting } from '../helpers/stdin.js';
import {
  hashFollow,
  newFixture,
  readAll,
  spec,
  waitForOutput,
  type Fixture,
} from '../helpers/job-fixture.js';

const MiB = 1024 * 1024;

for (const factory of isolationFactories) {
  describe(`job stdin (${factory.name} isolation)`, () => {
    let fx: Fixture;
    before(async () => {
      fx = await newFixture(factory);
    });
    after(async () => {
      await fx.close();
    });

    test('10 MiB of random bytes through cat come back byte-exact, and end() gives cat its EOF', async () => {
      const data = randomBytes(10 * MiB);
      const job = await fx.jobs.start('alice', { ...spec(['cat']), stdin: true });
      assert.equal(job.stdin, true);
      assert.equal(job.tty, false);
      const detach = new AbortController();
      const writer = fx.jobs.attach(job.id, { write: true, signal: detach.signal });
      assert.equal(writer.writer, true);
      const output = hashFollow(fx.jobs, job.id);
      // Uneven chunks, each awaited (one write at a time).
      for (let at = 0; at < data.length;) {
        const size = Math.min(data.length - at, 1 + Math.floor(Math.random() * 200_000));
        await writer.write(data.subarray(at, at + size));
        at += size;
      }
      await writer.end();
      const result = await output;
      detach.abort();
      assert.equal(writer.bytesIn, data.length);
      assert.equal(result.stdoutBytes, data.length);
      const sha = createHash('sha256').update(data).digest();
      assert.deepEqual(result.stdoutSha256, sha);
      assert.equal(result.finished?.exitCode, 0, 'cat ended by its EOF');
      assert.deepEqual(result.finished.stdout.sha256, sha, 'the recorded digest');
      assert.equal(result.finished.stdin, true, 'the final status says stdin');
    });

    test("stdin is a pipe the job's user can reopen, and only fds 0-2 are open", async () => {
      // No pipeline or $(...): the shell would hold a pipe's end while ls looks.
      const script = 'readlink /proc/$$/fd/0; ls /proc/$$/fd; cat /dev/stdin';
      const job = await fx.jobs.start('alice', { ...spec(['sh', '-c', script]), stdin: true });
      const writer = fx.jobs.attach(job.id, { write: true, signal: new AbortController().signal });
      await writer.write(Buffer.from('through /dev/stdin\n'));
      await writer.end();
      const { stdout, finished } = await readAll(fx.jobs, job.id);
      assert.match(stdout.toString(), /^pipe:\[\d+\]\n0\n1\n2\nthrough \/dev\/stdin\n$/);
      assert.equal(finished?.exitCode, 0);
    });

    test('a job started without stdin refuses a writer with no_stdin and takes readers', async () => {
      const job = await fx.jobs.start(
        'alice',
        spec(['sh', '-c', 'readlink /proc/$$/fd/0; sleep 30']),
      );
      if (factory.real) await waitForOutput(fx.jobs, job.id, '/dev/null\n');
      assert.equal(job.stdin, false);
      const signal = new AbortController().signal;
      throwsWith(() => fx.jobs.attach(job.id, { write: true, signal }), ErrorCode.NoStdin);
      const reader = fx.jobs.attach(job.id, { write: false, signal });
      assert.equal(reader.writer, false);
      await rejectsWith(reader.write(Buffer.from('x')), ErrorCode.InvalidArgument);
      throwsWith(() => {
        reader.resize(10, 10);
      }, ErrorCode.InvalidArgument);
      await fx.jobs.stop(job.id, 'test', { graceMs: 0 });
      throwsWith(() => fx.jobs.attach(newJobId(), { write: false, signal }), ErrorCode.NotFound);
    });

    test('a second writer is refused with stdin_busy while readers see the same output; detach frees the seat', async () => {
      const job = await fx.jobs.start('alice', { ...spec(['cat']), stdin: true });
      const first = new AbortController();
      const writer = fx.jobs.attach(job.id, { write: true, signal: first.signal });
      const other = new AbortController();
      throwsWith(
        () => fx.jobs.attach(job.id, { write: true, signal: other.signal }),
        ErrorCode.StdinBusy,
      );
      const readers = [0, 1, 2].map(() =>
        fx.jobs.attach(job.id, { write: false, signal: other.signal }),
      );
      assert.ok(readers.every((r) => !r.writer));
      await writer.write(Buffer.from('one\n'));
      await waitForOutput(fx.jobs, job.id, 'one\n');
      // Detach: the job keeps running, the seat is free, the old attachment is dead.
      first.abort();
      await rejectsWith(writer.write(Buffer.from('late\n')), ErrorCode.Cancelled);
      assert.equal(fx.jobs.get(job.id).state, 'running');
      const again = fx.jobs.attach(job.id, { write: true, signal: other.signal });
      await again.write(Buffer.from('two\n'));
      await again.end();
      const all = await readAll(fx.jobs, job.id);
      assert.equal(all.stdout.toString(), 'one\ntwo\n', 'every reader reads the one log');
      assert.equal(all.finished?.exitCode, 0);
      other.abort();
    });

    test('after end() the input is over: writes and new writers get no_stdin', async () => {
      const job = await fx.jobs.start('alice', { ...spec(['sleep', '30']), stdin: true });
      const detach = new AbortController();
      const writer = fx.jobs.attach(job.id, { write: true, signal: detach.signal });
      await writer.end();
      await rejectsWith(writer.write(Buffer.from('x')), ErrorCode.NoStdin);
      detach.abort();
      throwsWith(
        () => fx.jobs.attach(job.id, { write: true, signal: new AbortController().signal }),
        ErrorCode.NoStdin,
      );
      await fx.jobs.stop(job.id, 'test', { graceMs: 0 });
    });

    test('a job that never reads: writes wait after a bounded number of bytes, and reject with already_finished when it ends', async () => {
      const job = await fx.jobs.start('alice', { ...spec(['sleep', '600']), stdin: true });
      const detach = new AbortController();
      const writer = fx.jobs.attach(job.id, { write: true, signal: detach.signal });
      const offered = 64 * MiB;
      const { accepted, pending } = await writeUntilWaiting(
        writer,
        Buffer.alloc(STDIN_PIECE_BYTES, 0x61),
        offered,
      );
      assert.ok(pending !== null, `all ${offered} bytes were accepted: no backpressure`);
      // The bound: the job's pipe, the helper's socket buffers and the server's socket
      // buffers (docs/rfd/0001-jobworker.md); nothing grows with what is offered.
      process.stdout.write(`# accepted before the write waited: ${accepted} bytes\n`);
      assert.ok(accepted < 4 * MiB, `${accepted} bytes accepted`);
      await fx.jobs.stop(job.id, 'test', { graceMs: 0 });
      await rejectsWith(pending, ErrorCode.AlreadyFinished);
      await rejectsWith(writer.write(Buffer.from('x')), ErrorCode.AlreadyFinished);
      throwsWith(
        () => fx.jobs.attach(job.id, { write: true, signal: detach.signal }),
        ErrorCode.AlreadyFinished,
      );
      assert.equal(fx.jobs.attach(job.id, { write: false, signal: detach.signal }).writer, false);
      detach.abort();
    });
  });
}
