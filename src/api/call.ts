/**
 * The mechanics of one call under the seam (seam.ts): its AbortSignal, the
 * count of calls in flight, and writes that honour backpressure (request
 * decoding: decode.ts). Every listener added here is removed when the call ends.
 */
import type * as grpc from '@grpc/grpc-js';
import { ErrorCode, JobworkerError } from '../errors.js';
import { linkSignals, raceAbort } from '../signals.js';
import { Undecodable } from './decode.js';

/** The shape of a generated grpc-js service definition. */
export type Definition = Record<
  string,
  {
    readonly path: string;
    readonly requestStream: boolean;
    readonly responseStream: boolean;
    readonly requestDeserialize: (bytes: Buffer) => unknown;
    readonly responseSerialize: (value: never) => Buffer;
  }
>;

/** A server call of either kind handled here. */
export type AnyCall =
  | grpc.ServerUnaryCall<unknown, unknown>
  | grpc.ServerWritableStream<unknown, unknown>
  | grpc.ServerDuplexStream<unknown, unknown>;

/** Counts the calls inside the seam and tells when none is left. */
export class CallTracker {
  #active = 0;
  #idle: (() => void)[] = [];

  /** Calls being handled now. */
  get active(): number {
    return this.#active;
  }

  /** A call entered the seam. */
  enter(): void {
    this.#active++;
  }

  /** A call left the seam (answered, failed or cancelled). */
  leave(): void {
    this.#active--;
    if (this.#active === 0) for (const resolve of this.#idle.splice(0)) resolve();
  }

  /** Resolves once no call is being handled (at once if none is). */
  whenIdle(): Promise<void> {
    if (this.#active === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }
}

/**
 * Links the call's cancellation, deadline, the server's shutdown and the end
 * of its connection into one signal; returns it and its cleanup, which aborts
 * it too (the call has ended).
 */
export function callSignal(
  call: AnyCall,
  shutdown: AbortSignal,
  connection: AbortSignal | undefined,
): { signal: AbortSignal; dispose: () => void } {
  const link = linkSignals(shutdown, connection);
  const onCancelled = (): void => {
    const deadline = call.getDeadline();
    const expired =
      deadline instanceof Date
        ? deadline.getTime() <= Date.now()
        : Number.isFinite(deadline) && deadline <= Date.now();
    link.controller.abort(
      expired
        ? new JobworkerError(ErrorCode.DeadlineExceeded, 'deadline exceeded')
        : new JobworkerError(ErrorCode.Cancelled, 'call cancelled by the client'),
    );
  };
  // Every kind of call is an EventEmitter with 'cancelled'; the union's overloads do not unify.
  const emitter = call as grpc.ServerUnaryCall<unknown, unknown>;
  emitter.once('cancelled', onCancelled);
  return {
    signal: link.signal,
    dispose: () => {
      emitter.off('cancelled', onCancelled);
      // Whatever still waits on the call ends with it: an attach's output
      // pump waiting in a send to a client that does not read, after the
      // input pump failed the call, would otherwise hold its follower.
      if (!link.signal.aborted)
        link.controller.abort(new JobworkerError(ErrorCode.Cancelled, 'the call has ended'));
      link.dispose();
    },
  };
}

/**
 * Most messages a call has in grpc-js at once (queued, or being written to
 * its HTTP/2 stream) before the handler waits. grpc-js's own bound is 16
 * messages, 1 MiB of output chunks per follower; two keep the HTTP/2
 * stream fed (one being written, the next one ready) and keep fan-out
 * memory down (docs/benchmarks.md).
 */
const SEND_WINDOW = 2;

/**
 * The send function of one streaming call: writes a message and returns
 * once fewer than {@link SEND_WINDOW} are in grpc-js; the wait ends when
 * `signal` aborts (after a cancel grpc-js may complete no write; the seam
 * aborts the signal when the call ends).
 */
export function sender<Res>(
  call: grpc.ServerWritableStream<unknown, Res> | grpc.ServerDuplexStream<unknown, Res>,
  signal: AbortSignal,
): (message: Res) => Promise<void> {
  let inFlight = 0;
  // Senders waiting for room: one, unless a handler sends without awaiting the last send.
  const waiting: (() => void)[] = [];
  const written = (): void => {
    inFlight--;
    for (const wake of waiting.splice(0)) wake();
  };
  return async (message) => {
    signal.throwIfAborted();
    // Counted once grpc-js took it (write callbacks never run synchronously).
    call.write(message, written);
    inFlight++;
    while (inFlight >= SEND_WINDOW) {
      await raceAbort(
        new Promise<void>((resolve) => {
          waiting.push(resolve);
        }),
        signal,
      );
    }
  };
}

/**
 * The client's messages of a bidirectional call, one at a time: grpc-js
 * reads the next one from the HTTP/2 stream only when asked (its readable
 * buffer holds at most 16 messages), so a handler that awaits its work
 * before asking again is the client's backpressure. An undecodable message
 * is an invalid_argument. Stopping early does not destroy the call: its
 * response side still runs.
 */
export async function* requests<Req>(
  call: grpc.ServerDuplexStream<Req, unknown>,
  signal: AbortSignal,
): AsyncGenerator<Req, void, undefined> {
  const iterator = call.iterator({ destroyOnReturn: false })[Symbol.asyncIterator]();
  for (;;) {
    // A read pending at the abort is left to the stream, which grpc-js closes with the call.
    const next = (await raceAbort(iterator.next(), signal)) as IteratorResult<unknown>;
    if (next.done === true) return;
    if (next.value instanceof Undecodable)
      throw new JobworkerError(ErrorCode.InvalidArgument, next.value.message);
    yield next.value as Req;
  }
}
