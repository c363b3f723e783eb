/**
 * Fixtures for persistence tests: JobManagers opened (and reopened) with
 * openJobManager over one state directory, with the plain isolation, a clock
 * the test can move, and the warnings recovery and retention log.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  openJobManager,
  type JobManager,
  type JobManagerOptions,
  type JobStatus,
} from '../../src/job/index.js';
import { readAll, spec } from './job-fixture.js';
import { PlainIsolation } from './plain-isolation.js';

/** A state directory and the managers opened on it, one at a time. */
export interface PersistFixture {
  readonly stateDir: string;
  readonly jobsDir: string;
  /** Warnings logged by every manager opened so far. */
  readonly warnings: string[];
  /** Added to Date.now() by the retention clock of managers opened from now on. */
  skewMs: number;
  /** Opens a manager on the state directory (shut the previous one down first). */
  open(options?: Partial<Omit<JobManagerOptions, 'stateDir' | 'isolation'>>): Promise<JobManager>;
  /** Shuts down every manager opened and removes the state directory. */
  close(): Promise<void>;
}

/** Creates a fixture over a fresh temp directory, or over `stateDir`. */
export async function persistFixture(stateDir?: string): Promise<PersistFixture> {
  const dir = stateDir ?? (await mkdtemp(join(tmpdir(), 'jobworker-persist-')));
  const managers: JobManager[] = [];
  const fx: PersistFixture = {
    stateDir: dir,
    jobsDir: join(dir, 'jobs'),
    warnings: [],
    skewMs: 0,
    async open(options = {}) {
      const jobs = await openJobManager({
        now: () => Date.now() + fx.skewMs,
        log: (level, message) => {
          if (level === 'warn') fx.warnings.push(message);
        },
        ...options,
        stateDir: dir,
        isolation: new PlainIsolation(),
      });
      managers.push(jobs);
      return jobs;
    },
    async close() {
      await Promise.all(managers.map((m) => m.shutdown()));
      if (stateDir === undefined) await rm(dir, { recursive: true, force: true });
    },
  };
  return fx;
}

/** Runs `argv` as `owner` (alice unless given) to its end and returns its final status. */
export async function runToEnd(
  jobs: JobManager,
  argv: string[],
  owner = 'alice',
): Promise<JobStatus> {
  const started = await jobs.start(owner, spec(argv));
  const { finished } = await readAll(jobs, started.id);
  if (finished === null) throw new Error(`job ${started.id} did not report its end`);
  return finished;
}
