/**
 * Fixtures for job library tests: a JobManager over a temp state directory
 * with an isolation from isolations.ts, and followers that check offsets and
 * hash output as it streams (so tens of MB are never held in memory).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createJobManager,
  type JobManager,
  type JobManagerOptions,
  type JobStatus,
  type OutputEvent,
  type OutputOptions,
} from '../../src/job/index.js';
import type { IsolationFactory } from './isolations.js';

/** A manager for one test, and its state directory. */
export interface Fixture {
  readonly jobs: JobManager;
  readonly stateDir: string;
  /** Entries of `<stateDir>/jobs` (job directories). */
  jobDirs(): Promise<string[]>;
  /** Shuts the manager down (stopping what runs) and removes the state directory. */
  close(): Promise<void>;
}

/** Creates a manager over a fresh temp state directory. */
export async function newFixture(
  factory: IsolationFactory,
  options: Partial<Omit<JobManagerOptions, 'stateDir' | 'isolation'>> = {},
): Promise<Fixture> {
  const stateDir = await mkdtemp(join(tmpdir(), 'jobworker-job-test-'));
  const isolation = await factory.create(stateDir);
  const jobs = createJobManager({ ...options, stateDir, isolation });
  return {
    jobs,
    stateDir,
    jobDirs: () => readdir(join(stateDir, 'jobs')).catch(() => []),
    close: async () => {
      await jobs.shutdown();
      await isolation.close?.();
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}

/** A spec with defaults for what a test does not care about. */
export function spec(argv: string[], env: string[] = []) {
  return { argv, env, cwd: '/', limits: {}, hostNetwork: false };
}

/** Reads all of a job's output into memory (small outputs only). */
export async function readAll(jobs: JobManager, id: string, options: Partial<OutputOptions> = {}) {
  const events: OutputEvent[] = [];
  const parts = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
  for await (const e of jobs.output(id, { follow: true, ...options })) {
    events.push(e);
    if (e.type === 'chunk') parts[e.stream].push(e.data);
  }
  const last = events.at(-1);
  return {
    events,
    stdout: Buffer.concat(parts.stdout),
    stderr: Buffer.concat(parts.stderr),
    finished: last?.type === 'finished' ? last.job : null,
  };
}

/** Result of {@link hashFollow}. */
export interface Hashed {
  readonly stdoutBytes: number;
  readonly stdoutSha256: Buffer;
  readonly finished: JobStatus | null;
}

/**
 * Follows a job's stdout from offset 0, asserting that every chunk starts
 * where the previous one ended (no gap, no duplicate), and hashes it.
 * `onChunk` may await (a slow consumer).
 */
export async function hashFollow(
  jobs: JobManager,
  id: string,
  options: Partial<OutputOptions> = {},
  onChunk?: (offset: number) => Promise<void> | undefined,
): Promise<Hashed> {
  const hash = createHash('sha256');
  let next = 0;
  let finished: JobStatus | null = null;
  for await (const e of jobs.output(id, { follow: true, stream: 'stdout', ...options })) {
    if (e.type === 'chunk') {
      assert.equal(e.offset, next, 'chunk offset continues the previous chunk');
      hash.update(e.data);
      next += e.data.length;
      await onChunk?.(next);
    } else if (e.type === 'finished') {
      finished = e.job;
    }
  }
  return { stdoutBytes: next, stdoutSha256: hash.digest(), finished };
}

/** Waits for the first stdout bytes of a job that equal or contain `text`. */
export async function waitForOutput(jobs: JobManager, id: string, text: string): Promise<void> {
  let seen = '';
  // Returning from the loop ends the follower (its finally closes the file).
  for await (const e of jobs.output(id, { follow: true })) {
    if (e.type === 'chunk') seen += e.data.toString('latin1');
    if (seen.includes(text)) return;
  }
  throw new Error(
    `job ${id} ended without printing ${JSON.stringify(text)}; printed ${JSON.stringify(seen)}`,
  );
}
