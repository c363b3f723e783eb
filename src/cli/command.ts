/**
 * The shape every subcommand module has, so that main.ts can load only the
 * one asked for (a dynamic import per subcommand keeps start-up light).
 */
import type { Readable, Writable } from 'node:stream';

/** The signals a command may listen for. */
export type CliSignal = 'SIGINT' | 'SIGTERM' | 'SIGHUP' | 'SIGWINCH';

/** jobctl's stdin: a terminal (tty.ReadStream) or a pipe or file. */
export interface Input extends Readable {
  readonly isTTY?: boolean;
  setRawMode?(raw: boolean): unknown;
}

/** jobctl's stdout: a terminal (tty.WriteStream, with its size) or a pipe or file. */
export interface Output extends Writable {
  readonly isTTY?: boolean;
  readonly rows?: number;
  readonly columns?: number;
}

/** What a command may touch of the process; tests pass their own. */
export interface Io {
  readonly stdin: Input;
  readonly stdout: Output;
  readonly stderr: Writable;
  readonly env: NodeJS.ProcessEnv;
  /** Emits 'SIGINT' on Ctrl-C, 'SIGWINCH' when the terminal is resized (the process itself in production). */
  readonly signals: {
    on(event: CliSignal, listener: () => void): unknown;
    off(event: CliSignal, listener: () => void): unknown;
  };
}

/** A subcommand: parses its arguments, does its work and returns the exit status. Throws only to report a failure. */
export interface CommandModule {
  /** The text of `jobctl CMD --help`, with an example. */
  readonly help: string;
  /** Runs the command with its arguments (everything after the command name, global flags included). */
  main(args: readonly string[], io: Io): Promise<number>;
}

/** Writes `text` and a newline. Short human output; streams of job output use output.ts. */
export function println(sink: Writable, text: string): void {
  sink.write(`${text}\n`);
}
