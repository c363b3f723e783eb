/**
 * A minimal "server" process for the crash tests of persistence: opens a
 * JobManager on the REAL isolation over the state directory given, runs one
 * job to its end and starts another that keeps running, then prints one JSON
 * line (the jobs' ids and the finished job's status) and waits to be killed.
 * Closing its stdin shuts it down cleanly instead.
 *
 * argv[2]: JSON {stateDir, cgroupGroup, marker}; the running job carries
 * `marker` in its argv so that the test can look for it in /proc.
 */
import { createHash } from 'node:crypto';
import { createIsolation } from '../../src/isolation/index.js';
import { openJobManager } from '../../src/job/index.js';

const { stateDir, cgroupGroup, marker } = JSON.parse(process.argv[2] ?? '{}') as {
  stateDir: string;
  cgroupGroup: string;
  marker: string;
};
const isolation = await createIsolation({ stateDir, cgroupGroup });
const jobs = await openJobManager({ stateDir, isolation });
const spec = (argv: string[]) => ({ argv, env: [], cwd: '/', limits: {}, hostNetwork: false });

// 200 KB of varied bytes on stdout (several log records), a line on stderr.
const done = await jobs.start(
  'alice',
  spec(['sh', '-c', 'head -c 200000 /dev/urandom; echo to-stderr >&2; exit 3']),
);
let finished = null;
const hash = createHash('sha256');
for await (const e of jobs.output(done.id, { follow: true, stream: 'stdout' })) {
  if (e.type === 'chunk') hash.update(e.data);
  if (e.type === 'finished') finished = e.job;
}
const running = await jobs.start(
  'bob',
  spec(['sh', '-c', 'printf started; while :; do sleep 1; done', marker]),
);
for await (const e of jobs.output(running.id, { follow: true })) {
  if (e.type === 'chunk') break;
}
process.stdout.write(
  `${JSON.stringify({
    finishedId: done.id,
    runningId: running.id,
    streamedSha256: hash.digest('hex'),
    finished: finished && {
      endReason: finished.endReason,
      exitCode: finished.exitCode,
      stdoutBytes: finished.stdout.storedBytes,
      stdoutSha256: finished.stdout.sha256?.toString('hex'),
      stderrSha256: finished.stderr.sha256?.toString('hex'),
      usage: finished.usage,
    },
  })}\n`,
);
process.stdin.resume();
process.stdin.on('end', () => {
  void jobs.shutdown().then(() => process.exit(0));
});
