/**
 * Test fixture for the real isolation layer: a JobIsolation with a cgroup
 * group of its own (tests run in parallel with other suites and must never
 * sweep each other's jobs), a job runner that collects output, and cleanup
 * that fails the test if a job cgroup was left behind.
 */
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import type { JobworkerError } from '../../src/errors.js';
import { nodeCgroupFs } from '../../src/isolation/cgroup/fs.js';
import {
  createIsolation,
  type ExitReport,
  type Isolation,
  type IsolationOptions,
  type JobIsolation,
  type LaunchSpec,
  type RequestedLimits,
  type Sandbox,
} from '../../src/isolation/index.js';

let serial = 0;

/** A fresh job id in the job layer's format: 26 characters of lowercase base32. */
export function newJobId(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  return [...randomBytes(26)].map((b) => alphabet[b % 32]).join('');
}

/** An isolation with its own cgroup group, and its teardown. */
export interface IsolationFixture {
  readonly iso: JobIsolation;
  readonly warnings: JobworkerError[];
  /** Asserts no job cgroup is left, then removes the group directories. */
  dispose(): Promise<void>;
}

/**
 * One fixture for the enclosing `describe`: made in its `before`, disposed in
 * its `after`, which also asserts that nothing warned. Read `iso` and
 * `warnings` only inside tests.
 */
export function suiteIsolation(): Omit<IsolationFixture, 'dispose'> {
  let fx: IsolationFixture | undefined;
  const current = (): IsolationFixture => {
    assert.ok(fx, 'the suite fixture is made in before()');
    return fx;
  };
  before(async () => {
    fx = await isolationFixture();
  });
  after(async () => {
    await current().dispose();
    assert.deepEqual(current().warnings, []);
  });
  return {
    get iso() {
      return current().iso;
    },
    get warnings() {
      return current().warnings;
    },
  };
}

/** Creates a fixture; `options` override the defaults (stateDir = the temp dir). */
export async function isolationFixture(
  options: Partial<IsolationOptions> = {},
): Promise<IsolationFixture> {
  const warnings: JobworkerError[] = [];
  const iso = await createIsolation({
    stateDir: tmpdir(),
    cgroupGroup: `jobworker-test-${process.pid}-${++serial}`,
    onWarning: (err) => warnings.push(err),
    ...options,
  });
  return {
    iso,
    warnings,
    async dispose() {
      const leftovers: string[] = [];
      for (const dir of iso.cgroupGroupDirs) {
        for (const child of await nodeCgroupFs.children(dir)) leftovers.push(`${dir}/${child}`);
      }
      await iso.sweepLeftovers();
      await iso.close(); // the group directories and the fork server
      assert.deepEqual(leftovers, [], 'job cgroups left behind');
    },
  };
}

/** What a test asks to run. */
export interface RunOptions {
  readonly env?: readonly string[];
  readonly cwd?: string;
  readonly limits?: RequestedLimits;
  readonly hostNetwork?: boolean;
  readonly jobId?: string;
}

/** A spec with test defaults: PATH only, cwd /, default limits, own network. */
export function specFor(
  iso: JobIsolation,
  argv: readonly string[],
  options: RunOptions = {},
): LaunchSpec {
  return {
    jobId: options.jobId ?? newJobId(),
    argv,
    env: options.env ?? ['PATH=/usr/local/bin:/usr/bin:/bin'],
    cwd: options.cwd ?? '/',
    limits: iso.resolveLimits(options.limits ?? {}),
    hostNetwork: options.hostNetwork ?? false,
  };
}

/** Collects a sandbox's output and exit report. */
export async function collect(
  sandbox: Sandbox,
): Promise<{ report: ExitReport; stdout: string; stderr: string }> {
  const read = async (stream: NodeJS.ReadableStream) => {
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(Buffer.from(chunk));
    return Buffer.concat(chunks).toString('utf8');
  };
  const [stdout, stderr, report] = await Promise.all([
    read(sandbox.stdout),
    read(sandbox.stderr),
    sandbox.exited,
  ]);
  return { report, stdout, stderr };
}

/** Prepares and starts a sandbox, as the job layer does (without its persist in between). */
export async function launch(
  iso: Isolation,
  spec: LaunchSpec,
  signal?: AbortSignal,
): Promise<Sandbox> {
  return (await iso.prepare(spec, signal)).start();
}

/** Launches `argv` and waits for its end. */
export async function run(
  iso: JobIsolation,
  argv: readonly string[],
  options: RunOptions = {},
): Promise<{ report: ExitReport; stdout: string; stderr: string }> {
  return collect(await launch(iso, specFor(iso, argv, options)));
}
