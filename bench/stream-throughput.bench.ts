/**
 * Scenario 3, stream throughput: one follower reading a job's whole stored
 * output (N bytes of `head -c N /dev/zero`, finished before the read
 * starts) through StreamOutput, against the baseline server (same TLS
 * listener, same grpc-js, same message type) sending the same bytes from
 * memory in chunks of the job log reader's buffer size. Runs alternate
 * between the two servers; the figure is the median run.
 */
import { countStream, startJob, waitFinished } from './lib/calls.js';
import type { BenchContext } from './lib/context.js';
import { BASELINE_CHUNK_BYTES } from './lib/chunk.js';
import { startBenchServer, type BenchServer } from './lib/servers.js';
import { goalOf, mbPerSecond, msSince, summarize, type ScenarioResult } from './lib/stats.js';

const JOB = 'StreamOutput of a finished job';
const MEMORY = 'baseline: grpc-js from memory';
const MEMORY_SAME = "baseline at the job's message size";

/** Reads `jobId` once on `server`; returns MB/s and the mean message size. */
async function readOnce(server: BenchServer, jobId: string, bytes: number) {
  const client = await server.client();
  try {
    const start = process.hrtime.bigint();
    const got = await countStream(client, { jobId });
    const ms = msSince(start);
    if (got.bytes !== bytes) throw new Error(`read ${String(got.bytes)} of ${String(bytes)} bytes`);
    return { mbps: mbPerSecond(got.bytes, ms), chunk: got.bytes / got.chunks };
  } finally {
    client.close();
  }
}

/** Runs scenario 3. */
export async function run(ctx: BenchContext): Promise<ScenarioResult> {
  const bytes = ctx.config.streamBytes;
  const runs = ctx.config.quick ? 1 : 3;
  const jobworker = await startBenchServer('jobworker', ctx.certsDir, {
    cpuProfDir: ctx.config.cpuProfDir,
  });
  const baseline = await startBenchServer('baseline', ctx.certsDir);
  const job: number[] = [];
  const memory: number[] = [];
  const memorySame: number[] = [];
  let chunk = 0;
  try {
    const client = await jobworker.client();
    let jobId: string;
    try {
      jobId = (await startJob(client, ['head', '-c', String(bytes), '/dev/zero'])).id;
      const end = await waitFinished(client, jobId);
      const stored = end.stdout?.storedBytes ?? 0;
      if (stored !== bytes)
        throw new Error(`the job stored ${String(stored)} of ${String(bytes)} bytes`);
    } finally {
      client.close();
    }
    for (let i = 0; i < runs; i++) {
      ctx.progress(`stream throughput: run ${String(i + 1)} of ${String(runs)}`);
      const got = await readOnce(jobworker, jobId, bytes);
      job.push(got.mbps);
      chunk = got.chunk;
      memory.push((await readOnce(baseline, String(bytes), bytes)).mbps);
      // The job's messages are smaller (log records split at read-buffer
      // boundaries): this run separates the cost of message size from the
      // cost of the log.
      const same = `${String(bytes)}:${String(Math.round(chunk))}`;
      memorySame.push((await readOnce(baseline, same, bytes)).mbps);
    }
  } finally {
    await jobworker.close();
    await baseline.close();
  }
  const j = summarize(job).p50;
  const m = summarize(memory).p50;
  return {
    id: 3,
    title: 'Stream throughput',
    rows: [
      { label: JOB, unit: 'MB/s', value: j, n: runs, vs: MEMORY },
      { label: MEMORY, unit: 'MB/s', value: m, n: runs, baseline: true },
      {
        label: MEMORY_SAME,
        unit: 'MB/s',
        value: summarize(memorySame).p50,
        n: runs,
        baseline: true,
        vs: MEMORY,
      },
    ],
    goals: [
      goalOf(
        'one StreamOutput of a finished job >= 95% of grpc-js from memory',
        { value: (100 * j) / m, unit: '%', atLeast: 95 },
        `${((100 * j) / m).toFixed(0)}% (${j.toFixed(0)} / ${m.toFixed(0)} MB/s)`,
      ),
    ],
    notes: [
      `${(bytes / 2 ** 20).toFixed(0)} MiB, one follower, one TLS connection, client and server on the same 2 cores; median of ${String(runs)} alternating runs (MB = 10^6 bytes).`,
      `Mean message payload from the job: ${(chunk / 1024).toFixed(1)} KiB; baseline messages: ${String(BASELINE_CHUNK_BYTES / 1024)} KiB, and the job's mean size in the third row.`,
    ],
  };
}
