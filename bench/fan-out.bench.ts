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
import { cpuSeconds } from './lib/machine.js';
import { startBenchServer, type BenchServer } from './lib/servers.js';
import { goalOf, mbPerSecond, MiB, msSince, type Row, type ScenarioResult } from './lib/stats.js';

interface FanOut {
  readonly mbps: number;
  readonly peakRss: number;
  readonly bytes: number;
  /** The server process's CPU (all its threads) over the fan-out, in seconds. */
  readonly cpuSeconds: number;
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
  // Read before the window's timer starts, so that the window holds all of the measurement.
  const cpu0 = await cpuSeconds(server.pid);
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
  const cpu = (await cpuSeconds(server.pid)) - cpu0;
  const bytes = counts.reduce((sum, c) => sum + c.bytes, 0);
  return {
    mbps: mbPerSecond(bytes, ms),
    peakRss: await server.procStatusBytes('VmHWM'),
    bytes,
    cpuSeconds: cpu,
  };
}

/**
 * Runs small then big fan-outs on one server. With `writer` (the second
 * baseline), only the big one, from memory, while `writer` runs the same job
 * with nobody following it: the helper relays its bytes into a log on the same
 * cores, the cost a live job carries whatever its followers do.
 */
async function measure(
  ctx: BenchContext,
  server: BenchServer,
  kind: 'job' | 'memory',
  writer?: BenchServer,
): Promise<{ small: FanOut | null; big: FanOut }> {
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
    const small =
      writer === undefined ? await fanOut(server, channels, launcher(fanoutSmallBytes), 0) : null;
    ctx.progress(
      `fan-out (${kind}${writer === undefined ? '' : ', a job writing beside'}): ${String(fanoutFollowers)} followers of ${String(fanoutBytes / MiB)} MiB`,
    );
    const writerClient = writer === undefined ? null : await writer.client();
    try {
      let bigId = '';
      let writerId = '';
      const big = await fanOut(
        server,
        channels,
        async () => {
          if (writerClient !== null) {
            writerId = (
              await startJob(writerClient, ['head', '-c', String(fanoutBytes), '/dev/zero'])
            ).id;
          }
          return (bigId = await launcher(fanoutBytes)());
        },
        fanoutWindowSeconds,
      );
      // The job goes on writing after the followers were cancelled: let it end before the server stops.
      if (kind === 'job') await waitFinished(control, bigId);
      if (writerClient !== null) await waitFinished(writerClient, writerId);
      return { small, big };
    } finally {
      writerClient?.close();
    }
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
  let memory;
  let beside;
  try {
    job = await measure(ctx, jobworker, 'job');
    const baseline = await startBenchServer('baseline', ctx.certsDir);
    try {
      memory = await measure(ctx, baseline, 'memory');
      beside = await measure(ctx, baseline, 'memory', jobworker);
    } finally {
      await baseline.close();
    }
  } finally {
    await jobworker.close();
  }
  const jobSmall = job.small;
  if (jobSmall === null) throw new Error('no small fan-out');
  const big = `${String(f)} followers of a ${String(fanoutBytes / MiB)} MiB live job`;
  const mem = `${String(f)} followers from memory`;
  const memBeside = `${String(f)} from memory, the job writing unfollowed beside`;
  const rssBig = 'server peak RSS, big job';
  const rssSmall = `server peak RSS, ${String(fanoutSmallBytes / MiB)} MiB job`;
  const cpuBig = 'server CPU per GB sent, big job';
  const cpuMem = 'baseline server CPU per GB sent';
  const perGb = (run: FanOut): number => run.cpuSeconds / (run.bytes / 1e9);
  const rows: Row[] = [
    { label: big, unit: 'MB/s', value: job.big.mbps, vs: mem },
    {
      label: 'the same, against the second baseline',
      unit: 'MB/s',
      value: job.big.mbps,
      vs: memBeside,
    },
    { label: mem, unit: 'MB/s', value: memory.big.mbps, baseline: true },
    { label: memBeside, unit: 'MB/s', value: beside.big.mbps, baseline: true },
    { label: rssBig, unit: 'MB', value: job.big.peakRss / 1e6, vs: rssSmall },
    { label: rssSmall, unit: 'MB', value: jobSmall.peakRss / 1e6, baseline: true },
    {
      label: 'baseline server peak RSS, big',
      unit: 'MB',
      value: memory.big.peakRss / 1e6,
      baseline: true,
    },
    { label: `${String(f)} followers of the small job`, unit: 'MB/s', value: jobSmall.mbps },
    { label: cpuBig, unit: 's/GB', value: perGb(job.big), vs: cpuMem },
    { label: cpuMem, unit: 's/GB', value: perGb(memory.big), baseline: true },
  ];
  const ratio = job.big.mbps / memory.big.mbps;
  const ratioBeside = job.big.mbps / beside.big.mbps;
  const rssRatio = job.big.peakRss / jobSmall.peakRss;
  return {
    id: 4,
    title: 'Fan-out',
    rows,
    goals: [
      goalOf(
        `${String(f)} followers of a live job >= 85% of ${String(f)} from memory`,
        { value: 100 * ratio, unit: '%', atLeast: 85 },
        `${(100 * ratio).toFixed(0)}% (${job.big.mbps.toFixed(0)} / ${memory.big.mbps.toFixed(0)} MB/s)`,
      ),
      goalOf(
        'the same against the second baseline (the job writing beside), >= 85%',
        { value: 100 * ratioBeside, unit: '%', atLeast: 85 },
        `${(100 * ratioBeside).toFixed(0)}% (${beside.big.mbps.toFixed(0)} MB/s from memory beside the job)`,
      ),
      goalOf(
        'server peak RSS, big job with followers <= 1.25x a 1 MiB job',
        { value: rssRatio, unit: 'x', atMost: 1.25 },
        `${rssRatio.toFixed(2)}x (${(job.big.peakRss / 1e6).toFixed(0)} / ${(jobSmall.peakRss / 1e6).toFixed(0)} MB)`,
      ),
      goalOf(
        'the same peak < 200 MB',
        { value: job.big.peakRss / 1e6, unit: 'MB', atMost: 199.999 },
        `${(job.big.peakRss / 1e6).toFixed(0)} MB`,
      ),
    ],
    notes: [
      `Job: head -c ${String(fanoutBytes)} /dev/zero, output cap raised to ${String(fanoutBytes / MiB + 1)} MiB for this server. ${String(f)} followers, each its own TLS connection, started with the job (follow from offset 0).`,
      w > 0
        ? `Followers read for ${String(w)} s, then are cancelled: ${(job.big.bytes / 1e9).toFixed(2)} GB received from the job, ${(memory.big.bytes / 1e9).toFixed(2)} GB from the baseline.`
        : 'Followers read to the end.',
      'Second baseline: the same followers from memory while the jobworker server runs the same job with no follower (its helper relays the bytes into a log nobody reads), so that both sides carry the cost of the writing on the same two cores.',
      'Peak RSS is VmHWM of the server process, reset (clear_refs 5) before each measurement; "flat" is taken as within 25% of the small job\'s peak.',
      "Server CPU per GB sent: utime + stime of the server process (all its threads, /proc/PID/stat, 10 ms ticks) over the window, over the bytes the followers received; the jobworker server's also holds the job's writing (relay, digest, log), the baseline's only the sending.",
      'All clients run in the bench process, on the same 2 cores as the server: the figure is what the machine does end to end, client decryption included.',
    ],
  };
}
