/** The machine a run was measured on, for the report. */
import { readFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';
import { detectLayout } from '../../src/isolation/cgroup/detect.js';

/** Facts about the host, each a short string. */
export interface Machine {
  readonly cpu: string;
  readonly cores: number;
  readonly memory: string;
  readonly kernel: string;
  readonly os: string;
  readonly node: string;
  readonly cgroups: string;
  /** 1, 5 and 15 minute load averages when the run started. */
  readonly loadAtStart: string;
}

/** The current load averages, "a / b / c". */
export function loadAverage(): string {
  return loadavg()
    .map((l) => l.toFixed(2))
    .join(' / ');
}

/** Describes this host. */
export async function describeMachine(): Promise<Machine> {
  const osRelease = await readFile('/etc/os-release', 'utf8').catch(() => '');
  const pretty = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(osRelease)?.[1] ?? 'unknown';
  const layout = await detectLayout().catch(() => null);
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: availableParallelism(),
    memory: `${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    kernel: release(),
    os: pretty,
    node: process.version,
    cgroups: layout === null ? 'not detected' : layout.kind,
    loadAtStart: loadAverage(),
  };
}
