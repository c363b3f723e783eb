/** Public entry of the job library: the only module the API layer imports. */
export { FORWARDED_SIGNALS, type ForwardedSignal } from '../isolation/index.js';
export type {
  Attachment,
  AttachOptions,
  DeleteOptions,
  EndReason,
  JobSpec,
  JobState,
  Jobs,
  ListCursor,
  ListFilter,
  JobStatus,
  OutputEvent,
  OutputOptions,
  StreamName,
  StopOptions,
  StreamSummary,
  TerminalSpec,
  WatchChange,
  WatchEvent,
  WatchOptions,
} from './types.js';
export {
  checkJobName,
  isValidJobName,
  MAX_LABELS,
  parseSelector,
  type LabelSelector,
  type Labels,
} from './labels.js';
export { WATCH_QUEUE_EVENTS } from './watch-hub.js';
export {
  createJobManager,
  DEFAULT_GRACE_MS,
  DEFAULT_MAX_RUNNING_JOBS,
  JobManager,
  MAX_GRACE_MS,
  openJobManager,
  type FollowerStats,
  type JobManagerOptions,
} from './manager.js';
export { MAX_TAIL_LINES } from './log-seek.js';
export { Budget, type BudgetRule, type Release } from './budget.js';
export {
  DEFAULT_MAX_RUNNING_JOBS_PER_OWNER,
  OWNER_BUDGET_NAMES,
  type OwnerBudget,
} from './owner-budget.js';
export { OWNER_UID_RANGE, OWNERS_FILE, type OwnerIdsOptions, type UidRange } from './owner-ids.js';
export type { RecoveryLog, RecoveryReport } from './recovery.js';
export {
  DEFAULT_DISK_BUDGET_BYTES,
  DEFAULT_MAX_FINISHED_JOBS,
  DEFAULT_MAX_FINISHED_JOBS_PER_OWNER,
  DEFAULT_RECORD_BUDGET_BYTES,
  DEFAULT_RETENTION_MS,
  RETENTION_SWEEP_INTERVAL_MS,
} from './retention.js';
export { isValidJobId, newJobId } from './ids.js';
export { DEFAULT_OUTPUT_CAP_BYTES } from './log-writer.js';
export { STDIN_PIECE_BYTES } from './stdin.js';
export {
  DEFAULT_PATH,
  MAX_TERM_BYTES,
  MAX_TERMINAL_DIMENSION,
  MAX_TIMEOUT_MS,
  quote,
  validateSpec,
  type FieldNames,
  type SpecField,
} from './spec.js';
