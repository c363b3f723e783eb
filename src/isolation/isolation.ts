/**
 * createIsolation: checks the helper, detects the cgroup layout and builds the
 * cgroup manager once; the returned object prepares sandboxes.
 */
import { ErrorCode, JobworkerError } from '../errors.js';
import { blockDeviceOf } from './cgroup/block-device.js';
import { type CgroupKind, type CgroupLayout, detectLayout } from './cgroup/detect.js';
import { type CgroupFs, nodeCgroupFs } from './cgroup/fs.js';
import { createManager } from './cgroup/manager.js';
import { removeStaleSocketDirs, socketPathFits } from './fork-server.js';
import { ForkServerSlot } from './fork-server-slot.js';
import { checkHelper, DEFAULT_HELPER_PATH, DEFAULT_HELPER_SOURCE } from './helper-check.js';
import { type HostBudget, readHostTotals, resolveHostBudget } from './host-budget.js';
import { DEFAULT_LIMITS, hostMaxima, resolveLimits } from './limits.js';
import { findPrivateDirs } from './private-dirs.js';
import { prepare } from './sandbox.js';
import { groupOfStateDir, lockStateDir } from './state-dir.js';
import type { Isolation, Limits } from './types.js';

/** The unprivileged user and group jobs run as by default ("nobody"/"nogroup"). */
export const NOBODY = 65534;

/** Options of {@link createIsolation}. */
export interface IsolationOptions {
  /** The server's state directory: its block device is the one IO limits apply to. */
  readonly stateDir: string;
  /** The native helper; default native/build/jobexec of this package. */
  readonly helperPath?: string;
  /** The directory of its sources for the staleness check; null skips the hash comparison. */
  readonly helperSource?: string | null;
  /**
   * Directory name of the job cgroups below the server's own cgroup, for
   * tests. Without it the name is derived from the state directory
   * (state-dir.ts), and the isolation holds the state directory's lock until
   * close(): the group is then that directory's alone.
   */
  readonly cgroupGroup?: string;
  /** uid/gid of a LaunchSpec without its own (tests); default 65534. */
  readonly uid?: number;
  readonly gid?: number;
  /**
   * All jobs together, on the group's cgroup; an absent field is half the
   * host's (host-budget.ts). Refused (invalid_argument) above the host's total.
   */
  readonly hostBudget?: Partial<HostBudget>;
  /** Limits of a job that asks for none; an absent field is DEFAULT_LIMITS', lowered to the maxima where above them. */
  readonly defaults?: Partial<Limits>;
  /** Most a job may ask for; an absent field is all cores or the host budget (hostMaxima). */
  readonly maxima?: Partial<Limits>;
  /** Whether a job may share the host network namespace; default true. */
  readonly allowHostNetwork?: boolean;
  /** For tests: another cgroup file system (a fake) and its layout. */
  readonly cgroupFs?: CgroupFs;
  readonly layout?: CgroupLayout;
  /** Non-fatal failures (usage unreadable, a cgroup not removable); default process.emitWarning. */
  readonly onWarning?: (err: JobworkerError) => void;
  /** Told each time a dead fork server is replaced (metrics); must not throw. */
  readonly onForkServerRestart?: () => void;
}

/** The isolation layer as the server sees it. */
export interface JobIsolation extends Isolation {
  /** The host's cgroup layout, detected once. */
  readonly cgroupKind: CgroupKind;
  /** `<own cgroup>/<group>` in every hierarchy used (for diagnostics and tests). */
  readonly cgroupGroupDirs: readonly string[];
  /**
   * Kills and removes job cgroups left by a previous run, and the socket
   * directories of dead fork servers; returns how many cgroups. Call at server start.
   */
  sweepLeftovers(): Promise<number>;
  /**
   * Removes the group directories. Call once every job has ended (after the
   * job manager's shutdown); rejects (internal) if a job cgroup is left.
   */
  close(): Promise<void>;
}

