/**
 * Scenario 2, start throughput: isolated /bin/true jobs per second through
 * the API, with N concurrent clients (each its own TLS connection) that each
 * start a job and wait for its end, for a fixed duration. Afterwards no job
 * cgroup and no process of the server may be left. The baseline is the same
 * number of concurrent plain spawn('/bin/true') loops in this process: the
 * machine's floor for starting processes at all.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { startJob, waitFinished } from './lib/calls.js';
import type { BenchContext } from './lib/context.js';
import { findLeftovers } from './lib/leftovers.js';
import { startBenchServer } from './lib/servers.js';
import { goalOf, msSince, summarize, type ScenarioResult } from './lib/stats.js';

const API = 'isolated jobs through the API';
const SPAWN = 'plain spawn /bin/true, same concurrency';

/** Runs `worker` in `clients` loops until `seconds` have passed; returns completions per second and latencies. */
async function saturate(
  clients: number,
  seconds: number,
  worker: (client: number) => Promise<void>,
): Promise<{ perSecond: number; latencies: number[]; errors: number; firstError: string | null }> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | null = null;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(seconds * 1e9);
  await Promise.all(
    Array.from({ length: clients }, async (_, i) => {
      while (process.hrtime.bigint() < deadline) {
        const t = process.hrtime.bigint();
        try {
          await worker(i);
          latencies.push(msSince(t));
        } catch (err) {
          errors++;
          firstError ??= err instanceof Error ? err.message : String(err);
        }
      }
    }),
  );
  return { perSecond: latencies.length / (msSince(start) / 1000), latencies, errors, firstError };
}

/** Runs scenario 2. */
export async function run(ctx: BenchContext): Promise<ScenarioResult> {
  const { throughputClients: clients, throughputSeconds: seconds } = ctx.config;
  const notes: string[] = [];
  const server = await startBenchServer('jobworker', ctx.certsDir, {
    cpuProfDir: ctx.config.cpuProfDir,
  });
  const channels = await Promise.all(Array.from({ length: clients }, () => server.client()));
  let api;
  let leftovers;
  try {
    // Connect and warm up every channel before the clock starts.
    await Promise.all(
      channels.map(async (c) => waitFinished(c, (await startJob(c, ['/bin/true'])).id)),
    );
    ctx.progress(`start throughput: ${String(clients)} clients for ${String(seconds)} s`);
    api = await saturate(clients, seconds, async (i) => {
      const channel = channels[i];
      if (channel === undefined) throw new Error(`no channel ${String(i)}`);
      const job = await startJob(channel, ['/bin/true']);
      const end = await waitFinished(channel, job.id);
      if (end.exitCode !== 0) throw new Error(`job ${job.id} ended with ${String(end.exitCode)}`);
    });
    // Every job was awaited to its end: nothing of them may be left now.
    leftovers = await findLeftovers(server.pid, server.groupDirs);
  } finally {
    for (const c of channels) c.close();
    await server.close();
  }
  ctx.progress('start throughput: plain spawn baseline');
  const plain = await saturate(clients, Math.min(seconds, 5), async () => {
    const child = spawn('/bin/true', { stdio: 'ignore' });
    await once(child, 'exit');
  });
  if (api.errors > 0)
    notes.push(`${String(api.errors)} failed starts; first: ${api.firstError ?? ''}`);
  notes.push(
    `${String(clients)} clients, each its own TLS connection, each starting /bin/true and following it to its end, for ${String(seconds)} s; ${String(api.latencies.length)} jobs.`,
    `The plain-spawn baseline runs for ${String(Math.min(seconds, 5))} s in the bench process.`,
    `Leftovers checked after the run in ${server.groupDirs.join(', ')}: ${String(leftovers.cgroups.length)} cgroups, ${String(leftovers.processes.length)} processes${leftovers.processes.length > 0 ? ` (${leftovers.processes.slice(0, 5).join('; ')})` : ''}.`,
  );
  const lat = summarize(api.latencies);
  return {
    id: 2,
    title: 'Start throughput',
    rows: [
      { label: API, unit: 'jobs/s', value: api.perSecond, n: api.latencies.length, vs: SPAWN },
      {
        label: SPAWN,
        unit: 'spawns/s',
        value: plain.perSecond,
        n: plain.latencies.length,
        baseline: true,
      },
      {
        label: 'start -> finished per job, under load',
        unit: 'ms',
        value: lat.p50,
        p90: lat.p90,
        p99: lat.p99,
        n: lat.n,
      },
    ],
    goals: [
      goalOf(
        `start throughput, ${String(clients)} clients >= 300 jobs/s`,
        { value: api.perSecond, unit: 'jobs/s', atLeast: 300 },
        `${api.perSecond.toFixed(0)} jobs/s = ${(api.perSecond / plain.perSecond).toFixed(2)}x plain spawn at the same concurrency`,
      ),
      {
        text: 'no leftover cgroup or process',
        met: leftovers.cgroups.length === 0 && leftovers.processes.length === 0,
        detail: `${String(leftovers.cgroups.length)} cgroups, ${String(leftovers.processes.length)} processes`,
      },
    ],
    notes,
  };
}
