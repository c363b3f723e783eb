/** Public entry of the isolation layer: the only module other layers import. */
export { FORWARDED_SIGNALS, type ForwardedSignal } from './types.js';
export type {
  ExitReport,
  Isolation,
  LaunchSpec,
  Limits,
  PreparedSandbox,
  RequestedLimits,
  Sandbox,
  SandboxInput,
  Usage,
  WindowSize,
} from './types.js';
export type { CgroupKind } from './cgroup/detect.js';
export { createIsolation, NOBODY } from './isolation.js';
export type { IsolationOptions, JobIsolation } from './isolation.js';
export { lockFile, LOCK_FILE, StateDirInUseError, type FileLock } from './state-dir.js';
export { DEFAULT_HELPER_PATH } from './helper-check.js';
export { MAX_TERMINAL_DIMENSION } from './protocol.js';
export { clearUidKeys } from './uid-keys.js';
export { DEFAULT_LIMITS, hostMaxima, resolveLimits } from './limits.js';
export {
  HOST_BUDGET_FLAGS,
  HOST_BUDGET_SHARE,
  readHostTotals,
  resolveHostBudget,
} from './host-budget.js';
export type { HostBudget } from './host-budget.js';
export { protectServerFromOom, SERVER_OOM_SCORE_ADJ } from './oom-score.js';
