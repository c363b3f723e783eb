/**
 * Guards for tests that need the real kernel. Locally a missing capability
 * skips the test with its reason; with CI=true it fails instead, because CI
 * runs as root on a machine that has everything, and a skip there would hide
 * a broken environment.
 */
import { access, constants } from 'node:fs/promises';

const inCI = process.env['CI'] === 'true';

/**
 * Returns `false` when the requirement holds; otherwise a skip reason for
 * `test(name, { skip }, fn)` or `t.skip(reason)`. Under CI it throws instead
 * of skipping.
 */
export function guard(ok: boolean, reason: string): string | false {
  if (ok) return false;
  if (inCI) throw new Error(`CI=true but the test environment lacks: ${reason}`);
  return reason;
}

/** Skip reason unless running as root (uid 0). */
export function requiresRoot(): string | false {
  return guard(process.getuid?.() === 0, 'requires root');
}

/** Skip reason unless `path` exists and is executable. */
export async function requiresExecutable(path: string): Promise<string | false> {
  const ok = await access(path, constants.X_OK).then(
    () => true,
    () => false,
  );
  return guard(ok, `requires ${path}`);
}

/**
 * The cgroup layout this run must find (`v2`, `v1` or `hybrid`), when the
 * caller says: scripts/vm-test.sh sets it to the layout it booted, and
 * tests/contract/cgroup-layout.test.ts fails when the host has another.
 */
export const expectedCgroupLayout: string | undefined = process.env['JOBWORKER_VM_LAYOUT'];

/**
 * Skip reason for a test of one cgroup layout's code path on a host of
 * another (a v1 freezer test on pure v2). Never fails under CI: the layout
 * is a fact of the host, not a broken environment, and CI pins which one it
 * booted with {@link expectedCgroupLayout}.
 */
export function requiresLayout(applies: boolean, reason: string): string | false {
  return applies ? false : reason;
}

/** Skip reason unless the host mounts cgroup v2 with the controllers the limits need. */
export async function requiresCgroupV2Controllers(): Promise<string | false> {
  // Not forced under CI: the CI machine is hybrid (v2 has no controllers);
  // the v2 code path is covered there against the fake cgroupfs.
  const controllers = await import('node:fs/promises')
    .then((fs) => fs.readFile('/sys/fs/cgroup/cgroup.controllers', 'utf8'))
    .catch(() => '');
  const ok = ['cpu', 'memory', 'io', 'pids'].every((c) => controllers.split(/\s+/).includes(c));
  return ok ? false : 'requires a cgroup v2 host with cpu, memory, io and pids controllers';
}
