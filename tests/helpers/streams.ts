/**
 * Followed StreamOutput calls for the cancellation tests and the connections
 * bench: one that runs until its end, and one cancelled at a random point.
 */
import { status as Status, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import type {
  JobServiceClient,
  StreamOutputResponse,
} from '../../src/gen/jobworker/v1/job_service.js';

/** A followed stream of a job's output from the start. */
export interface Followed {
  readonly call: ClientReadableStream<StreamOutputResponse>;
  /** The status it ended with on the client (OK after its end). */
  readonly ended: Promise<Status>;
  /** Messages received so far. */
  messages(): number;
}

/** Follows `jobId`'s output from offset 0. */
export function follow(client: JobServiceClient, jobId: string): Followed {
  const call = client.streamOutput({
    jobId,
    stream: 0,
    stdoutOffset: 0,
    stderrOffset: 0,
    follow: true,
  });
  let messages = 0;
  const ended = new Promise<Status>((resolve) => {
    call.on('error', (err: ServiceError) => {
      resolve(err.code);
    });
    call.on('end', () => {
      resolve(Status.OK);
    });
  });
  call.on('data', () => {
    messages++;
  });
  return { call, ended, messages: () => messages };
}

/**
 * Follows `jobId` and cancels at a random point: at once (before or while
 * its HEADERS go out), after a turn of the event loop, or after 0-4 ms.
 * Resolves with the status the client saw.
 */
export async function cancelAtRandom(client: JobServiceClient, jobId: string): Promise<Status> {
  const followed = follow(client, jobId);
  const point = Math.random();
  if (point >= 0.6) await sleep(Math.floor(Math.random() * 5));
  else if (point >= 0.3) await nextTurn();
  followed.call.cancel();
  return followed.ended;
}
