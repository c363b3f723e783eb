/**
 * Jobs on a terminal of their own (root, the real isolation): the pty made
 * inside the job's namespaces, its size and resize, the interrupt reaching
 * the foreground process group, end of input as VEOF, one merged output
 * stream, and backpressure through the terminal.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ErrorCode } from '../../src/errors.js';
import type { Attachment, JobSpec, TerminalSpec } from '../../src/job/index.js';
import { requiresRoot } from '../helpers/guards.js';
import { realIsolationFactory } from '../helpers/isolations.js';
import { newFixture, readAll, spec, waitForOutput, type Fixture } from '../helpers/job-fixture.js';
import { rejectsWith, throwsWith, writeUntilWaiting } from '../helpers/stdin.js';

const skip = requiresRoot();
const MiB = 1024 * 1024;
const TTY: TerminalSpec = { rows: 33, cols: 101, term: 'xterm-256color' };

/** A job on a terminal. */
const ttySpec = (argv: string[], tty: TerminalSpec = TTY): JobSpec => ({ ...spec(argv), tty });

describe('jobs on a terminal', { skip }, () => {
  let fx: Fixture;
  const detach = new AbortController();
  before(async () => {
    const factory = realIsolationFactory();
    assert.ok(factory, 'the real isolation');
    fx = await newFixture(factory);
  });
  after(async () => {
    detach.abort();
    await fx.close();
  });

  /** Starts a job on a terminal and attaches as its writer. */
  async function startAttached(argv: string[]): Promise<{ id: string; writer: Attachment }> {
    const job = await fx.jobs.start('alice', ttySpec(argv));
    assert.equal(job.tty, true);
    assert.equal(job.stdin, true, 'a terminal implies stdin');
    return { id: job.id, writer: fx.jobs.attach(job.id, { write: true, signal: detach.signal }) };
  }

  test('tty and stty size report a terminal of the given size, its own devpts and TERM, owned by the job', async () => {
    const script =
      'tty; stty size; ls -1 /dev/pts; echo "$TERM"; stat -c %u /dev/pts/0; id -u; echo to-stderr >&2; ls -1 /proc/$$/fd; test -t 0';
    const job = await fx.jobs.start('alice', ttySpec(['sh', '-c', script]));
    const { stdout, finished } = await readAll(fx.jobs, job.id);
    const lines = stdout.toString().split('\r\n');
    assert.deepEqual(
      lines.slice(0, 5),
      ['/dev/pts/0', '33 101', '0', 'ptmx', 'xterm-256color'],
      "its own pty only, of the job's devpts instance",
    );
    assert.equal(lines[5], lines[6], "the slave belongs to the job's user");
    assert.notEqual(lines[5], '0');
    assert.equal(lines[7], 'to-stderr', 'stderr is the terminal too');
    // No pipeline or $(...): the shell would hold a pipe's end while ls looks.
    assert.deepEqual(lines.slice(8), ['0', '1', '2', ''], 'only fds 0-2 are open');
    assert.equal(finished?.exitCode, 0, 'stdin is a terminal');
    assert.equal(finished.stderr.storedBytes, 0, 'one merged stream: stdout');
    assert.equal(finished.tty, true);
  });

  test('a resize changes the size the job sees', async () => {
    const { id, writer } = await startAttached(['sh', '-c', 'stty size; read line; stty size']);
    await waitForOutput(fx.jobs, id, '33 101\r\n');
    writer.resize(40, 120);
    await writer.write(Buffer.from('\n'));
    const { stdout, finished } = await readAll(fx.jobs, id);
    assert.match(stdout.toString(), /33 101\r\n.*40 120\r\n$/s);
    assert.equal(finished?.exitCode, 0);
    throwsWith(() => {
      writer.resize(0, 80);
    }, ErrorCode.AlreadyFinished);
  });

  test('an out-of-range resize is invalid_argument; a reader may not resize or interrupt', async () => {
    const { id, writer } = await startAttached(['sleep', '30']);
    throwsWith(() => {
      writer.resize(0, 80);
    }, ErrorCode.InvalidArgument);
    throwsWith(() => {
      writer.resize(24, 65536);
    }, ErrorCode.InvalidArgument);
    const reader = fx.jobs.attach(id, { write: false, signal: detach.signal });
    throwsWith(() => {
      reader.interrupt();
    }, ErrorCode.InvalidArgument);
    await fx.jobs.stop(id, 'test', { graceMs: 0 });
  });

  test('the interrupt ends the foreground sleep under an interactive sh, and sh survives', async () => {
    const { id, writer } = await startAttached(['sh', '-i']);
    // The inner sh prints once it is the terminal's foreground group (dash sets it before
    // it runs the command), then becomes the sleep: the typed line's echo shows $((6*7)).
    await writer.write(Buffer.from("sh -c 'echo ready-$((6*7)); exec sleep 1000'\n"));
    await waitForOutput(fx.jobs, id, 'ready-42');
    writer.interrupt();
    await writer.write(Buffer.from('echo alive-$((2+3)) status-$?\n'));
    // 130: the sleep died of SIGINT (128 + 2), and this sh read the next line.
    await waitForOutput(fx.jobs, id, 'alive-5 status-130');
    await writer.write(Buffer.from('exit 7\n'));
    const { finished } = await readAll(fx.jobs, id);
    assert.equal(finished?.exitCode, 7, 'sh itself was not interrupted');
  });

  test('end() sends VEOF: cat at the start of a line ends', async () => {
    const { id, writer } = await startAttached(['cat']);
    await writer.write(Buffer.from('hello\n'));
    await writer.end();
    const { stdout, finished } = await readAll(fx.jobs, id);
    assert.equal(finished?.exitCode, 0);
    // The terminal's echo of the line, then cat's copy of it.
    assert.match(stdout.toString(), /^hello\r\nhello\r\n/);
    await rejectsWith(writer.write(Buffer.from('x')), ErrorCode.AlreadyFinished);
  });

  test('a job on a terminal that never reads holds its writer after a bounded number of bytes', async () => {
    const { id, writer } = await startAttached(['sleep', '600']);
    const offered = 64 * MiB;
    const line = Buffer.from(`${'a'.repeat(1023)}\n`);
    const { accepted, pending } = await writeUntilWaiting(
      writer,
      Buffer.concat(Array(16).fill(line)),
      offered,
    );
    assert.ok(pending !== null, `all ${offered} bytes were accepted: no backpressure`);
    process.stdout.write(`# accepted on a terminal before the write waited: ${accepted} bytes\n`);
    assert.ok(accepted < 4 * MiB, `${accepted} bytes accepted`);
    writer.interrupt(); // sleep is the foreground group: it ends by SIGINT
    await rejectsWith(pending, ErrorCode.AlreadyFinished);
    const status = await fx.jobs.wait(id);
    assert.equal(status.signal, 2, 'ended by the interrupt');
  });
});
