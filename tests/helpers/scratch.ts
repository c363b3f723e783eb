/**
 * Directories that a test shares with its jobs. Jobs get private /tmp,
 * /var/tmp and /dev/shm (tmpfs in their mount namespace), so a file a test
 * puts under os.tmpdir() is invisible to them; these live on the host disk
 * instead, world-readable so that jobs (each owner its own uid) reach them. The caller
 * removes its directory. One made world-writable before an isolation starts is
 * private in that isolation's jobs, like every such host directory
 * (src/isolation/private-dirs.ts): make it so after.
 */
import { mkdir, mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';

const ROOT = '/var/lib/jobworker-test';

/** A fresh directory below /var/lib/jobworker-test, mode 0755 on the way down. */
export async function jobScratchDir(prefix: string): Promise<string> {
  await mkdir(ROOT, { recursive: true, mode: 0o755 });
  return mkdtemp(join(ROOT, prefix));
}
