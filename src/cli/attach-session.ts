/**
 * One attachment of jobctl to a job, for `run -i/-t` and `attach`: the
 * job's output to stdout and stderr, jobctl's stdin to the job (with
 * backpressure: the next local read waits until the server has taken the
 * previous bytes), the local window size on start and on SIGWINCH, and with
 * a local terminal raw mode and the detach keys. It ends when the job has
 * finished, on the detach keys, on SIGTERM/SIGHUP while the terminal is raw
 * (the terminal restored first), or when `signal` aborts; the job goes on
 * in every case but the first.
 */
import { constants } from 'node:os';
import { ErrorCode, JobworkerError } from '../errors.js';
import type { AttachResponse, Job, StreamOutputResponse } from '../gen/jobworker/v1/job_service.js';
import { linkSignals, onAbort } from '../signals.js';
import { MAX_STDIN_CHUNK_BYTES } from '../stdin-chunk.js';
import { println, type CliSignal, type Input, type Io } from './command.js';
import type { AttachCall, Connection } from './connection.js';
import { DetachKeys } from './detach-keys.js';
import { ExitCode, exitCodeForJob } from './exit-codes.js';
import { copyOutput } from './output.js';
import { enterRawMode, windowSize } from './terminal.js';

/** How jobctl attaches. */
export interface SessionOptions {
  readonly jobId: string;
  /** Ask for the writer seat (needed for stdin and resizes). */
  readonly write: boolean;
  /** Copy jobctl's stdin to the job, then its end of input. */
  readonly forwardStdin: boolean;
  /** jobctl's stdin is a terminal to put in raw mode, with the detach keys. */
  readonly raw: boolean;
  /** Send the local window size at the start and on each SIGWINCH (a terminal job's writer). */
  readonly resize: boolean;
  /** As StreamOutputRequest.tail_lines; all stored output when undefined. */
  readonly tailLines?: number | undefined;
}

/** How an attachment ended. */
export type SessionEnd =
  | { readonly kind: 'finished'; readonly job: Job }
  | { readonly kind: 'detached' }
  | { readonly kind: 'signalled'; readonly signal: 'SIGTERM' | 'SIGHUP' };

/** The reason that ends the call when the session itself ends it. */
class SessionOver extends Error {
  override readonly name = 'SessionOver';
  readonly end: SessionEnd;
  constructor(end: SessionEnd) {
    super(end.kind);
    this.end = end;
  }
}

/** Signals that end a raw session (the terminal must be restored; Node's default would not). */
const HANGUPS = ['SIGTERM', 'SIGHUP'] as const;

/** Attaches to a job; see the module comment. Throws JobworkerError for the call's failures. */
export async function attachSession(
  connection: Connection,
  options: SessionOptions,
  io: Io,
  signal: AbortSignal,
): Promise<SessionEnd> {
  const link = linkSignals(signal);
  const call = connection.attach(link.signal);
  const listeners: [CliSignal, () => void][] = [];
  const listen = (name: CliSignal, listener: () => void): void => {
    io.signals.on(name, listener);
    listeners.push([name, listener]);
  };
  let restore = (): void => undefined;
  const end = (how: SessionEnd): void => {
    link.controller.abort(new SessionOver(how));
  };
  try {
    await call.send({
      event: {
        $case: 'start',
        value: { jobId: options.jobId, write: options.write, tailLines: options.tailLines },
      },
    });
    const first = await call.messages.next();
    if (first.done === true || first.value.event?.$case !== 'attached') {
      throw new JobworkerError(ErrorCode.Internal, 'Attach answered without attached first');
    }
    if (options.raw) {
      restore = enterRawMode(io.stdin);
      for (const name of HANGUPS)
        listen(name, () => {
          end({ kind: 'signalled', signal: name });
        });
    }
    const sendSize = (): Promise<void> =>
      call.send({ event: { $case: 'resize', value: windowSize(io.stdout) } });
    if (options.resize) {
      await sendSize();
      // A failed resize is the call's failure: the output side reports it.
      listen('SIGWINCH', () => void sendSize().catch(() => undefined));
    }
    const input = options.forwardStdin
      ? copyInput(io.stdin, call, options.raw ? new DetachKeys() : null, link.signal).then(
          (detached) => {
            if (detached) end({ kind: 'detached' });
          },
        )
      : Promise.resolve();
    const output = copyOutput(outputEvents(call.messages), io, (cap) => {
      println(
        io.stderr,
        `jobctl: output truncated: the job reached the output cap of ${cap} bytes; the rest was dropped`,
      );
    });
    // Input that ends (EOF, detach) leaves the output to end the session; a failed one ends it.
    const finished = await Promise.race([output, input.then(() => output)]);
    if (finished === undefined) {
      throw new JobworkerError(
        ErrorCode.Internal,
        `the attachment to job ${options.jobId} ended before the job did`,
      );
    }
    return { kind: 'finished', job: finished };
  } catch (err) {
    const reason: unknown = link.signal.reason;
    if (reason instanceof SessionOver) return reason.end;
    throw err;
  } finally {
    for (const [name, listener] of listeners) io.signals.off(name, listener);
    restore();
    link.controller.abort(new SessionOver({ kind: 'detached' }));
    link.dispose();
    // Cancels the call if the output was not read to its end.
    await call.messages.return(undefined);
  }
}

