/** Public entry of the job library: the only module the API layer imports. */
export type {
  EndReason,
  JobSpec,
  JobState,
  Jobs,
  ListFilter,
  JobStatus,
  OutputEvent,
  OutputOptions,
  StreamName,
  StopOptions,
  StreamSummary,
} from './types.js';
