import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EndReason, Job, JobState } from '../gen/jobworker/v1/job_service.js';
import {
  exitColumn,
  formatTable,
  listRow,
  outcome,
  shellQuote,
  signalName,
  summaryLine,
} from './format.js';
import { formatLimits, formatReport } from './report.js';

const t0 = new Date('2026-01-02T03:04:05.000Z');

function job(fields: Partial<Job>): Job {
  return Job.fromPartial({
    id: 'abcdefghijklmnopqrstuvwxyz',
    owner: 'alice',
    command: ['sh', '-c', 'exit 3'],
    state: JobState.JOB_STATE_FINISHED,
    startedAt: t0,
    finishedAt: new Date(t0.getTime() + 1500),
    workingDir: '/',
    ...fields,
  });
}

test('formatTable aligns columns without trailing spaces', () => {
  const text = formatTable(
    ['ID', 'STATE', 'COMMAND'],
    [
      ['a', 'running', 'sleep 1'],
      ['bbbb', 'finished', ''],
    ],
  );
  assert.equal(
    text,
    ['ID     STATE      COMMAND', 'a      running    sleep 1', 'bbbb   finished'].join('\n'),
  );
});

test('shellQuote quotes only what a shell would split or expand', () => {
  assert.equal(shellQuote(['ls', '-la', '/tmp/x.txt', 'a=b']), 'ls -la /tmp/x.txt a=b');
  assert.equal(shellQuote(['sh', '-c', 'exit 3']), "sh -c 'exit 3'");
  assert.equal(shellQuote(['echo', "it's", '$HOME', '']), `echo 'it'\\''s' '$HOME' ''`);
});

test('signalName names known signals and numbers the rest', () => {
  assert.equal(signalName(9), 'SIGKILL');
  assert.equal(signalName(15), 'SIGTERM');
  assert.equal(signalName(99), 'signal 99');
});

test('outcome and the EXIT column say how a job ended', () => {
  const cases: [Partial<Job>, string, string][] = [
    [{ endReason: EndReason.END_REASON_EXITED, exitCode: 3 }, 'exited with code 3', '3'],
    [{ endReason: EndReason.END_REASON_SIGNALED, signal: 9 }, 'killed by SIGKILL', 'SIGKILL'],
    [
      { endReason: EndReason.END_REASON_STOPPED, signal: 15, stoppedBy: 'bob' },
      'stopped by bob (SIGTERM)',
      'SIGTERM',
    ],
    [
      { endReason: EndReason.END_REASON_STOPPED, exitCode: 0, stoppedBy: 'alice' },
      'stopped by alice, exit code 0',
      '0',
    ],
    [
      { endReason: EndReason.END_REASON_STOP_ESCALATED, signal: 9, stoppedBy: 'admin' },
      'stopped by admin, killed after the grace period (SIGKILL)',
      'SIGKILL',
    ],
    [
      { endReason: EndReason.END_REASON_OOM_KILLED, signal: 9, oomKilled: true },
      'killed by the OOM killer at its memory limit (SIGKILL)',
      'SIGKILL',
    ],
    [
      // cgroup v1: only the offender was killed; the job went on and exited.
      { endReason: EndReason.END_REASON_OOM_KILLED, exitCode: 0, oomKilled: true },
      'exited with code 0 after the OOM killer killed one of its processes at its memory limit',
      '0',
    ],
    [
      { endReason: EndReason.END_REASON_LOST },
      'lost: the server ended while it ran; exit status unknown',
      'lost',
    ],
    [{ state: JobState.JOB_STATE_RUNNING, finishedAt: undefined }, 'running', '-'],
  ];
  for (const [fields, phrase, column] of cases) {
    assert.equal(outcome(job(fields)), phrase);
    assert.equal(exitColumn(job(fields)), column);
  }
});

