/**
 * Run by the keyring test under `keyctl session -`, so that this process (the
 * server side: it owns the isolation and its fork server) has a session
 * keyring of its own: puts key argv[2] in it, then prints what a job's
 * `keyctl print %user:NAME` wrote and its exit code, as JSON.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { isolationFixture, run } from './isolation-fixture.js';

const name = process.argv[2] ?? '';
await promisify(execFile)('keyctl', ['add', 'user', name, 'secret', '@s']);
const fx = await isolationFixture();
try {
  const { stdout, report } = await run(fx.iso, ['keyctl', 'print', `%user:${name}`]);
  process.stdout.write(JSON.stringify({ stdout, exitCode: report.exitCode }));
} finally {
  await fx.dispose();
}