/** Each field of `limits` at most the maximum's (where one is set). */
function lowerTo(limits: Limits, maxima: Limits): Limits {
  const min = (value: number, max: number) => (max > 0 ? Math.min(value, max) : value);
  return {
    cpuMillis: min(limits.cpuMillis, maxima.cpuMillis),
    memoryBytes: min(limits.memoryBytes, maxima.memoryBytes),
    ioReadBps: min(limits.ioReadBps, maxima.ioReadBps),
    ioWriteBps: min(limits.ioWriteBps, maxima.ioWriteBps),
    pidsMax: min(limits.pidsMax, maxima.pidsMax),
  };
}

/** Builds the isolation layer; refuses (internal) when the helper or cgroups are unusable. */
export async function createIsolation(options: IsolationOptions): Promise<JobIsolation> {
  const helper = options.helperPath ?? DEFAULT_HELPER_PATH;
  await checkHelper(
    helper,
    options.helperSource !== undefined
      ? options.helperSource
      : options.helperPath === undefined
        ? DEFAULT_HELPER_SOURCE
        : null,
  );
  if (!socketPathFits(options.stateDir)) {
    throw new JobworkerError(
      ErrorCode.InvalidArgument,
      `stateDir: ${options.stateDir} is too long to hold the helper's Unix socket (108 bytes at most with its name)`,
    );
  }
  const layout = options.layout ?? (await detectLayout());
  const group = options.cgroupGroup ?? (await groupOfStateDir(options.stateDir));
  if (!/^[A-Za-z0-9._-]+$/.test(group) || group.startsWith('.')) {
    throw new JobworkerError(
      ErrorCode.InvalidArgument,
      `cgroupGroup: "${group}" is not a plain name`,
    );
  }
  const ioDevice = await blockDeviceOf(options.stateDir);
  const warn =
    options.onWarning ??
    ((err: JobworkerError) => {
      process.emitWarning(err.message, { code: `JOBWORKER_${err.code.toUpperCase()}` });
    });
  const privateDirs = await findPrivateDirs(options.stateDir, warn);
  const budget = resolveHostBudget(await readHostTotals(), options.hostBudget);
  // Before the first cgroup is touched: a derived group is its lock holder's alone.
  const lock =
    options.cgroupGroup === undefined ? await lockStateDir(options.stateDir, helper) : null;
  const manager = await createManager(layout, {
    fs: options.cgroupFs ?? nodeCgroupFs,
    group,
    context: { ioDevice },
    selfPid: process.pid,
    budget,
  }).catch(async (err: unknown) => {
    await lock?.release();
    throw err;
  });
  const maxima = { ...hostMaxima(budget), ...options.maxima };
  const defaults = lowerTo({ ...DEFAULT_LIMITS, ...options.defaults }, maxima);
  const allowHostNetwork = options.allowHostNetwork ?? true;
  const forkServer = new ForkServerSlot(helper, options.stateDir, options.onForkServerRestart);
  const ctx = {
    helper,
    fork: forkServer.fork.bind(forkServer),
    manager,
    privateDirs,
    uid: options.uid ?? NOBODY,
    gid: options.gid ?? NOBODY,
    warn,
  };
  return {
    cgroupKind: layout.kind,
    hostBudget: budget,
    cgroupGroupDirs: manager.groupDirs,
    resolveLimits: (requested, name) => resolveLimits(requested, defaults, maxima, name),
    prepare(spec, signal) {
      if (spec.hostNetwork && !allowHostNetwork) {
        return Promise.reject(
          new JobworkerError(
            ErrorCode.PermissionDenied,
            'hostNetwork: this server does not allow the host network',
          ),
        );
      }
      return prepare(ctx, spec, signal);
    },
    async sweepLeftovers() {
      await removeStaleSocketDirs(options.stateDir);
      return manager.sweep();
    },
    async close() {
      await forkServer.close();
      try {
        await manager.close();
      } finally {
        await lock?.release();
      }
    },
  };
}
