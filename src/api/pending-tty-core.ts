/**
 * TODO(tty-core merge): the job library's attach contract (/work/wt/tty-contract.md) until
 * wt-tty-core is merged; then these come from '../job/index.js' and this file goes.
 */
import { ErrorCode, JobworkerError } from '../errors.js';
import type { JobSpec, Jobs, JobStatus } from '../job/index.js';

/** Contract: AttachOptions. */
export interface AttachOptions {
  readonly write: boolean;
  readonly signal: AbortSignal;
}

/** Contract: Attachment. */
export interface Attachment {
  readonly writer: boolean;
  write(data: Uint8Array): Promise<void>;
  end(): Promise<void>;
  resize(rows: number, cols: number): void;
  interrupt(): void;
  readonly bytesIn: number;
}

/** Contract: TerminalSpec. */
export interface TerminalSpec {
  readonly rows: number;
  readonly cols: number;
  readonly term: string;
}

/** Contract: JobSpec with stdin and tty. */
export type InteractiveSpec = JobSpec & { readonly stdin?: boolean; readonly tty?: TerminalSpec };

/** Contract: JobStatus with stdin and tty. */
export type InteractiveStatus = JobStatus & { readonly stdin?: boolean; readonly tty?: boolean };

/** Contract: MAX_TERMINAL_DIMENSION. */
export const MAX_TERMINAL_DIMENSION = 4096;

/** Contract: Jobs.attach. */
export function attachJob(jobs: Jobs, id: string, options: AttachOptions): Attachment {
  const lib = jobs as Jobs & {
    attach?: (id: string, options: AttachOptions) => Attachment;
  };
  if (lib.attach === undefined) {
    throw new JobworkerError(ErrorCode.Internal, 'the job library has no attach yet');
  }
  return lib.attach(id, options);
}
