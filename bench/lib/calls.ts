/**
 * JobService calls as promises, for the benchmarks: a unary call, a follower
 * that waits for a job's end, and a reader that counts the bytes of a stream.
 */
import { Metadata, type ServiceError } from '@grpc/grpc-js';
import {
  JobState,
  OutputStream,
  type Job,
  type JobServiceClient,
  type StartJobRequest,
  type StreamOutputRequest,
  type StreamOutputResponse,
} from '../../src/gen/jobworker/v1/job_service.js';

/** A StartJob request for `argv` with default limits and the usual PATH. */
export function startRequest(argv: string[]): StartJobRequest {
  return {
    command: argv,
    env: ['PATH=/usr/bin:/bin'],
    workingDir: '/',
    limits: undefined,
    hostNetwork: false,
  };
}

/** StartJob; resolves with the job (running). */
export function startJob(client: JobServiceClient, argv: string[]): Promise<Job> {
  return new Promise((resolve, reject) => {
    client.startJob(startRequest(argv), new Metadata(), {}, (err: ServiceError | null, res) => {
      if (err !== null) reject(err);
      else if (res.job === undefined) reject(new Error('StartJob answered without a job'));
      else resolve(res.job);
    });
  });
}

/** GetJob. */
export function getJob(client: JobServiceClient, jobId: string): Promise<Job> {
  return new Promise((resolve, reject) => {
    client.getJob({ jobId }, (err: ServiceError | null, res) => {
      if (err !== null) reject(err);
      else if (res.job === undefined) reject(new Error('GetJob answered without a job'));
      else resolve(res.job);
    });
  });
}

/** ListJobs (all states, own jobs; those `labelSelector` picks, when given). */
export function listJobs(client: JobServiceClient, labelSelector = ''): Promise<Job[]> {
  return new Promise((resolve, reject) => {
    client.listJobs(
      // The first page (the server's default size), as `jobctl list` asks first.
      {
        state: JobState.JOB_STATE_UNSPECIFIED,
        owner: '',
        pageSize: 0,
        pageToken: '',
        selector: { name: '', labelSelector },
      },
      (err: ServiceError | null, res) => {
        if (err !== null) reject(err);
        else resolve(res.jobs);
      },
    );
  });
}

/** What a stream delivered. */
export interface StreamCount {
  readonly bytes: number;
  readonly chunks: number;
  /** The final job, when the stream sent `finished`. */
  readonly finished: Job | null;
}

/**
 * Reads a StreamOutput call to its end and counts its bytes; the call is
 * cancelled when `signal` aborts (the count so far is then returned).
 */
export async function countStream(
  client: JobServiceClient,
  request: Partial<StreamOutputRequest> & { jobId: string },
  signal?: AbortSignal,
): Promise<StreamCount> {
  const call = client.streamOutput({
    stream: OutputStream.OUTPUT_STREAM_UNSPECIFIED,
    stdoutOffset: 0,
    stderrOffset: 0,
    follow: false,
    ...request,
  });
  const onAbort = (): void => {
    call.cancel();
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  let bytes = 0;
  let chunks = 0;
  let finished: Job | null = null;
  try {
    for await (const message of call as AsyncIterable<StreamOutputResponse>) {
      const event = message.event;
      if (event?.$case === 'chunk') {
        bytes += event.value.data.length;
        chunks++;
      } else if (event?.$case === 'finished') {
        finished = event.value;
      }
    }
  } catch (err) {
    if (signal?.aborted !== true) throw err;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  return { bytes, chunks, finished };
}

/**
 * Waits for a job's end with a follower of its stderr only (the notification
 * of the end; stdout records are skipped by their headers) and returns it.
 */
export async function waitFinished(client: JobServiceClient, jobId: string): Promise<Job> {
  const { finished } = await countStream(client, {
    jobId,
    stream: OutputStream.OUTPUT_STREAM_STDERR,
    follow: true,
  });
  if (finished === null) throw new Error(`job ${jobId}: stream ended without finished`);
  return finished;
}

/** Connects a client's channel (TLS handshake done) before a measurement starts. */
export function connected(client: JobServiceClient): Promise<void> {
  return new Promise((resolve, reject) => {
    client.waitForReady(Date.now() + 30_000, (err) => {
      if (err === undefined) resolve();
      else reject(err);
    });
  });
}
