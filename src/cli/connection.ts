/**
 * The mTLS connection to jobworkerd and the calls the commands make, as
 * promises and async iterables that throw only JobworkerError. Loaded only by
 * commands that talk to the server, because grpc-js is most of jobctl's
 * start-up time.
 */
import {
  connectivityState,
  credentials,
  Metadata,
  type ClientDuplexStream,
  type ClientOptions,
  type ClientReadableStream,
  type ServiceError,
} from '@grpc/grpc-js';
import { once } from 'node:events';
import { createSecureContext } from 'node:tls';
import { ErrorCode, JobworkerError } from '../errors.js';
import { MAX_PAGE_SIZE } from '../page-size.js';
import { type Dispose, onAbort } from '../signals.js';
import {
  JobServiceClient,
  type AttachRequest,
  type AttachResponse,
  type GetJobResponse,
  type Job,
  type ListJobsRequest,
  type ListJobsResponse,
  type StartJobResponse,
  type DeleteJobResponse,
  type SignalJobResponse,
  type WaitJobResponse,
  type StopJobResponse,
  type StartJobRequest,
  type StreamOutputRequest,
  type StreamOutputResponse,
  type WatchJobsRequest,
  type WatchJobsResponse,
} from '../gen/jobworker/v1/job_service.js';
import type { ConnectionFlags } from './args.js';
import { fromCallError, type DialTarget } from './call-errors.js';
import { resolveTargets } from './contexts.js';
import { HandshakeBoundCredentials } from './handshake-bound.js';
import { loadCredentials, type Target } from './identity.js';
import { durationOf } from './units.js';

/**
 * How long a unary call may take before jobctl gives up (StopJob adds its
 * grace period). TODO(no user asked yet): a --timeout flag.
 */
export const callTimeoutMs = 30_000;

/**
 * How long a TLS handshake may take, and {@link Connection.dial} waits for
 * a connection (TCP and TLS). TODO(no user asked yet): a flag or a context
 * setting.
 */
export const dialTimeoutMs = 10_000;

/** One Attach call: messages to send with backpressure, and the server's messages to read. */
export interface AttachCall {
  /** Sends `message`; resolves once grpc-js may take another (its buffer has room). */
  send(message: AttachRequest): Promise<void>;
  /** The server's messages; iterating them owns the call (it is cancelled when the iteration ends). */
  readonly messages: AsyncGenerator<AttachResponse>;
}

/** A client for one command; {@link Connection.close} ends its channel. */
export class Connection {
  readonly #client: JobServiceClient;
  readonly #context: DialTarget;

  private constructor(client: JobServiceClient, context: DialTarget) {
    this.#client = client;
    this.#context = context;
  }

  /**
   * Resolves the target from flags, the contexts file and the environment
   * (one context: only `run` takes several), then {@link Connection.to}.
   */
  static async open(flags: ConnectionFlags, env: NodeJS.ProcessEnv): Promise<Connection> {
    const [chosen] = await resolveTargets('this command', flags, env, false);
    if (chosen === undefined) throw new JobworkerError(ErrorCode.Internal, 'no target resolved');
    return Connection.to(chosen.target);
  }

  /** Loads and checks the target's certificates and creates the channel (it connects on the first call). */
  static async to(target: Target): Promise<Connection> {
    const pem = await loadCredentials(target);
    let secureContext;
    try {
      secureContext = createSecureContext({ ...pem, minVersion: 'TLSv1.3' });
    } catch (err) {
      // A key that does not match the certificate, or a malformed PEM.
      throw new JobworkerError(
        ErrorCode.Unauthenticated,
        `cannot use ${target.certFile} with ${target.keyFile}: ${(err as Error).message}`,
        { cause: err },
      );
    }
    const options: Partial<ClientOptions> = {};
    if (target.tlsServerName !== undefined) {
      options['grpc.ssl_target_name_override'] = target.tlsServerName;
      options['grpc.default_authority'] = target.tlsServerName;
    }
    const client = new JobServiceClient(
      target.server,
      new HandshakeBoundCredentials(
        credentials.createFromSecureContext(secureContext),
        dialTimeoutMs,
      ),
      options,
    );
    return new Connection(client, { server: target.server, certFile: target.certFile });
  }

