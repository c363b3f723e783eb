/** Public entry of the job library: the only module the API layer imports. */
export type {
  EndReason,
  JobSpec,
  JobState,
  JobStatus,
  OutputEvent,
  OutputOptions,
  StreamName,
  StreamSummary,
} from './types.js';
