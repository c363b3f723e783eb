/**
 * Scenario 5, scale of state: a server holding N finished jobs (/bin/true
 * started through the job library inside the server process, C at a time,
 * each awaited to its end), then ListJobs and GetJob latencies over mTLS,
 * and the server's memory per finished job: the RSS after a full GC
 * (--expose-gc) after the jobs, minus before, divided by N. Baselines are
 * the same calls on the same server before the jobs (one job held).
 */
import { ListJobsResponse, type JobServiceClient } from '../src/gen/jobworker/v1/job_service.js';
import { getJob, listJobs, startJob, waitFinished } from './lib/calls.js';
import type { BenchContext } from './lib/context.js';
import { startBenchServer, type ChildReply } from './lib/servers.js';
import { distributionRow, msSince, type Row, type ScenarioResult } from './lib/stats.js';

type Memory = Extract<ChildReply, { op: 'memory' }>;

/** Times `samples` sequential calls of `fn`. */
async function timeCalls(samples: number, fn: (i: number) => Promise<unknown>): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    const start = process.hrtime.bigint();
    await fn(i);
    times.push(msSince(start));
  }
  return times;
}

/** Runs scenario 5. */
export async function run(ctx: BenchContext): Promise<ScenarioResult> {
  const { stateJobs: count, stateConcurrency: concurrency, stateSamples: samples } = ctx.config;
  const notes: string[] = [];
  const server = await startBenchServer('jobworker', ctx.certsDir, {
    cpuProfDir: ctx.config.cpuProfDir,
  });
  // A ListJobs of thousands of jobs is larger than grpc-js's default 4 MiB receive limit.
  const client: JobServiceClient = await server.client('alice', {
    'grpc.max_receive_message_length': -1,
  });
  const defaultClient = await server.client('alice');
  try {
    const first = await startJob(client, ['/bin/true']);
    await waitFinished(client, first.id);
    const listSmall = await timeCalls(samples, () => listJobs(client));
    const getSmall = await timeCalls(samples, () => getJob(client, first.id));
    const startOne = async (): Promise<void> => {
      await waitFinished(client, (await startJob(client, ['/bin/true'])).id);
    };
    const startSmall = await timeCalls(Math.min(samples, 30), startOne);
    const before = await server.request<Memory>({ op: 'memory', gc: true });
    ctx.progress(`scale of state: ${String(count)} jobs, ${String(concurrency)} at a time`);
    const populated = await server.request<Extract<ChildReply, { op: 'populated' }>>({
      op: 'populate',
      count,
      concurrency,
      argv: ['/bin/true'],
    });
    const after = await server.request<Memory>({ op: 'memory', gc: true });
    if (populated.failed > 0)
      notes.push(
        `${String(populated.failed)} of ${String(count)} jobs failed; first: ${populated.firstError ?? ''}`,
      );
    const jobs = await listJobs(client);
    const ids = jobs.map((j) => j.id);
    const listBig = await timeCalls(samples, () => listJobs(client));
    // A selective selector walks every job held to find one page's worth of them.
    const selector = 'app=bench,shard=7';
    const selected = (await listJobs(client, selector)).length;
    const selectBig = await timeCalls(samples, () => listJobs(client, selector));
    const selectSet = await timeCalls(samples, () =>
      listJobs(client, 'app=bench,shard in (7,8),shard notin (8)'),
    );
    const getBig = await timeCalls(samples, (i) =>
      getJob(client, ids[(i * 7919) % ids.length] ?? first.id),
    );
    const startBig = await timeCalls(Math.min(samples, 30), startOne);
    const encoded = ListJobsResponse.encode({ jobs, nextPageToken: '', totalSize: 0 }).finish()
      .length;
    const defaultOk = await listJobs(defaultClient).then(
      () => 'succeeds',
      (err: unknown) => `fails: ${err instanceof Error ? err.message : String(err)}`,
    );
    const perJob = (after.rss - before.rss) / count;
    const heapPerJob =
      (after.heapUsed + after.external - before.heapUsed - before.external) / count;
    const listAll = `ListJobs, ${String(jobs.length)} jobs`;
    const getAll = `GetJob, ${String(jobs.length)} jobs held`;
    const rows: Row[] = [
      distributionRow(listAll, 'ms', listBig, { vs: 'ListJobs, 1 job' }),
      distributionRow('ListJobs, 1 job', 'ms', listSmall, { baseline: true }),
      distributionRow(
        `ListJobs -l ${selector}: ${String(selected)} of ${String(count)} jobs held`,
        'ms',
        selectBig,
        { vs: 'ListJobs, 1 job' },
      ),
      distributionRow(`ListJobs -l shard in (7,8),shard notin (8): the same`, 'ms', selectSet, {
        vs: 'ListJobs, 1 job',
      }),
      distributionRow(getAll, 'ms', getBig, { vs: 'GetJob, 1 job held' }),
      distributionRow('GetJob, 1 job held', 'ms', getSmall, { baseline: true }),
      distributionRow(`StartJob -> finished, ${String(jobs.length)} jobs held`, 'ms', startBig, {
        vs: 'StartJob -> finished, 1 job held',
      }),
      distributionRow('StartJob -> finished, 1 job held', 'ms', startSmall, { baseline: true }),
      { label: 'server RSS per finished job', unit: 'KB', value: perJob / 1000, n: count },
      {
        label: 'server JS heap + external per finished job',
        unit: 'KB',
        value: heapPerJob / 1000,
        n: count,
      },
      {
        label: 'jobs started and finished via the library',
        unit: 'jobs/s',
        value: count / (populated.ms / 1000),
        n: count,
      },
    ];
    notes.push(
      `${String(count)} jobs of /bin/true, ${String(concurrency)} at a time, started by the job library inside the server process; ${String(samples)} sequential samples of each call over one TLS connection.`,
      `RSS after a full GC: ${(before.rss / 1e6).toFixed(1)} MB before, ${(after.rss / 1e6).toFixed(1)} MB after the jobs.`,
      `A ListJobs of ${String(jobs.length)} jobs is ${(encoded / 1e6).toFixed(1)} MB of protobuf; with grpc-js's default 4 MiB receive limit (jobctl's client) it ${defaultOk}.`,
    );
    const listP50 = rows[0]?.value ?? Number.NaN;
    return {
      id: 5,
      title: 'Scale of state',
      rows,
      goals: [
        {
          text: 'ListJobs p50 < 50 ms',
          met: listP50 < 50,
          detail: `${listP50.toFixed(1)} ms with ${String(jobs.length)} jobs`,
        },
        {
          text: '< 10 KB per finished job',
          met: perJob < 10_000,
          detail: `${(perJob / 1000).toFixed(1)} KB`,
        },
      ],
      notes,
    };
  } finally {
    client.close();
    defaultClient.close();
    await server.close();
  }
}
