/**
 * An append-only file of lines, bounded: once it would pass `maxBytes` it is
 * renamed `<path>.1` (older ones shifting to `.2` ... `.<keep>`, the oldest
 * dropped) and a new one is started. Writes are synchronous, as the audit
 * log's are (nothing lost on exit), and whole lines never straddle two files.
 */
import { closeSync, fstatSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';

/** Options of {@link RotatingFile}. */
export interface RotationOptions {
  /** Most bytes of one file. */
  readonly maxBytes: number;
  /** Rotated files kept besides the current one. */
  readonly keep: number;
  /** Mode of new files. */
  readonly mode: number;
}

/** The file; {@link close} it. */
export class RotatingFile {
  readonly #path: string;
  readonly #options: RotationOptions;
  #fd: number;
  #size: number;

  constructor(path: string, options: RotationOptions) {
    this.#path = path;
    this.#options = options;
    this.#fd = this.#open();
    this.#size = fstatSync(this.#fd).size;
  }

  /** The most bytes the file and its rotated copies take together. */
  static footprint(options: Pick<RotationOptions, 'maxBytes' | 'keep'>): number {
    return options.maxBytes * (options.keep + 1);
  }

  /**
   * Appends `line` (with its newline), rotating first if it would not fit.
   * A rotation that fails throws after the line was written to the current
   * file, which then grows past the bound until a later rotation succeeds.
   */
  write(line: string): void {
    const bytes = Buffer.from(line);
    let failed: Error | null = null;
    if (this.#size > 0 && this.#size + bytes.length > this.#options.maxBytes) {
      try {
        this.#rotate();
      } catch (err) {
        failed = err instanceof Error ? err : new Error(String(err));
      }
    }
    writeSync(this.#fd, bytes);
    this.#size += bytes.length;
    if (failed !== null) throw failed;
  }

  /** Closes the file. */
  close(): void {
    closeSync(this.#fd);
  }

  #open(path = this.#path): number {
    return openSync(path, 'a', this.#options.mode);
  }

  /**
   * The new file is opened (under a temporary name) before anything moves and
   * the old descriptor is closed only once the new one is in place: a failure
   * leaves this object writing to a descriptor it still owns, never to a
   * number the process may have given to another file since.
   */
  #rotate(): void {
    const { keep } = this.#options;
    const next = `${this.#path}.next`;
    const fd = this.#open(next);
    try {
      rmSync(`${this.#path}.${keep}`, { force: true });
      for (let i = keep - 1; i >= 1; i--) {
        try {
          renameSync(`${this.#path}.${i}`, `${this.#path}.${i + 1}`);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        }
      }
      if (keep > 0) renameSync(this.#path, `${this.#path}.1`);
      renameSync(next, this.#path);
    } catch (err) {
      closeSync(fd);
      rmSync(next, { force: true });
      throw err;
    }
    closeSync(this.#fd);
    this.#fd = fd;
    this.#size = fstatSync(fd).size;
  }
}
