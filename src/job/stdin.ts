/**
 * A running job's input (JobSpec.stdin or tty): its one writer seat and the
 * attachments to it. Bytes are never stored: they go from the writer to the
 * sandbox's input stream piece by piece, each handed over only once the
 * previous one reached the kernel, so that a job that does not read makes
 * its writer wait while the server holds one piece of it.
 */
import { ErrorCode, JobworkerError } from '../errors.js';
import type { SandboxInput } from '../isolation/index.js';
import { checkTerminalDimension } from './spec.js';
import type { Attachment, AttachOptions } from './types.js';

/**
 * Most bytes of one write handed to the job's input at once. An attachment
 * that ends while a piece waits for room has still handed that piece over
 * (it reaches the job); nothing after it does.
 */
export const STDIN_PIECE_BYTES = 16 * 1024;

function alreadyFinished(id: string): JobworkerError {
  return new JobworkerError(ErrorCode.AlreadyFinished, `job ${id} has already finished`);
}

function attachmentEnded(id: string): JobworkerError {
  return new JobworkerError(ErrorCode.Cancelled, `the attachment to job ${id} has ended`);
}

function noTerminal(id: string): JobworkerError {
  return new JobworkerError(ErrorCode.InvalidArgument, `tty: job ${id} has no terminal`);
}

function notWriter(id: string, what: string): JobworkerError {
  return new JobworkerError(
    ErrorCode.InvalidArgument,
    `${what}: this attachment to job ${id} is a reader; attach with write to send input`,
  );
}

/** What an attachment needs to know of its job when it has no input (or no longer runs). */
export interface JobFacts {
  readonly id: string;
  readonly tty: boolean;
  /** Whether the job's process has ended (asked at each call). */
  ended(): boolean;
}

/**
 * An attachment that sends nothing: a reader, or any attachment to a job
 * without input. Input calls fail with the reason that fits the job.
 */
export function readerAttachment(job: JobFacts): Attachment {
  const refuse = (what: string): JobworkerError => {
    if (job.ended()) return alreadyFinished(job.id);
    if (what !== 'stdin' && !job.tty) return noTerminal(job.id);
    return notWriter(job.id, what);
  };
  return {
    writer: false,
    bytesIn: 0,
    write: () => Promise.reject(refuse('stdin')),
    end: () => Promise.reject(refuse('stdin')),
    resize() {
      throw refuse('resize');
    },
    interrupt() {
      throw refuse('interrupt');
    },
  };
}

/** Refuses a writer to a job without input: finished, or started without stdin. */
export function refuseWriter(job: JobFacts): never {
  if (job.ended()) throw alreadyFinished(job.id);
  throw new JobworkerError(ErrorCode.NoStdin, `job ${job.id} was started without stdin`);
}

/** A pending hand-over: settled by the stream, or by the input's end. */
type Waiter = (err: JobworkerError | null) => void;

/** A running job's input: the seat, and what waits on the stream. */
export class JobInput {
  readonly #id: string;
  readonly #input: SandboxInput;
  /** Why input is refused from now on; null while it is open. */
  #closed: JobworkerError | null = null;
  /** The writer's release, while one holds the seat. */
  #seat: (() => void) | null = null;
  /** Pieces in flight and an end: at most one piece per writer, and one end. */
  readonly #waiting = new Set<Waiter>();
  /**
   * Settles once the last piece handed to the stream has gone out (or was
   * skipped): a writer that takes the seat while its predecessor's piece is
   * still in Node's buffer waits for it, so the server holds one piece per
   * job however often writers come and go.
   */
  #flushed: Promise<void> = Promise.resolve();

  constructor(id: string, input: SandboxInput) {
    this.#id = id;
    this.#input = input;
  }

