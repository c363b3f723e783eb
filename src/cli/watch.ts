/**
 * The WatchJobs loop `jobctl list --watch` and `jobctl events` share: it
 * reads events until Ctrl-C (exit 130, as `logs -f`) or until the server
 * ends the call (an error, so a non-zero exit), and hands each to the
 * command's printer.
 */
import type { WatchJobsRequest, WatchJobsResponse } from '../gen/jobworker/v1/job_service.js';
import type { Io } from './command.js';
import type { Connection } from './connection.js';
import { ExitCode } from './exit-codes.js';
import { untilInterrupted } from './interrupt.js';

/** Watches until Ctrl-C, calling `print` for each event; returns the exit status. */
export function watchUntilInterrupted(
  connection: Connection,
  request: WatchJobsRequest,
  io: Io,
  print: (event: WatchJobsResponse) => void,
): Promise<number> {
  return untilInterrupted(io, async (signal) => {
    for await (const event of connection.watchJobs(request, signal)) print(event);
    // The server never ends a watch by itself but by an error status.
    return ExitCode.Ok;
  });
}
