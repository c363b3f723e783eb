/**
 * A real jobworkerd for tests: a JobManager over a temp state directory, the
 * test PKI, mTLS on 127.0.0.1 port 0, the audit log in the state directory.
 * The CLI's end-to-end tests use exactly this interface: keep it stable.
 */
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import {
  createClient,
  createServer,
  loadIdentity,
  openAuditLog,
  type CloseReason,
  type ConnectionPolicy,
  type TlsIdentity,
} from '../../src/api/index.js';
import { Metadata, type ServiceError } from '@grpc/grpc-js';
import type {
  DeleteJobRequest,
  DeleteJobResponse,
  SignalJobRequest,
  SignalJobResponse,
  WaitJobRequest,
  WaitJobResponse,
  GetJobRequest,
  GetJobResponse,
  JobServiceClient,
  ListJobsRequest,
  ListJobsResponse,
  StartJobRequest,
  StartJobResponse,
  StopJobRequest,
  StopJobResponse,
  StreamOutputRequest,
  StreamOutputResponse,
} from '../../src/gen/jobworker/v1/job_service.js';
import { createJobManager, type JobManager } from '../../src/job/index.js';
import { isolationFactories, realIsolationFactory, type IsolationFactory } from './isolations.js';
import { makeTestPki } from './pki.js';

/**
 * THE one place that picks the isolation the API tests run on: the real one
 * when registered in isolations.ts, else the plain-process test isolation.
 */
export const serverIsolation: IsolationFactory =
  realIsolationFactory() ?? (isolationFactories[0] as IsolationFactory);

/** A running test server. */
export interface TestServer {
  /** 'localhost:PORT' */
  readonly address: string;
  readonly port: number;
  /** ca.crt, server.*, alice.*, bob.*, admin.*, expired.*, ... (see pki.ts TEST_CLIENTS). */
  readonly certsDir: string;
  /** The server's state directory (jobs/, audit.log). */
  readonly stateDir: string;
  /** The server's job library (a JobManager: a Jobs with followerStats for leak checks). */
  readonly jobs: JobManager;
  /** Open TLS connections from clients (for leak checks). */
  connectionCount(): number;
  /** Connections the server closed or refused, by reason. */
  connectionStats(): Record<CloseReason, number>;
  /** Calls inside the server's seam right now (for leak checks). */
  activeCalls(): number;
  /** Resolves once the server handles no call. */
  whenIdle(): Promise<void>;
  /** The audit log's lines, parsed. */
  auditLines(): Promise<Record<string, unknown>[]>;
  /** The server log's lines (handshake refusals, ...), parsed. */
  logLines(): Record<string, unknown>[];
  /** Graceful shutdown (jobs stopped), then removes the temp directories. */
  close(): Promise<void>;
}

/** Options of {@link startTestServer}. */
export interface TestServerOptions {
  /** Reuse an existing PKI directory instead of making one (made once per file is faster). */
  readonly certsDir?: string;
  /** Passed to the JobManager. */
  readonly outputCapBytes?: number;
  /** Connection bounds other than the defaults. */
  readonly connections?: Partial<ConnectionPolicy>;
}

