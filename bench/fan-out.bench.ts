/**
 * Scenario 4, fan-out: F followers (each its own TLS connection) of a live
 * job printing N bytes as fast as it can (`head -c N /dev/zero`), started
 * together with the job; aggregate MB/s received, against F followers of the
 * baseline server streaming N bytes from memory; and each server's peak RSS
 * (VmHWM of its process, reset before each measurement), flat against a
 * small (1 MiB) job. Followers read for a fixed window, then are cancelled
 * (reading F x N bytes to the end takes F x longer than the point proves;
 * BENCH_FANOUT_WINDOW_SECONDS=0 reads to the end).
 *
 * The output cap of the jobworker server is raised to N + 1 MiB: at the
 * default 1 GiB cap a 2 GiB job would be truncated.
 */
import { setMaxListeners } from 'node:events';
import type { JobServiceClient } from '../src/gen/jobworker/v1/job_service.js';
import { connected, countStream, startJob, waitFinished } from './lib/calls.js';
import type { BenchContext } from './lib/context.js';
import { startBenchServer, type BenchServer } from './lib/servers.js';
import { mbPerSecond, MiB, msSince, type Row, type ScenarioResult } from './lib/stats.js';

interface FanOut {
  readonly mbps: number;
  readonly peakRss: number;
  readonly bytes: number;
}

/** One fan-out: `start` yields the id the followers read; a window of 0 reads to the end. */
async function fanOut(
  server: BenchServer,
  channels: readonly JobServiceClient[],
  start: () => Promise<string>,
  windowSeconds: number,
): Promise<FanOut> {
  await server.resetPeak();
  const window = new AbortController();
  // One listener per follower on this one signal: not a leak.
  setMaxListeners(channels.length + 1, window.signal);
  const timer =
    windowSeconds > 0
      ? setTimeout(() => {
          window.abort();
        }, windowSeconds * 1000)
      : null;
  const t0 = process.hrtime.bigint();
  let counts;
  try {
    const id = await start();
    counts = await Promise.all(
      channels.map((c) => countStream(c, { jobId: id, follow: true }, window.signal)),
    );
  } finally {
    if (timer !== null) clearTimeout(timer);
  }
  const ms = msSince(t0);
  const bytes = counts.reduce((sum, c) => sum + c.bytes, 0);
  return { mbps: mbPerSecond(bytes, ms), peakRss: await server.procStatusBytes('VmHWM'), bytes };
}

/** Runs small then big fan-outs on one server. */
async function measure(
  ctx: BenchContext,
  server: BenchServer,
  kind: 'job' | 'memory',
): Promise<{ small: FanOut; big: FanOut }> {
  const { fanoutFollowers, fanoutBytes, fanoutSmallBytes, fanoutWindowSeconds } = ctx.config;
  const channels = await Promise.all(
    Array.from({ length: fanoutFollowers }, () => server.client()),
  );
  try {
    await Promise.all(channels.map(connected));
    const control = channels[0];
    if (control === undefined) throw new Error('no followers');
    const launcher = (bytes: number) => async (): Promise<string> =>
      kind === 'memory'
        ? String(bytes)
        : (await startJob(control, ['head', '-c', String(bytes), '/dev/zero'])).id;
    const small = await fanOut(server, channels, launcher(fanoutSmallBytes), 0);
    ctx.progress(
      `fan-out (${kind}): ${String(fanoutFollowers)} followers of ${String(fanoutBytes / MiB)} MiB`,
    );
    let bigId = '';
    const big = await fanOut(
      server,
      channels,
      async () => (bigId = await launcher(fanoutBytes)()),
      fanoutWindowSeconds,
    );
    // The job goes on writing after the followers were cancelled: let it end before the server stops.
    if (kind === 'job') await waitFinished(control, bigId);
    return { small, big };
  } finally {
    for (const c of channels) c.close();
  }
}

/** Runs scenario 4. */
export async function run(ctx: BenchContext): Promise<ScenarioResult> {
  const { fanoutFollowers: f, fanoutBytes, fanoutSmallBytes, fanoutWindowSeconds: w } = ctx.config;
  const jobworker = await startBenchServer('jobworker', ctx.certsDir, {
    outputCapBytes: fanoutBytes + MiB,
    cpuProfDir: ctx.config.cpuProfDir,
  });
  let job;
  try {
    job = await measure(ctx, jobworker, 'job');
  } finally {
    await jobworker.close();
  }
  const baseline = await startBenchServer('baseline', ctx.certsDir);
  let memory;
  try {
    memory = await measure(ctx, baseline, 'memory');
  } finally {
    await baseline.close();
  }
  const big = `${String(f)} followers of a ${String(fanoutBytes / MiB)} MiB live job`;
  const mem = `baseline: ${String(f)} followers from memory`;
  const rssBig = 'server peak RSS, big job';
  const rssSmall = `server peak RSS, ${String(fanoutSmallBytes / MiB)} MiB job`;
  const rows: Row[] = [
    { label: big, unit: 'MB/s', value: job.big.mbps, vs: mem },
    { label: mem, unit: 'MB/s', value: memory.big.mbps, baseline: true },
    { label: rssBig, unit: 'MB', value: job.big.peakRss / 1e6, vs: rssSmall },
    { label: rssSmall, unit: 'MB', value: job.small.peakRss / 1e6, baseline: true },
    {
      label: 'baseline server peak RSS, big',
      unit: 'MB',
      value: memory.big.peakRss / 1e6,
      baseline: true,
    },
    { label: `${String(f)} followers of the small job`, unit: 'MB/s', value: job.small.mbps },
  ];
  const ratio = job.big.mbps / memory.big.mbps;
  return {
    id: 4,
    title: 'Fan-out',
    rows,
    goals: [
      {
        text: '>= 85% of the baseline',
        met: ratio >= 0.85,
        detail: `${(100 * ratio).toFixed(0)}%`,
      },
      {
        text: 'peak RSS < 200 MB',
        met: job.big.peakRss < 200e6,
        detail: `${(job.big.peakRss / 1e6).toFixed(0)} MB`,
      },
      {
        text: 'peak RSS flat against a 1 MiB job',
        // "Flat": within 25% (allocator noise) of the small job's peak.
        met: job.big.peakRss <= 1.25 * job.small.peakRss,
        detail: `${(job.big.peakRss / job.small.peakRss).toFixed(2)}x the small job's`,
      },
    ],
    notes: [
      `Job: head -c ${String(fanoutBytes)} /dev/zero, output cap raised to ${String(fanoutBytes / MiB + 1)} MiB for this server. ${String(f)} followers, each its own TLS connection, started with the job (follow from offset 0).`,
      w > 0
        ? `Followers read for ${String(w)} s, then are cancelled: ${(job.big.bytes / 1e9).toFixed(2)} GB received from the job, ${(memory.big.bytes / 1e9).toFixed(2)} GB from the baseline.`
        : 'Followers read to the end.',
      'Peak RSS is VmHWM of the server process, reset (clear_refs 5) before each measurement; "flat" is taken as within 25% of the small job\'s peak.',
      'All clients run in the bench process, on the same 2 cores as the server: the figure is what the machine does end to end, client decryption included.',
    ],
  };
}