  /**
   * The job's process has ended (the owner calls this; nothing else ends a
   * wait, see SandboxInput.stream): whatever waits, and every later write,
   * gets already_finished, and the seat is free.
   */
  finish(): void {
    this.#closed = alreadyFinished(this.#id);
    for (const settle of [...this.#waiting]) settle(this.#closed);
    this.#seat?.();
  }

  /** Why input is refused now, or null. */
  get closed(): JobworkerError | null {
    return this.#closed;
  }

  /** Takes the writer seat until `options.signal` aborts; throws stdin_busy, no_stdin or cancelled. */
  attach(options: AttachOptions, tty: boolean): Attachment {
    if (this.#closed !== null) {
      throw this.#closed;
    }
    if (this.#seat !== null) {
      throw new JobworkerError(
        ErrorCode.StdinBusy,
        `job ${this.#id} already has a stdin writer attached; attach without write to watch it`,
      );
    }
    if (options.signal.aborted) throw attachmentEnded(this.#id);
    return new Writer(this, this.#id, tty, options.signal);
  }

  /** Seats a new writer's release. */
  seat(release: () => void): void {
    this.#seat = release;
  }

  /** Frees the seat if `release` holds it. */
  unseat(release: () => void): void {
    if (this.#seat === release) this.#seat = null;
  }

  /**
   * Hands one piece to the stream once the previous one went out; resolves
   * once it reached the kernel. `live` says whether its writer still holds
   * the seat: a piece whose writer left while it waited is not handed over.
   */
  send(piece: Uint8Array, live: () => boolean): Promise<void> {
    return this.#wait((settle) => {
      const { stream } = this.#input;
      const previous = this.#flushed;
      let flushed = (): void => undefined;
      this.#flushed = new Promise<void>((resolve) => {
        flushed = resolve;
      });
      void previous.then(() => {
        if (this.#closed?.code === ErrorCode.AlreadyFinished || !live() || stream.destroyed) {
          flushed();
          settle(this.#closed ?? attachmentEnded(this.#id));
          return;
        }
        stream.write(piece, (err) => {
          flushed();
          // A stream destroyed with the job calls back without an error (Node's
          // onWriteComplete) although the piece never went out: finish() settles it.
          if (!err && !stream.destroyed) settle(null);
        });
      });
    });
  }

  /** End of input after what was handed over; resolves once it reached the helper. */
  end(): Promise<void> {
    const ended = this.#wait((settle) => {
      this.#input.stream.end(() => {
        settle(null);
      });
    });
    this.#closed = inputEnded(this.#id);
    return ended;
  }

  /** tty: the terminal's new size. */
  resize(rows: number, cols: number): void {
    this.#input.resize({ rows, cols });
  }

  /** tty: SIGINT to its foreground group. */
  interrupt(): void {
    this.#input.interrupt();
  }

  #wait(start: (settle: Waiter) => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const settle: Waiter = (err) => {
        if (!this.#waiting.delete(settle)) return;
        if (err === null) resolve();
        else reject(err);
      };
      this.#waiting.add(settle);
      start(settle);
    });
  }
}

function inputEnded(id: string): JobworkerError {
  return new JobworkerError(ErrorCode.NoStdin, `the input of job ${id} was ended`);
}

/** The attachment holding a job's writer seat. */
class Writer implements Attachment {
  readonly writer = true;
  readonly #input: JobInput;
  readonly #id: string;
  readonly #tty: boolean;
  readonly #release: () => void;
  #released = false;
  #busy = false;
  #bytesIn = 0;
  /** Rejects the caller's wait for the piece in flight, when the attachment ends. */
  #abandon: ((err: JobworkerError) => void) | null = null;

  constructor(input: JobInput, id: string, tty: boolean, signal: AbortSignal) {
    this.#input = input;
    this.#id = id;
    this.#tty = tty;
    this.#release = () => {
      if (this.#released) return;
      this.#released = true;
      signal.removeEventListener('abort', this.#release);
      input.unseat(this.#release);
      this.#abandon?.(input.closed ?? attachmentEnded(id));
    };
    signal.addEventListener('abort', this.#release, { once: true });
    input.seat(this.#release);
  }

  get bytesIn(): number {
    return this.#bytesIn;
  }

  /** Why input from this attachment is refused now, or null. */
  #refusal(): JobworkerError | null {
    if (this.#input.closed?.code === ErrorCode.AlreadyFinished) return this.#input.closed;
    if (this.#released) return attachmentEnded(this.#id);
    return this.#input.closed;
  }

  async write(data: Uint8Array): Promise<void> {
    if (this.#busy) {
      throw new JobworkerError(
        ErrorCode.Internal,
        `a write to job ${this.#id} is still pending: await each write`,
      );
    }
    this.#busy = true;
    try {
      for (let at = 0; at === 0 || at < data.length; at += STDIN_PIECE_BYTES) {
        const refusal = this.#refusal();
        if (refusal !== null) throw refusal;
        if (data.length === 0) return;
        const piece = data.subarray(at, at + STDIN_PIECE_BYTES);
        // Counted as handed over: from here on it reaches the job unless the job ends.
        this.#bytesIn += piece.length;
        await new Promise<void>((resolve, reject) => {
          this.#abandon = reject;
          this.#input.send(piece, () => !this.#released).then(resolve, reject);
        });
        this.#abandon = null;
      }
    } finally {
      this.#abandon = null;
      this.#busy = false;
    }
  }

  async end(): Promise<void> {
    const refusal = this.#refusal();
    if (refusal !== null) throw refusal;
    await this.#input.end();
  }

  resize(rows: number, cols: number): void {
    this.#control();
    checkTerminalDimension(rows, 'rows');
    checkTerminalDimension(cols, 'cols');
    this.#input.resize(rows, cols);
  }

  interrupt(): void {
    this.#control();
    this.#input.interrupt();
  }

  /** A terminal's control is the writer's while it holds the seat and the job runs (after an end too). */
  #control(): void {
    if (!this.#tty) throw noTerminal(this.#id);
    if (this.#input.closed?.code === ErrorCode.AlreadyFinished) throw this.#input.closed;
    if (this.#released) throw attachmentEnded(this.#id);
  }
}