  /**
   * Waits until the channel has connected, or its first attempt has failed
   * (the next call then fails at once saying why), for at most `timeoutMs`:
   * grpc-js bounds neither a TCP connect nor a TLS handshake that is never
   * answered, so a host that swallows packets would hold a call for its
   * whole deadline. Rejects with `unavailable` after `timeoutMs`, or with
   * the signal's reason.
   */
  async dial(timeoutMs: number, signal: AbortSignal): Promise<void> {
    const channel = this.#client.getChannel();
    const deadline = Date.now() + timeoutMs;
    let state = channel.getConnectivityState(true);
    while (
      state !== connectivityState.READY &&
      state !== connectivityState.TRANSIENT_FAILURE &&
      state !== connectivityState.SHUTDOWN
    ) {
      const current = state;
      const changed = await new Promise<boolean>((resolve) => {
        // The watch ends at the deadline or when close() shuts the channel down.
        const stopListening = onAbort(signal, () => {
          resolve(false);
        });
        channel.watchConnectivityState(current, deadline, (error) => {
          stopListening();
          resolve(error === undefined);
        });
      });
      signal.throwIfAborted();
      if (!changed) {
        throw new JobworkerError(
          ErrorCode.Unavailable,
          `cannot connect to jobworkerd at ${this.#context.server} within ${timeoutMs / 1000}s; check the address and the network`,
        );
      }
      state = channel.getConnectivityState(false);
    }
  }

  /** Ends the channel; pending calls fail with CANCELLED. */
  close(): void {
    this.#client.close();
  }

