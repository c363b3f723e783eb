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

  /** Appends `line` (with its newline), rotating first if it would not fit. */
  write(line: string): void {
    const bytes = Buffer.from(line);
    if (this.#size > 0 && this.#size + bytes.length > this.#options.maxBytes) this.#rotate();
    writeSync(this.#fd, bytes);
    this.#size += bytes.length;
  }

  /** Closes the file. */
  close(): void {
    closeSync(this.#fd);
  }

  #open(): number {
    return openSync(this.#path, 'a', this.#options.mode);
  }

  #rotate(): void {
    closeSync(this.#fd);
    const { keep } = this.#options;
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
      else rmSync(this.#path, { force: true });
    } finally {
      // Reopened whatever failed: a rotation that failed leaves the file growing, not closed.
      this.#fd = this.#open();
      this.#size = fstatSync(this.#fd).size;
    }
  }
}
