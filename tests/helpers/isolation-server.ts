/**
 * A stand-in server for the "server killed with SIGKILL" test: a separate
 * Node process that creates the isolation (cgroup group from argv[2]),
 * launches a job with a setsid background child, prints one JSON line and
 * waits to be killed.
 */
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { createIsolation } from '../../src/isolation/index.js';

const group = process.argv[2] ?? 'jobworker-test-server';
const jobId = process.argv[3] ?? 'abcdefghijklmnopqrstuvwxyz';
const iso = await createIsolation({ stateDir: tmpdir(), cgroupGroup: group });
const prepared = await iso.prepare({
  jobId,
  argv: ['sh', '-c', 'setsid sleep 1000 & echo ready; exec sleep 1000'],
  env: ['PATH=/usr/bin:/bin'],
  cwd: '/',
  limits: iso.resolveLimits({}),
  hostNetwork: false,
});
const sandbox = await prepared.start();
sandbox.stderr.resume();
// "ready" comes after the fork of the background child: it is in the cgroup.
await once(sandbox.stdout, 'data');
sandbox.stdout.resume();
process.stdout.write(
  `${JSON.stringify({ helperPid: sandbox.pid, groupDirs: iso.cgroupGroupDirs })}\n`,
);
await sandbox.exited; // never, unless killed from outside
