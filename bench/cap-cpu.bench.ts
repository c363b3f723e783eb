/**
 * Scenario 8, past the output cap: a job prints as fast as it can
 * (`cat /dev/zero`) into a server whose output cap is small, and the bench
 * measures, over a window that starts once the cap is long passed, the CPU
 * time of the server's side (the server process, its fork server and the
 * job's helper: all in the server's cgroup) and of the job's side (init and
 * the command, in the job's cgroups), from /proc/PID/stat. Then the job is
 * stopped and its final status says how many bytes it printed past the cap
 * (dropped), which must equal what it wrote.
 */
import { readFile, readdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { Metadata, type ServiceError } from '@grpc/grpc-js';
import type { JobServiceClient } from '../src/gen/jobworker/v1/job_service.js';
import { connected, startJob, waitFinished } from './lib/calls.js';
import type { BenchContext } from './lib/context.js';
import { cpuSeconds } from './lib/machine.js';
import { startBenchServer } from './lib/servers.js';
import { goalOf, MiB, type ScenarioResult } from './lib/stats.js';

/** The children of `pid` (all its threads'). */
async function children(pid: number): Promise<number[]> {
  const tasks = await readdir(`/proc/${String(pid)}/task`).catch(() => []);
  const out: number[] = [];
  for (const t of tasks) {
    const text = await readFile(`/proc/${String(pid)}/task/${t}/children`, 'utf8').catch(() => '');
    for (const c of text.trim().split(/\s+/)) if (c !== '') out.push(Number(c));
  }
  return out;
}

/** The server's side (server, fork server, helpers) and the job's side (the helpers' descendants). */
async function processTree(server: number): Promise<{ serverSide: number[]; jobSide: number[] }> {
  const forkServers = await children(server);
  const helpers = (await Promise.all(forkServers.map(children))).flat();
  const jobSide: number[] = [];
  let level = (await Promise.all(helpers.map(children))).flat();
  while (level.length > 0) {
    jobSide.push(...level);
    level = (await Promise.all(level.map(children))).flat();
  }
  return { serverSide: [server, ...forkServers, ...helpers], jobSide };
}

async function total(pids: readonly number[]): Promise<number> {
  return (await Promise.all(pids.map(cpuSeconds))).reduce((a, b) => a + b, 0);
}

function stopJob(client: JobServiceClient, jobId: string): Promise<void> {
  return new Promise((resolve, reject) => {
    client.stopJob(
      { jobId, gracePeriod: undefined },
      new Metadata(),
      {},
      (err: ServiceError | null) => {
        if (err !== null) reject(err);
        else resolve();
      },
    );
  });
}

/** Runs scenario 8. */
export async function run(ctx: BenchContext): Promise<ScenarioResult> {
  const { capBytes, capSeconds } = ctx.config;
  const server = await startBenchServer('jobworker', ctx.certsDir, {
    outputCapBytes: capBytes,
    cpuProfDir: ctx.config.cpuProfDir,
  });
  let measured;
  try {
    const client = await server.client();
    try {
      await connected(client);
      const started = process.hrtime.bigint();
      const job = await startJob(client, ['cat', '/dev/zero']);
      // The cap is reached within milliseconds; a second lets the relay settle.
      await sleep(1000);
      const tree = await processTree(server.pid);
      const [rest0, s0, j0] = await Promise.all([
        total(tree.serverSide.slice(1)),
        total(tree.serverSide),
        total(tree.jobSide),
      ]);
      const t0 = process.hrtime.bigint();
      await sleep(capSeconds * 1000);
      const [rest1, s1, j1] = await Promise.all([
        total(tree.serverSide.slice(1)),
        total(tree.serverSide),
        total(tree.jobSide),
      ]);
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const ranSeconds = Number(process.hrtime.bigint() - started) / 1e9;
      await stopJob(client, job.id);
      const finished = await waitFinished(client, job.id);
      const stored = (finished.stdout?.storedBytes ?? 0) + (finished.stderr?.storedBytes ?? 0);
      const dropped = (finished.stdout?.droppedBytes ?? 0) + (finished.stderr?.droppedBytes ?? 0);
      measured = {
        serverPercent: (100 * (s1 - s0)) / seconds,
        helperPercent: (100 * (rest1 - rest0)) / seconds,
        jobPercent: (100 * (j1 - j0)) / seconds,
        seconds,
        stored,
        dropped,
        ranSeconds,
        helpers: tree.serverSide.length - 1,
      };
    } finally {
      client.close();
    }
  } finally {
    await server.close();
  }
  const serverRow = "server's side CPU (server, fork server, helper)";
  return {
    id: 8,
    title: 'Past the output cap',
    rows: [
      { label: serverRow, unit: '% of a core', value: measured.serverPercent },
      {
        label: '  of which fork server and helper',
        unit: '% of a core',
        value: measured.helperPercent,
      },
      { label: "job's side CPU (init, cat)", unit: '% of a core', value: measured.jobPercent },
      { label: 'bytes stored (the cap)', unit: 'MiB', value: measured.stored / MiB },
      { label: 'bytes dropped past the cap', unit: 'MiB', value: measured.dropped / MiB },
      {
        label: "the job's output rate past the cap",
        unit: 'MB/s',
        value: measured.dropped / 1e6 / measured.ranSeconds,
      },
    ],
    goals: [
      goalOf(
        'server CPU while a job prints at full speed past its output cap <= 5% of one core',
        { value: measured.serverPercent, unit: '% of a core', atMost: 5 },
        `${measured.serverPercent.toFixed(1)}% (job's side ${measured.jobPercent.toFixed(0)}%)`,
      ),
    ],
    notes: [
      `Job: cat /dev/zero, output cap ${String(capBytes / MiB)} MiB; CPU (utime + stime from /proc/PID/stat, 10 ms ticks) over ${measured.seconds.toFixed(1)} s, from 1 s after the start; then StopJob.`,
      `Server's side: the server process, its fork server and the job's helper (${String(measured.helpers)} processes), which run in the server's cgroup; job's side: the helper's descendants, in the job's cgroups (default limits).`,
    ],
  };
}