/** Starts a server on port 0 with a fresh state directory (and PKI unless given). */
export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const root = await mkdtemp(join(tmpdir(), 'jobworker-api-test-'));
  const certsDir = options.certsDir ?? join(root, 'certs');
  if (options.certsDir === undefined) await makeTestPki(certsDir);
  const stateDir = join(root, 'state');
  // The real isolation finds the block device of the state directory: it must exist first.
  await mkdir(stateDir, { mode: 0o700 });
  const isolation = await serverIsolation.create(stateDir);
  const jobs: JobManager = createJobManager({
    stateDir,
    isolation,
    ...(options.outputCapBytes === undefined ? {} : { outputCapBytes: options.outputCapBytes }),
  });
  const auditPath = join(stateDir, 'audit.log');
  const audit = openAuditLog(auditPath);
  // Kept for assertions; a test server lives for one test file, so this stays small.
  const logLines: Record<string, unknown>[] = [];
  const log = pino(
    { level: 'debug' },
    {
      write(line: string) {
        logLines.push(JSON.parse(line) as Record<string, unknown>);
        if (process.env['JOBWORKER_TEST_LOG'] !== undefined) process.stderr.write(line);
      },
    },
  );
  const server = createServer({
    jobs,
    audit,
    log,
    identity: await loadIdentity(certsDir, 'server'),
    ...(options.connections === undefined ? {} : { connections: options.connections }),
  });
  const port = await server.listen('127.0.0.1:0');
  return {
    address: `localhost:${port}`,
    port,
    certsDir,
    stateDir,
    jobs,
    connectionCount: () => server.connectionCount,
    connectionStats: () => server.connectionStats(),
    activeCalls: () => server.activeCalls,
    whenIdle: () => server.whenIdle(),
    logLines: () => logLines,
    auditLines: async () =>
      (await readFile(auditPath, 'utf8'))
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    close: async () => {
      await server.shutdown();
      await isolation.close?.();
      audit.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** Reads `<certsDir>/<user>.crt|key` and ca.crt WITHOUT checking them, so broken certificates reach the server. */
export async function rawIdentity(certsDir: string, user: string): Promise<TlsIdentity> {
  const [ca, cert, key] = await Promise.all(
    ['ca.crt', `${user}.crt`, `${user}.key`].map((f) => readFile(join(certsDir, f))),
  );
  return { ca: ca as Buffer, cert: cert as Buffer, key: key as Buffer };
}

/** A typed JobService client for `address` as `user` (any certificate of the test PKI). Close it with `.close()`. */
export async function connect(
  address: string,
  certsDir: string,
  user: string,
): Promise<JobServiceClient> {
  return createClient(address, await rawIdentity(certsDir, user));
}

/** Unary JobService methods with their request and response types. */
interface UnaryMethods {
  startJob: [StartJobRequest, StartJobResponse];
  stopJob: [StopJobRequest, StopJobResponse];
  getJob: [GetJobRequest, GetJobResponse];
  listJobs: [ListJobsRequest, ListJobsResponse];
  signalJob: [SignalJobRequest, SignalJobResponse];
  waitJob: [WaitJobRequest, WaitJobResponse];
  deleteJob: [DeleteJobRequest, DeleteJobResponse];
}
type UnaryMethod = keyof UnaryMethods;
type RequestOf<M extends UnaryMethod> = UnaryMethods[M][0];
type ResponseOf<M extends UnaryMethod> = UnaryMethods[M][1];

/** Calls a unary method and resolves with its response (rejects with the grpc-js ServiceError). */
export function unary<M extends UnaryMethod>(
  client: JobServiceClient,
  method: M,
  request: RequestOf<M>,
  options: { deadlineMs?: number } = {},
): Promise<ResponseOf<M>> {
  const metadata = new Metadata();
  const callOptions =
    options.deadlineMs === undefined ? {} : { deadline: Date.now() + options.deadlineMs };
  return new Promise((resolve, reject) => {
    const fn = client[method].bind(client) as (
      req: RequestOf<M>,
      md: Metadata,
      opts: object,
      cb: (err: ServiceError | null, res: ResponseOf<M>) => void,
    ) => unknown;
    fn(request, metadata, callOptions, (err, res) => {
      if (err === null) resolve(res);
      else reject(err);
    });
  });
}

/** Reads a whole StreamOutput call: the messages, or the error that ended it. */
export async function readStream(
  client: JobServiceClient,
  request: Partial<StreamOutputRequest> & { jobId: string },
  options: { deadlineMs?: number } = {},
): Promise<{ messages: StreamOutputResponse[]; error: ServiceError | null }> {
  const call = client.streamOutput(
    { stream: 0, stdoutOffset: 0, stderrOffset: 0, follow: false, ...request },
    options.deadlineMs === undefined ? {} : { deadline: Date.now() + options.deadlineMs },
  );
  const messages: StreamOutputResponse[] = [];
  try {
    for await (const m of call) messages.push(m as StreamOutputResponse);
    return { messages, error: null };
  } catch (err) {
    return { messages, error: err as ServiceError };
  }
}