  /** Starts a job and returns it, running. */
  async startJob(request: StartJobRequest, signal?: AbortSignal): Promise<Job> {
    const response = await this.#unary<StartJobResponse>(
      (md, o, cb) => this.#client.startJob(request, md, o, cb),
      signal,
    );
    return required(response.job, 'StartJob');
  }

  /** Stops a job with `graceMs` (the server's default when undefined) and returns it, finished. */
  async stopJob(jobId: string, graceMs: number | undefined, signal?: AbortSignal): Promise<Job> {
    const gracePeriod = graceMs === undefined ? undefined : durationOf(graceMs);
    // The server waits for the grace period (default 10 s) before answering.
    const timeout = callTimeoutMs + (graceMs ?? 10_000);
    const response = await this.#unary<StopJobResponse>(
      (md, o, cb) => this.#client.stopJob({ jobId, gracePeriod }, md, o, cb),
      signal,
      timeout,
    );
    return required(response.job, 'StopJob');
  }

  /** The job's current status. */
  async getJob(jobId: string, signal?: AbortSignal): Promise<Job> {
    const response = await this.#unary<GetJobResponse>(
      (md, o, cb) => this.#client.getJob({ jobId }, md, o, cb),
      signal,
    );
    return required(response.job, 'GetJob');
  }

  /** Every job the caller may see matching the filter, newest first, page after page. */
  async listJobs(
    filter: Pick<ListJobsRequest, 'state' | 'owner'>,
    signal?: AbortSignal,
  ): Promise<Job[]> {
    const jobs: Job[] = [];
    let pageToken = '';
    do {
      const request: ListJobsRequest = { ...filter, pageSize: 0, pageToken };
      const response = await this.#unary<ListJobsResponse>(
        (md, o, cb) => this.#client.listJobs(request, md, o, cb),
        signal,
      );
      jobs.push(...response.jobs);
      pageToken = response.nextPageToken;
    } while (pageToken !== '');
    return jobs;
  }

  /**
   * The job's output as an async iterable with backpressure: the next message
   * is read only when the consumer asks for it. Aborting `signal` cancels the
   * call; the iteration then throws the signal's reason.
   */
  streamOutput(
    request: StreamOutputRequest,
    signal: AbortSignal,
  ): AsyncGenerator<StreamOutputResponse> {
    return this.#stream(() => this.#client.streamOutput(request, new Metadata()), signal);
  }

  /**
   * At most `limit` jobs (0: all) matching the request's filter, newest
   * first, and how many match in all.
   */
  async listJobsUpTo(
    filter: Pick<ListJobsRequest, 'state' | 'owner' | 'selector'>,
    limit: number,
    signal?: AbortSignal,
  ): Promise<{ jobs: Job[]; totalSize: number }> {
    const jobs: Job[] = [];
    let pageToken = '';
    let totalSize: number;
    do {
      const wanted = limit === 0 ? 0 : Math.min(limit - jobs.length, MAX_PAGE_SIZE);
      const request: ListJobsRequest = { ...filter, pageSize: wanted, pageToken };
      const response = await this.#unary<ListJobsResponse>(
        (md, o, cb) => this.#client.listJobs(request, md, o, cb),
        signal,
      );
      jobs.push(...response.jobs);
      totalSize = response.totalSize;
      pageToken = response.nextPageToken;
    } while (pageToken !== '' && (limit === 0 || jobs.length < limit));
    return { jobs: limit === 0 ? jobs : jobs.slice(0, limit), totalSize };
  }

  /** The state changes of the jobs the request picks, until `signal` aborts (as {@link streamOutput}). */
  watchJobs(request: WatchJobsRequest, signal: AbortSignal): AsyncGenerator<WatchJobsResponse> {
    return this.#stream(() => this.#client.watchJobs(request, new Metadata()), signal);
  }

  /**
   * Opens an Attach call; aborting `signal` cancels it (the job goes on).
   * Reading `messages` must start at once: it carries the call's errors.
   */
  attach(signal: AbortSignal): AttachCall {
    const call: ClientDuplexStream<AttachRequest, AttachResponse> = this.#client.attach(
      new Metadata(),
    );
    return {
      send: async (message) => {
        signal.throwIfAborted();
        // A full buffer means the server (and so the job) has not taken the previous bytes yet.
        if (!call.write(message)) {
          try {
            await once(call, 'drain', { signal });
          } catch (err) {
            signal.throwIfAborted();
            throw fromCallError(err as ServiceError, this.#context);
          }
        }
      },
      messages: this.#stream(() => call, signal),
    };
  }

  async *#stream<T>(
    open: () => ClientReadableStream<T> | ClientDuplexStream<unknown, T>,
    signal: AbortSignal,
  ): AsyncGenerator<T> {
    signal.throwIfAborted();
    const call = open();
    const stopListening = onAbort(signal, () => {
      call.cancel();
    });
    try {
      for await (const message of call as AsyncIterable<T>) yield message;
    } catch (err) {
      signal.throwIfAborted();
      throw fromCallError(err as ServiceError, this.#context);
    } finally {
      stopListening();
      // Ends the call when the consumer stops early (break, throw).
      call.cancel();
    }
  }

  /** Sends `signal` (a name or number, checked by the server) to the job's main process, or to all of them. */
  async signalJob(jobId: string, signal: string, all: boolean): Promise<Job> {
    const response = await this.#unary<SignalJobResponse>(
      (md, o, cb) => this.#client.signalJob({ jobId, signal, all }, md, o, cb),
      undefined,
    );
    return required(response.job, 'SignalJob');
  }

  /** Resolves with the job once it has finished; `timeoutMs` bounds the wait (none when Infinity). */
  async waitJob(jobId: string, timeoutMs: number, signal?: AbortSignal): Promise<Job> {
    const response = await this.#unary<WaitJobResponse>(
      (md, o, cb) => this.#client.waitJob({ jobId }, md, o, cb),
      signal,
      timeoutMs,
    );
    return required(response.job, 'WaitJob');
  }

  /** Removes a job; with `force` one that still runs is stopped first (the server's default grace). */
  async deleteJob(jobId: string, force: boolean): Promise<void> {
    // A forced removal waits for the stop's grace period (default 10 s).
    await this.#unary<DeleteJobResponse>(
      (md, o, cb) => this.#client.deleteJob({ jobId, force }, md, o, cb),
      undefined,
      callTimeoutMs + (force ? 10_000 : 0),
    );
  }

  #unary<T>(
    invoke: (
      metadata: Metadata,
      options: { deadline: Date | number },
      callback: (error: ServiceError | null, response: T) => void,
    ) => { cancel(): void },
    signal: AbortSignal | undefined,
    timeoutMs = callTimeoutMs,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (signal?.aborted === true) {
        reject(signal.reason as Error);
        return;
      }
      let stopListening: Dispose = () => undefined;
      const call = invoke(
        new Metadata(),
        // Infinity: no deadline (a wait bounded only by the user).
        { deadline: Number.isFinite(timeoutMs) ? new Date(Date.now() + timeoutMs) : Infinity },
        (error, response) => {
          stopListening();
          if (signal?.aborted === true) reject(signal.reason as Error);
          else if (error !== null) reject(fromCallError(error, this.#context));
          else resolve(response);
        },
      );
      stopListening = onAbort(signal, () => {
        call.cancel();
      });
    });
  }
}

function required(job: Job | undefined, method: string): Job {
  if (job === undefined)
    throw new JobworkerError(ErrorCode.Internal, `${method} answered without a job`);
  return job;
}