test('summaryLine and listRow', () => {
  const stopped = job({ endReason: EndReason.END_REASON_STOPPED, signal: 15, stoppedBy: 'alice' });
  assert.equal(
    summaryLine(stopped),
    'abcdefghijklmnopqrstuvwxyz finished: stopped by alice (SIGTERM) after 1.5s',
  );
  const running = job({ state: JobState.JOB_STATE_RUNNING, finishedAt: undefined });
  assert.equal(
    summaryLine(running, new Date(t0.getTime() + 65_000)),
    'abcdefghijklmnopqrstuvwxyz running for 1m05s',
  );
  assert.deepEqual(listRow(running, new Date(t0.getTime() + 180_000)), [
    'abcdefghijklmnopqrstuvwxyz',
    'alice',
    'running',
    '-',
    '3m',
    "sh -c 'exit 3'",
  ]);
  const long = job({ command: ['echo', 'x'.repeat(100)] });
  assert.equal(listRow(long, t0)[5]?.length, 60);
});

test('formatReport lists the exit report fields, aligned', () => {
  const report = formatReport(
    job({
      endReason: EndReason.END_REASON_EXITED,
      exitCode: 3,
      limits: {
        cpuMillis: 500,
        memoryBytes: 256 * 1024 ** 2,
        ioReadBps: 0,
        ioWriteBps: 1024 ** 2,
        pidsMax: 100,
      },
      usage: {
        cpuTime: { seconds: 1, nanos: 500_000_000 },
        peakMemoryBytes: 3 * 1024 ** 2,
        ioReadBytes: 0,
        ioWriteBytes: 4096,
      },
      stdout: { storedBytes: 2048, droppedBytes: 10, sha256: Buffer.alloc(32, 0xab) },
      stderr: { storedBytes: 0, droppedBytes: 0, sha256: Buffer.alloc(0) },
      outputTruncated: true,
    }),
  );
  const lines = report.split('\n');
  const column = lines[0]?.indexOf('abcdefghijklmnopqrstuvwxyz');
  for (const line of lines) assert.equal(line.search(/(?<=:\s+)\S/), column, line);
  const expected = [
    "Command:     sh -c 'exit 3'",
    'Result:      exited with code 3',
    'Exit code:   3',
    'Started:     2026-01-02T03:04:05.000Z',
    'Duration:    1.5s',
    'Limits:      cpu 0.5 cores, memory 256 MiB, io write 1 MiB/s, pids 100',
    'CPU time:    1.5s',
    'Peak memory: 3 MiB',
    'IO:          read 0 B, written 4 KiB',
    `Stdout:      2 KiB (2048 bytes), 10 bytes dropped, sha256 ${'ab'.repeat(32)}`,
    'Stderr:      0 bytes',
    'Truncated:   yes: output beyond the cap was dropped',
  ];
  for (const line of expected)
    assert.ok(lines.includes(line), `missing ${JSON.stringify(line)} in\n${report}`);
  assert.equal(formatLimits(undefined), '-');
});

// OSC 52 sets the terminal's clipboard; CR and ESC[2K then erase the line that showed it.
const OSC52 = '\x1b]52;c;aGFja2Vk\x07\r\x1b[2Kok';

test('control characters from the server are shown, never sent to the terminal', () => {
  const hostile = job({
    command: ['sh', '-c', OSC52],
    workingDir: `/tmp/${OSC52}`,
    stoppedBy: `eve${OSC52}`,
    endReason: EndReason.END_REASON_STOPPED,
  });
  const texts = [
    listRow(hostile, t0).join(' '),
    formatReport(hostile, t0),
    summaryLine(hostile, t0),
    outcome(hostile),
  ];
  // Only the report's own line breaks.
  for (const text of texts) assert.doesNotMatch(text, /(?!\n)\p{Cc}/u);
  assert.equal(shellQuote(['sh', '-c', OSC52]), `sh -c $'\\x1b]52;c;aGFja2Vk\\x07\\x0d\\x1b[2Kok'`);
  assert.equal(shellQuote([`it's\\\x9b`]), `$'it\\'s\\\\\\u009b'`);
  assert.match(formatReport(hostile, t0), /^Working dir: +\/tmp\/\\x1b\]52;c;aGFja2Vk\\x07\\x0d/m);
  assert.match(formatReport(hostile, t0), /^Stopped by: +eve\\x1b\]52/m);
});
