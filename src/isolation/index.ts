/** Public entry of the isolation layer: the only module other layers import. */
export type {
  ExitReport,
  Isolation,
  LaunchSpec,
  Limits,
  PreparedSandbox,
  RequestedLimits,
  Sandbox,
  Usage,
} from './types.js';
export type { CgroupKind } from './cgroup/detect.js';
export { createIsolation, NOBODY } from './isolation.js';
export type { IsolationOptions, JobIsolation } from './isolation.js';
export { lockFile, LOCK_FILE, StateDirInUseError, type FileLock } from './state-dir.js';
export { DEFAULT_HELPER_PATH } from './helper-check.js';
export { DEFAULT_LIMITS, MAX_PIDS, MAX_MEMORY_SHARE, hostMaxima, resolveLimits } from './limits.js';
