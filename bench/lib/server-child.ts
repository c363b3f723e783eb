/**
 * A server in its own process, forked by the benchmarks (servers.ts), so that
 * its CPU and its peak RSS (VmHWM) are its own and not the clients'. Two
 * kinds, chosen by the JSON options in argv[2]:
 *
 * - `jobworker`: what `jobworkerd serve` builds (isolation, job library,
 *   audit log, mTLS server), with a job cgroup group of its own and an
 *   output cap the fan-out scenario can raise;
 * - `baseline`: the floor of streaming: a grpc-js JobService behind the same
 *   TLS listener whose StreamOutput sends N bytes (N given as the job id)
 *   from one buffer in memory, in chunks of the job log reader's size, and
 *   whose Attach echoes each stdin message back as an output chunk.
 *
 * The parent talks to it over the IPC channel (messages in servers.ts);
 * losing the channel (the parent died) shuts the server down.
 */
import * as grpc from '@grpc/grpc-js';
import { once } from 'node:events';
import { rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
// Not the API index, which loads certificate generation: this process is wired as
// `jobworkerd serve` is, and measured as it.
import { openAuditLog } from '../../src/api/audit.js';
import { createServer } from '../../src/api/server.js';
import { loadIdentity } from '../../src/api/tls.js';
import {
  OutputStream,
  JobServiceService,
  type AttachRequest,
  type AttachResponse,
  type StreamOutputRequest,
  type StreamOutputResponse,
} from '../../src/gen/jobworker/v1/job_service.js';
import { DEFAULT_MAX_FINISHED_JOBS, openJobManager, type JobManager } from '../../src/job/index.js';
import { createIsolation } from '../../src/isolation/index.js';
import { createTlsListener } from '../../src/api/listener.js';
import { BASELINE_CHUNK_BYTES } from './chunk.js';
import type { ChildReply, ChildRequest, ServerChildOptions } from './servers.js';

const options = JSON.parse(process.argv[2] ?? '{}') as ServerChildOptions;
const log = pino({ level: 'warn' }, pino.destination({ dest: 2, sync: true }));
const identity = await loadIdentity(options.certsDir, 'server');

/**
 * Sends N bytes of zeros in fixed chunks, honouring backpressure as the real
 * server does. The job id is "N" or "N:CHUNK" (chunk size in bytes, at most
 * the buffer's; default the whole buffer).
 */
async function streamFromMemory(
  call: grpc.ServerWritableStream<StreamOutputRequest, StreamOutputResponse>,
  buffer: Buffer,
): Promise<void> {
  const [bytes, size] = call.request.jobId.split(':');
  const total = Number(bytes);
  const chunk = buffer.subarray(0, size === undefined ? buffer.length : Number(size));
  const cancelled = new AbortController();
  call.once('cancelled', () => {
    cancelled.abort();
  });
  try {
    for (let offset = 0; offset < total; offset += chunk.length) {
      const data = offset + chunk.length <= total ? chunk : chunk.subarray(0, total - offset);
      const message: StreamOutputResponse = {
        event: {
          $case: 'chunk',
          value: { stream: OutputStream.OUTPUT_STREAM_STDOUT, offset, data },
        },
      };
      if (!call.write(message)) await once(call, 'drain', { signal: cancelled.signal });
    }
    call.end();
  } catch {
    // Cancelled by the client: nothing to answer.
  }
}

/**
 * The floor of an interactive round trip: Attach answers `attached`, then
 * sends each stdin message back at once as the chunk a job's echo would be
 * (same message types, a stored time as live output has). No flow control
 * beyond grpc-js's: the client sends one byte and waits for it.
 */
function echoAttach(call: grpc.ServerDuplexStream<AttachRequest, AttachResponse>): void {
  let offset = 0;
  call.on('data', (message: AttachRequest) => {
    const event = message.event;
    if (event?.$case === 'start') {
      call.write({ event: { $case: 'attached', value: { job: undefined, writer: true } } });
    } else if (event?.$case === 'stdin') {
      const data = event.value;
      call.write({
        event: {
          $case: 'chunk',
          value: { stream: OutputStream.OUTPUT_STREAM_STDOUT, offset, data, storedAt: new Date() },
        },
      });
      offset += data.length;
    }
  });
  call.on('end', () => call.end());
  // A cancelled call: grpc-js ends the stream; nothing else is held.
  call.on('error', () => undefined);
}

/** The baseline server: only StreamOutput and Attach are implemented. */
async function startBaseline(): Promise<{ port: number; stop: () => Promise<void> }> {
  const server = new grpc.Server({
    'grpc.max_concurrent_streams': 1000,
    'grpc.max_receive_message_length': 1024 * 1024,
  });
  const buffer = Buffer.alloc(BASELINE_CHUNK_BYTES);
  const unimplemented = (_call: unknown, callback: grpc.sendUnaryData<never>): void => {
    callback({ code: grpc.status.UNIMPLEMENTED, details: 'baseline server' });
  };
  server.addService(JobServiceService, {
    startJob: unimplemented,
    stopJob: unimplemented,
    getJob: unimplemented,
    listJobs: unimplemented,
    streamOutput: (call: grpc.ServerWritableStream<StreamOutputRequest, StreamOutputResponse>) => {
      void streamFromMemory(call, buffer);
    },
    attach: echoAttach,
  });
  // The baseline measures grpc-js alone: refused handshakes are not audited.
  const noAudit = { record: () => undefined, close: () => undefined };
  const listener = createTlsListener(server, { identity, log, audit: noAudit });
  const port = await listener.listen('127.0.0.1', 0);
  return {
    port,
    async stop() {
      listener.stopAccepting();
      server.forceShutdown();
      await listener.close();
    },
  };
}

/** The jobworker server, wired as src/api/serve.ts does (with the job library's persistence). */
async function startJobworker(): Promise<{
  port: number;
  jobs: JobManager;
  groupDirs: readonly string[];
  cgroupKind: string;
  stop: () => Promise<void>;
}> {
  const isolation = await createIsolation({
    stateDir: options.stateDir,
    cgroupGroup: options.cgroupGroup,
    onWarning: (err) => {
      log.warn({ code: err.code }, err.message);
    },
  });
  // As jobworkerd: recovery of the (empty) state directory, leftover sweep, retention.
  const jobs = await openJobManager({
    stateDir: options.stateDir,
    isolation,
    ...(options.outputCapBytes === undefined ? {} : { outputCapBytes: options.outputCapBytes }),
    // Scenario 5's jobs are all alice's: she may keep as many as the server does.
    maxFinishedJobsPerOwner: DEFAULT_MAX_FINISHED_JOBS,
  });
  const audit = openAuditLog(join(options.stateDir, 'audit.log'));
  const server = createServer({ jobs, audit, log, identity });
  const port = await server.listen('127.0.0.1:0');
  return {
    port,
    jobs,
    groupDirs: isolation.cgroupGroupDirs,
    cgroupKind: isolation.cgroupKind,
    async stop() {
      await server.shutdown();
      audit.close();
    },
  };
}

/** Starts `count` jobs of `argv` through the library, `concurrency` at a time, each awaited to its end. */
/** Shards of the jobs populate() labels. */
const SHARDS = 100;

async function populate(jobs: JobManager, count: number, concurrency: number, argv: string[]) {
  let next = 0;
  let failed = 0;
  let firstError: string | null = null;
  const spec = { argv, env: ['PATH=/usr/bin:/bin'], cwd: '/', limits: {}, hostNetwork: false };
  const worker = async (): Promise<void> => {
    while (next < count) {
      next++;
      try {
        // Labels for the selector rows of scenario 5: 100 shards of count/100 jobs.
        const labels = { app: 'bench', shard: String(next % SHARDS) };
        const job = await jobs.start('alice', { ...spec, labels });
        // The follower's 'finished' is the notification of the job's end.
        for await (const event of jobs.output(job.id, { follow: true, stream: 'stderr' })) {
          if (event.type === 'finished') break;
        }
      } catch (err) {
        failed++;
        firstError ??= err instanceof Error ? err.message : String(err);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { failed, firstError };
}

function send(reply: ChildReply): void {
  process.send?.(reply);
}

const running =
  options.kind === 'baseline'
    ? { ...(await startBaseline()), jobs: null, groupDirs: [], cgroupKind: '' }
    : await startJobworker();

let stopping: Promise<void> | null = null;
/**
 * Stops the server, then removes its job cgroup group directories and its
 * state directory itself: when the bench is interrupted, nobody else will.
 */
const stop = (): Promise<void> => {
  stopping ??= running
    .stop()
    .then(async () => {
      await Promise.all(running.groupDirs.map((dir) => rmdir(dir).catch(() => undefined)));
      await rm(options.stateDir, { recursive: true, force: true });
    })
    .finally(() => {
      if (process.connected) process.disconnect();
    });
  return stopping;
};

process.on('message', (message: ChildRequest) => {
  void (async () => {
    switch (message.op) {
      case 'memory': {
        // --expose-gc is set by the parent: what is left after a full collection is what is held.
        if (message.gc) (globalThis as { gc?: () => void }).gc?.();
        const m = process.memoryUsage();
        send({
          op: 'memory',
          id: message.id,
          rss: m.rss,
          heapUsed: m.heapUsed,
          heapTotal: m.heapTotal,
          external: m.external,
        });
        return;
      }
      case 'populate': {
        if (running.jobs === null) throw new Error('populate: not a jobworker server');
        const started = process.hrtime.bigint();
        const { failed, firstError } = await populate(
          running.jobs,
          message.count,
          message.concurrency,
          message.argv,
        );
        const ms = Number(process.hrtime.bigint() - started) / 1e6;
        send({ op: 'populated', id: message.id, ms, failed, firstError });
        return;
      }
      case 'stop':
        await stop();
        return;
    }
  })().catch((err: unknown) => {
    log.error({ err }, 'bench server request failed');
    send({ op: 'failed', id: message.id, message: String(err) });
  });
});
// The parent is gone, or Ctrl-C reached the whole process group: stop and clean up.
process.once('disconnect', () => void stop());
process.once('SIGINT', () => void stop());
process.once('SIGTERM', () => void stop());
send({
  op: 'ready',
  id: 0,
  port: running.port,
  groupDirs: running.groupDirs,
  cgroupKind: running.cgroupKind,
});
