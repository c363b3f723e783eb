/**
 * An Attach call for the API tests, read as it comes: the output collected,
 * waits for a text in it, and sends that honour the call's backpressure.
 */
import type { ClientDuplexStream, ServiceError } from '@grpc/grpc-js';
import { once } from 'node:events';
import type {
  AttachRequest,
  AttachResponse,
  AttachStart,
  Attached,
  Job,
  JobServiceClient,
} from '../../src/gen/jobworker/v1/job_service.js';

/** How an Attach call ended. */
export interface AttachEnd {
  /** The last message's job, when the call got that far. */
  readonly finished: Job | undefined;
  readonly error: ServiceError | null;
}

/** A running Attach call. */
export interface TestAttachment {
  readonly call: ClientDuplexStream<AttachRequest, AttachResponse>;
  /** The first message (rejects with the call's error when there is none). */
  readonly attached: Promise<Attached>;
  /** Resolves when the call has ended, with how. */
  readonly ended: Promise<AttachEnd>;
  /** Output bytes (stdout and stderr in arrival order) so far. */
  output(): Buffer;
  /** Resolves once the output so far contains `text`; rejects when the call ends first. */
  waitFor(text: string): Promise<void>;
  /** Sends `message`, waiting for 'drain' when grpc-js's buffer is full. */
  send(message: AttachRequest): Promise<void>;
  stdin(data: string | Uint8Array): Promise<void>;
}

/** Opens Attach on `client` with `start` as its first message. */
export function openAttach(
  client: JobServiceClient,
  start: Partial<AttachStart> & { jobId: string },
): TestAttachment {
  const call = client.attach();
  const chunks: Buffer[] = [];
  let text = '';
  let finished: Job | undefined;
  const waiters = new Set<{ text: string; resolve: () => void }>();
  let resolveAttached: (a: Attached) => void = () => undefined;
  const attached = new Promise<Attached>((resolve, reject) => {
    resolveAttached = resolve;
    call.once('error', reject);
  });
  attached.catch(() => undefined);
  call.on('data', (message: AttachResponse) => {
    const event = message.event;
    if (event?.$case === 'attached') resolveAttached(event.value);
    if (event?.$case === 'finished') finished = event.value;
    if (event?.$case === 'chunk') {
      const data = Buffer.from(event.value.data);
      chunks.push(data);
      text = (text + data.toString('latin1')).slice(-65_536);
      for (const w of waiters) {
        if (text.includes(w.text)) {
          waiters.delete(w);
          w.resolve();
        }
      }
    }
  });
  const ended = new Promise<AttachEnd>((resolve) => {
    call.on('error', (error: ServiceError) => {
      resolve({ finished, error });
    });
    call.on('end', () => {
      resolve({ finished, error: null });
    });
  });
  const send = async (message: AttachRequest): Promise<void> => {
    if (!call.write(message)) await once(call, 'drain');
  };
  void send({ event: { $case: 'start', value: { write: false, ...start } } });
  return {
    call,
    attached,
    ended,
    output: () => Buffer.concat(chunks),
    waitFor: (wanted) =>
      Promise.race([
        new Promise<void>((resolve) => {
          waiters.add({ text: wanted, resolve });
          if (text.includes(wanted)) resolve();
        }),
        ended.then((end) => {
          throw new Error(
            `Attach ended before ${JSON.stringify(wanted)}: ${end.error?.message ?? 'finished'}; output: ${JSON.stringify(text.slice(-500))}`,
          );
        }),
      ]),
    send,
    stdin: (data) => send({ event: { $case: 'stdin', value: Buffer.from(data) } }),
  };
}
