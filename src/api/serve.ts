/**
 * `jobworkerd serve` and `jobworkerd dev`: the checks before anything starts,
 * then the wiring of isolation, job library, audit log and server.
 */
import type { Stats } from 'node:fs';
import { lstat, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';
import { ErrorCode, JobworkerError } from '../errors.js';
import { DEFAULT_DISK_BUDGET_BYTES, openJobManager, type OwnerBudget } from '../job/index.js';
import {
  createIsolation,
  type HostBudget,
  type Limits,
  protectServerFromOom,
  StateDirInUseError,
} from '../isolation/index.js';
import { AUDIT_FOOTPRINT_BYTES, openAuditLog, type AuditLog } from './audit.js';
import { DEFAULT_LISTEN, SETTINGS, type LOG_FORMATS, type LOG_LEVELS } from './config-schema.js';
import { prepareDevCerts } from './dev-certs.js';
import { createMetrics } from './metrics.js';
import { checkMetricsAddress, serveMetrics, type MetricsListener } from './metrics-http.js';
import { createServer, type JobworkerServer } from './server.js';
import { loadIdentityFiles, type TlsFiles } from './tls.js';

/** Settings of `serve` (config.ts makes them from the configuration); an absent one takes its layer's default. */
export interface ServeOptions {
  readonly listen: string;
  readonly stateDir: string;
  /** The server's CA, certificate and key. */
  readonly tls: TlsFiles;
  readonly auditStdout: boolean;
  readonly log?: {
    readonly level: (typeof LOG_LEVELS)[number];
    readonly format: (typeof LOG_FORMATS)[number];
  };
  /** `HOST:PORT` of the Prometheus endpoint (metrics-http.ts); no endpoint when absent. */
  readonly metricsListen?: string;
  /** Let {@link metricsListen} be an address other than loopback (it has no authentication). */
  readonly metricsAllowRemote?: boolean;
  /** Per-job output cap (job layer). */
  readonly outputCapBytes?: number;
  /** Most jobs running at once. */
  readonly maxRunningJobs?: number;
  /** Age after which finished jobs are removed. */
  readonly retentionMs?: number;
  /** The state directory's budget: finished jobs' output and the audit log. */
  readonly diskBudgetBytes?: number;
  /** All jobs together; absent fields take the isolation's defaults. */
  readonly hostBudget?: Partial<HostBudget>;
  /** Each owner's bounds; absent fields take the job layer's defaults. */
  readonly ownerBudget?: Partial<OwnerBudget>;
  /** Limits of a job that asks for none, and the most one may ask for. */
  readonly limitDefaults?: Partial<Limits>;
  readonly limitMaxima?: Partial<Limits>;
}

/** The server log on standard error, synchronous so that nothing is lost at exit. */
function serverLog(options: ServeOptions['log']): Logger {
  const settings = {
    base: null,
    timestamp: pino.stdTimeFunctions.isoTime,
    level: options?.level ?? 'info',
  };
  if (options?.format === 'text') {
    return pino(settings, pretty({ destination: 2, sync: true, colorize: false }));
  }
  return pino(settings, pino.destination({ dest: 2, sync: true }));
}

/** A started server and what must be closed after it. */
export interface Running {
  readonly server: JobworkerServer;
  readonly port: number;
  /** The metrics endpoint's port; null when it is off. */
  readonly metricsPort: number | null;
  readonly log: Logger;
  /** Graceful shutdown (jobs stopped), then the audit log flushed and the metrics endpoint closed. */
  stop(signal?: AbortSignal): Promise<void>;
}

function refuse(message: string, cause?: unknown): JobworkerError {
  return new JobworkerError(ErrorCode.Unavailable, message, cause === undefined ? {} : { cause });
}

/**
 * Why the state directory `dir` (its lstat) may not be used, or null: it
 * holds every job's output and the audit log, so it must be a directory of
 * root's that nobody else can enter. The message says how to fix it.
 */
export function stateDirProblem(
  dir: string,
  stats: Pick<Stats, 'uid' | 'mode' | 'isDirectory' | 'isSymbolicLink'>,
): string | null {
  if (stats.isSymbolicLink() || !stats.isDirectory()) {
    return `state directory ${dir} is not a directory (a symbolic link is not taken either)`;
  }
  const mode = stats.mode & 0o7777;
  if (stats.uid === 0 && mode === 0o700) return null;
  const fixes = [
    ...(stats.uid === 0 ? [] : [`chown root:root ${dir}`]),
    ...(mode === 0o700 ? [] : [`chmod 700 ${dir}`]),
  ];
  return `state directory ${dir} is owned by uid ${stats.uid} with mode ${mode.toString(8).padStart(4, '0')}; it must be root's with mode 0700 (fix: ${fixes.join(' && ')})`;
}

/** Checks the host and the certificates, builds everything and listens. Throws one clear error otherwise. */
export async function startServe(options: ServeOptions): Promise<Running> {
  if (process.getuid?.() !== 0) {
    throw refuse('jobworkerd must run as root: it creates cgroups and namespaces for jobs');
  }
  const allowRemote = options.metricsAllowRemote === true;
  if (options.metricsListen !== undefined) checkMetricsAddress(options.metricsListen, allowRemote);
  const metrics = options.metricsListen === undefined ? undefined : createMetrics();
  // Certificates first: the commonest mistake, and the error names the file.
  const identity = await loadIdentityFiles(options.tls);
  const diskBudget = options.diskBudgetBytes ?? DEFAULT_DISK_BUDGET_BYTES;
  if (diskBudget <= AUDIT_FOOTPRINT_BYTES) {
    throw refuse(
      `the disk budget ${diskBudget} does not leave room for job output after the audit log's ${AUDIT_FOOTPRINT_BYTES} bytes`,
    );
  }
  await mkdir(options.stateDir, { recursive: true, mode: 0o700 });
  const problem = stateDirProblem(options.stateDir, await lstat(options.stateDir));
  if (problem !== null) throw refuse(problem);
  const log = serverLog(options.log);
  // Before the isolation starts its fork server, which goes lower (native/oom.h).
  if (!(await protectServerFromOom())) {
    log.warn('no CAP_SYS_RESOURCE: the server keeps its oom_score_adj (jobs still go first)');
  }
  const isolation = await createIsolation({
    stateDir: options.stateDir,
    ...(options.hostBudget ? { hostBudget: options.hostBudget } : {}),
    ...(options.limitDefaults ? { defaults: options.limitDefaults } : {}),
    ...(options.limitMaxima ? { maxima: options.limitMaxima } : {}),
    ...(metrics ? { onForkServerRestart: metrics.onForkServerRestart.bind(metrics) } : {}),
    onWarning: (err) => {
      log.warn({ code: err.code }, err.message);
    },
  }).catch((err: unknown) => {
    if (err instanceof StateDirInUseError) throw err; // main.ts gives it its own exit code
    throw refuse(
      `cannot set up job isolation: ${err instanceof Error ? err.message : String(err)}`,
      err,
    );
  });
  // Recovers the state directory: leftover job cgroups swept, jobs that ran
  // when the server died finished as lost, retention applied.
  const jobs = await openJobManager({
    stateDir: options.stateDir,
    isolation,
    // The audit log's files share the state directory's budget.
    diskBudgetBytes: diskBudget - AUDIT_FOOTPRINT_BYTES,
    ...(options.ownerBudget ? { ownerBudget: options.ownerBudget } : {}),
    ...(options.outputCapBytes === undefined ? {} : { outputCapBytes: options.outputCapBytes }),
    ...(options.maxRunningJobs === undefined ? {} : { maxRunningJobs: options.maxRunningJobs }),
    ...(options.retentionMs === undefined ? {} : { retentionMs: options.retentionMs }),
    ...(metrics ? { onEvent: metrics.onJobEvent.bind(metrics) } : {}),
    log: (level, message, fields) => {
      log[level](fields ?? {}, message);
    },
  }).catch(async (err: unknown) => {
    // Releases the state directory's lock and the cgroup group it made.
    await isolation.close().catch(() => undefined);
    throw refuse(
      `cannot open the job state: ${err instanceof Error ? err.message : String(err)}`,
      err,
    );
  });
  const audit: AuditLog = openAuditLog(join(options.stateDir, 'audit.log'), {
    stdout: options.auditStdout,
  });
  metrics?.onRecovery(jobs.recovery);
  const server = createServer({ jobs, audit, log, identity, ...(metrics ? { metrics } : {}) });
  let port: number;
  let endpoint: MetricsListener | null = null;
  try {
    if (metrics && options.metricsListen !== undefined) {
      endpoint = await serveMetrics(metrics.registry, {
        address: options.metricsListen,
        allowRemote,
        log,
      });
      log.info({ listen: options.metricsListen, port: endpoint.port }, 'metrics listening');
    }
    port = await server.listen(options.listen);
  } catch (err) {
    await endpoint?.close();
    await jobs.shutdown();
    await isolation.close();
    audit.close();
    throw err;
  }
  log.info({ listen: options.listen, port, cgroups: isolation.cgroupKind }, 'jobworkerd listening');
  return {
    server,
    port,
    metricsPort: endpoint?.port ?? null,
    log,
    async stop(signal) {
      try {
        await server.shutdown(signal);
        // Every job has ended (server.shutdown waited for jobs.shutdown).
        await isolation.close().catch((err: unknown) => {
          log.warn({ err }, 'cannot remove the job cgroup group');
        });
        audit.close();
      } finally {
        // Last: the shutdown itself can be watched on it.
        await endpoint?.close();
      }
    },
  };
}

/** `jobworkerd dev`: development certificates in `certsDir` if it has none, then serve; returns what to print. */
export async function startDev(
  options: ServeOptions,
  certsDir: string,
): Promise<{ running: Running; hint: string }> {
  // Made on the first run, renewed once expired or about to (each renewal on a line of its own).
  const certs = await prepareDevCerts(certsDir);
  for (const line of certs.renewed) process.stderr.write(`jobworkerd: ${line}\n`);
  const running = await startServe(options);
  const address = options.listen.replace(/:0$/, `:${running.port}`);
  // jobctl's default is localhost:50051; another address needs its --server.
  const server =
    address === SETTINGS.listen.kind.show(DEFAULT_LISTEN) ? '' : ` --server ${address}`;
  const hint = [
    `jobworkerd (development) is listening on ${address}`,
    `  certificates: ${certsDir}${certs.created ? ' (created now)' : ''}`,
    `  state and audit log: ${options.stateDir}`,
    'In another terminal, run a first job as alice:',
    `  node dist/src/cli/main.js${server} run -- echo hello`,
    `  node dist/src/cli/main.js${server} --user bob list    # bob sees only his jobs; --user admin all`,
    'Stop the server with Ctrl-C (running jobs are stopped).',
  ].join('\n');
  return { running, hint };
}