/** The output events of an Attach call (its `attached` is read before). */
async function* outputEvents(
  messages: AsyncIterable<AttachResponse>,
): AsyncGenerator<StreamOutputResponse> {
  for await (const { event } of messages) {
    if (event !== undefined && event.$case !== 'attached') yield { event };
  }
}

/**
 * Copies `stdin` to the job in chunks of at most MAX_STDIN_CHUNK_BYTES,
 * reading the next local chunk only once the previous one was sent; at EOF
 * sends the end of input. Resolves true when the detach keys were typed.
 * Pauses stdin however it ends, so it holds the process open no longer.
 */
function copyInput(
  stdin: Input,
  call: AttachCall,
  keys: DetachKeys | null,
  signal: AbortSignal,
): Promise<boolean> {
  return new Promise<boolean>((resolve, reject) => {
    const stop = (): void => {
      stdin.off('data', onData);
      stdin.off('end', onEnd);
      stdin.off('error', onError);
      stopListening();
      stdin.pause();
    };
    const fail = (err: Error): void => {
      stop();
      reject(err);
    };
    const onData = (chunk: Buffer): void => {
      stdin.pause();
      const scanned = keys === null ? { data: chunk, detach: false } : keys.feed(chunk);
      sendChunks(call, scanned.data).then(() => {
        if (scanned.detach) {
          stop();
          resolve(true);
        } else if (!signal.aborted) stdin.resume();
      }, fail);
    };
    const onEnd = (): void => {
      stop();
      call.send({ event: { $case: 'end', value: {} } }).then(() => {
        resolve(false);
      }, reject);
    };
    const onError = (err: Error): void => {
      fail(new JobworkerError(ErrorCode.Internal, `reading stdin: ${err.message}`));
    };
    const stopListening = onAbort(signal, () => {
      fail(signal.reason as Error);
    });
    stdin.on('data', onData);
    stdin.once('end', onEnd);
    stdin.once('error', onError);
    stdin.resume();
  });
}

async function sendChunks(call: AttachCall, data: Uint8Array): Promise<void> {
  for (let at = 0; at < data.length; at += MAX_STDIN_CHUNK_BYTES) {
    const value = Buffer.from(data.subarray(at, at + MAX_STDIN_CHUNK_BYTES));
    await call.send({ event: { $case: 'stdin', value } });
  }
}

/** The exit status of an attachment's end, its message printed: the job's, 0 detached, 128+N signalled. */
export function exitCodeOfSession(end: SessionEnd, jobId: string, io: Io): number {
  switch (end.kind) {
    case 'finished':
      return exitCodeForJob(end.job);
    case 'detached':
      println(io.stderr, `jobctl: detached from job ${jobId}; 'jobctl attach ${jobId}' comes back`);
      return ExitCode.Ok;
    case 'signalled':
      println(io.stderr, `jobctl: ${end.signal}: detached from job ${jobId}; it keeps running`);
      return 128 + constants.signals[end.signal];
  }
}
