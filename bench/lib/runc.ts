/**
 * Baseline (c) of start latency: `runc run` of a bundle equivalent to a
 * jobworker job: the same five namespaces, the same default limits, uid
 * 65534, /bin/true from the host's /usr mounted read-only. Used only when
 * `runc` is on PATH (the bench never installs it).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { access, constants, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { Limits } from '../../src/isolation/index.js';

/** The runc binary on PATH, or null. */
export async function findRunc(): Promise<string | null> {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, 'runc');
    const ok = await access(candidate, constants.X_OK).then(
      () => true,
      () => false,
    );
    if (ok) return candidate;
  }
  return null;
}

/** An OCI runtime config (runtime-spec 1.0) for `/bin/true` with `limits`. */
function ociConfig(limits: Limits): unknown {
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: 65534, gid: 65534 },
      args: ['/bin/true'],
      env: ['PATH=/usr/bin:/bin'],
      cwd: '/',
      noNewPrivileges: true,
      capabilities: { bounding: [], effective: [], permitted: [] },
    },
    root: { path: 'rootfs', readonly: true },
    hostname: 'bench',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      {
        destination: '/dev',
        type: 'tmpfs',
        source: 'tmpfs',
        options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
      },
      { destination: '/usr', type: 'bind', source: '/usr', options: ['rbind', 'ro'] },
    ],
    linux: {
      namespaces: ['pid', 'network', 'ipc', 'uts', 'mount'].map((type) => ({ type })),
      resources: {
        memory: { limit: limits.memoryBytes },
        cpu: { quota: limits.cpuMillis * 100, period: 100_000 },
        pids: { limit: limits.pidsMax },
      },
    },
  };
}

/** A bundle and runc state directory in a temp dir. */
export interface RuncBundle {
  /** Runs one container to its end; resolves with runc's exit code. */
  run(id: string): Promise<number | null>;
  /** Removes the temp dir. */
  remove(): Promise<void>;
}

/** Writes the bundle: rootfs with merged-/usr symlinks (Debian) and config.json. */
export async function makeBundle(runc: string, limits: Limits): Promise<RuncBundle> {
  const dir = await mkdtemp(join(tmpdir(), 'jobworker-bench-runc-'));
  const rootfs = join(dir, 'rootfs');
  for (const sub of ['proc', 'dev', 'usr', 'tmp'])
    await mkdir(join(rootfs, sub), { recursive: true });
  for (const link of ['bin', 'lib', 'lib64', 'sbin'])
    await symlink(`usr/${link}`, join(rootfs, link));
  await writeFile(join(dir, 'config.json'), JSON.stringify(ociConfig(limits)));
  const state = join(dir, 'state');
  return {
    async run(id) {
      const child = spawn(runc, ['--root', state, 'run', '--bundle', dir, id], {
        stdio: 'ignore',
      });
      const [code] = (await once(child, 'exit')) as [number | null];
      return code;
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
