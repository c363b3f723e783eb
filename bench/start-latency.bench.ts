/**
 * Scenario 1, start latency: a client's StartJob over mTLS until the job
 * (/bin/true) is observed ended, against
 *   (a) plain spawn('/bin/true') to 'exit';
 *   (b) the native helper alone with the same namespaces and cgroups: the
 *       helper spawned directly (the isolation's own argv) into one job's
 *       cgroups, made once and reused, to its exit and status-channel close;
 *   (b') the isolation layer, isolation.prepare() and start() to `exited`: (b) plus making,
 *       limiting, reading and removing the job's cgroups per job;
 *   (c) `runc run` of an equivalent bundle, when runc is on PATH.
 * Variants run in interleaved rounds, so that a change of the machine's load
 * hits all of them alike.
 */
import { tmpdir } from 'node:os';
import type { JobServiceClient } from '../src/gen/jobworker/v1/job_service.js';
import { createIsolation, type JobIsolation, type LaunchSpec } from '../src/isolation/index.js';
import { newJobId } from '../src/job/index.js';
import { waitFinished, startJob } from './lib/calls.js';
import type { BenchContext } from './lib/context.js';
import { findRunc } from './lib/runc.js';
import { startBenchServer } from './lib/servers.js';
import {
  distributionRow,
  goalOf,
  msSince,
  type Goal,
  type Row,
  type ScenarioResult,
} from './lib/stats.js';
import { startSpawner, type Spawner } from './lib/spawner.js';

const API = 'StartJob -> finished (mTLS)';
const SPAWN = '(a) spawn /bin/true';
const HELPER = '(b) native helper alone';
const LAUNCH = "(b') isolation.launch()";
const RUNC = '(c) runc run';
const WARMUP = 5;

/** The variants of one round, each returning its milliseconds. */
function variants(
  spawner: Spawner,
  isolation: JobIsolation,
  spec: () => LaunchSpec,
  client: JobServiceClient,
): [string, () => Promise<number>][] {
  const list: [string, () => Promise<number>][] = [
    [SPAWN, () => spawner.time('spawn')],
    [HELPER, () => spawner.time('helper')],
    [
      LAUNCH,
      async () => {
        const start = process.hrtime.bigint();
        const sandbox = await (await isolation.prepare(spec())).start();
        sandbox.stdout.resume();
        sandbox.stderr.resume();
        await sandbox.exited;
        return msSince(start);
      },
    ],
    [
      API,
      async () => {
        const start = process.hrtime.bigint();
        const job = await startJob(client, ['/bin/true']);
        await waitFinished(client, job.id);
        return msSince(start);
      },
    ],
  ];
  if (spawner.runc === 'ok') list.push([RUNC, () => spawner.time('runc')]);
  return list;
}

/** Runs warm-up rounds, then `samples` rounds of every variant in turn. */
async function measure(
  ctx: BenchContext,
  samples: number,
  times: Map<string, number[]>,
  list: [string, () => Promise<number>][],
): Promise<void> {
  for (let round = 0; round < WARMUP + samples; round++) {
    for (const [name, fn] of list) {
      const ms = await fn();
      if (round >= WARMUP) times.get(name)?.push(ms);
    }
    if (round % 50 === 49) ctx.progress(`start latency: round ${String(round + 1)}`);
  }
}

/** Runs scenario 1. */
export async function run(ctx: BenchContext): Promise<ScenarioResult> {
  const samples = ctx.config.startSamples;
  const notes: string[] = [];
  const times = new Map<string, number[]>([API, SPAWN, HELPER, LAUNCH].map((k) => [k, []]));
  const group = `jobworker-bench-${String(process.pid)}-local`;
  const isolation = await createIsolation({ stateDir: tmpdir(), cgroupGroup: group });
  const limits = isolation.resolveLimits({});
  const spec = (): LaunchSpec => ({
    jobId: newJobId(),
    argv: ['/bin/true'],
    env: ['PATH=/usr/bin:/bin'],
    cwd: '/',
    limits,
    hostNetwork: false,
  });
  const runcPath = await findRunc();
  if (runcPath === null)
    notes.push(
      '(c) skipped: runc is not on PATH; install it with `apt-get install runc` (the bench does not).',
    );
  // Every resource below is released in reverse order of creation, whatever fails.
  try {
    const spawner = await startSpawner({ group, limits, spec: spec(), runcPath });
    try {
      if (runcPath !== null && spawner.runc !== 'ok') notes.push(`(c) skipped: ${spawner.runc}.`);
      if (spawner.runc === 'ok') times.set(RUNC, []);
      const server = await startBenchServer('jobworker', ctx.certsDir, {
        cpuProfDir: ctx.config.cpuProfDir,
      });
      try {
        const client = await server.client();
        try {
          await measure(ctx, samples, times, variants(spawner, isolation, spec, client));
        } finally {
          client.close();
        }
      } finally {
        await server.close();
      }
    } finally {
      await spawner.close();
    }
  } finally {
    // Ends its fork server and removes the group directories made for this scenario.
    await isolation.close();
  }
  const rows: Row[] = [
    distributionRow(API, 'ms', times.get(API) ?? [], { vs: HELPER }),
    distributionRow(SPAWN, 'ms', times.get(SPAWN) ?? [], { baseline: true }),
    distributionRow(HELPER, 'ms', times.get(HELPER) ?? [], { baseline: true, vs: SPAWN }),
    distributionRow(LAUNCH, 'ms', times.get(LAUNCH) ?? [], { baseline: true, vs: HELPER }),
  ];
  const runcTimes = times.get(RUNC);
  if (runcTimes !== undefined) {
    rows.push(distributionRow(RUNC, 'ms', runcTimes, { baseline: true, vs: HELPER }));
    rows.push({ ...distributionRow(`${API} vs (c)`, 'ms', times.get(API) ?? []), vs: RUNC });
  }
  const api = rows[0]?.value ?? Number.NaN;
  const helper = rows[2]?.value ?? Number.NaN;
  const runc = runcTimes === undefined ? null : (rows[4]?.value ?? null);
  const goals: Goal[] = [
    goalOf(
      'StartJob -> finished over mTLS <= 2.0x (b) helper alone',
      { value: api / helper, unit: 'x', atMost: 2.0 },
      `${api.toFixed(2)} ms = ${(api / helper).toFixed(2)}x (helper ${helper.toFixed(2)} ms)`,
    ),
    goalOf(
      'the same <= 0.33x (c) runc run of an equal bundle',
      { value: runc === null ? Number.NaN : api / runc, unit: 'x', atMost: 0.33 },
      runc === null
        ? runcPath === null
          ? 'runc not installed: apt-get install runc'
          : 'runc run failed'
        : `${(api / runc).toFixed(2)}x (runc ${runc.toFixed(1)} ms)`,
    ),
  ];
  notes.push(
    '(a), (b) and (c) are spawned and timed by a small process of their own (bench/lib/spawner-child.ts): spawn() forks the caller, and the bench process grows.',
    `${String(samples)} samples per variant after ${String(WARMUP)} warm-up rounds, interleaved; one client, one TLS connection kept open.`,
    'StartJob -> finished = StartJob unary call, then StreamOutput(stderr, follow) until its `finished` event: two RPCs.',
  );
  return { id: 1, title: 'Start latency', rows, goals, notes };
}
