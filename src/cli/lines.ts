/**
 * Whole lines out of a byte stream, for `jobctl run` on several contexts:
 * each host's stdout and stderr is cut at '\n' so that two hosts' output
 * never mixes inside a line, and each line is written with its context's
 * name in front (pdsh's `host: line`).
 */
import { visibleLine } from './visible.js';

/** Longest line kept whole, in bytes; a longer one is written in pieces this long, each a line of its own. */
export const MAX_LINE_BYTES = 64 * 1024;

/** Cuts chunks into lines; holds at most {@link MAX_LINE_BYTES} of an unfinished one. */
export class LineSplitter {
  #pending: Buffer[] = [];
  #pendingBytes = 0;

  /** The lines `data` completes (without their '\n'), and the pieces of a line that grew too long. */
  push(data: Uint8Array): Buffer[] {
    const lines: Buffer[] = [];
    let chunk = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    for (;;) {
      const room = MAX_LINE_BYTES - this.#pendingBytes;
      const newline = chunk.indexOf(10);
      if (newline !== -1 && newline <= room) {
        lines.push(this.#take(chunk.subarray(0, newline)));
        chunk = chunk.subarray(newline + 1);
      } else if (chunk.length >= room) {
        lines.push(this.#take(chunk.subarray(0, room)));
        chunk = chunk.subarray(room);
      } else {
        if (chunk.length > 0) {
          // A copy: the message's buffer is not ours to keep.
          this.#pending.push(Buffer.from(chunk));
          this.#pendingBytes += chunk.length;
        }
        return lines;
      }
    }
  }

  /** The unfinished last line, if any (the stream has ended). */
  flush(): Buffer | undefined {
    return this.#pendingBytes === 0 ? undefined : this.#take(Buffer.alloc(0));
  }

  #take(tail: Buffer): Buffer {
    const line = this.#pending.length === 0 ? tail : Buffer.concat([...this.#pending, tail]);
    this.#pending = [];
    this.#pendingBytes = 0;
    return line;
  }
}

/**
 * The text to write for `lines`: each decoded as UTF-8 (invalid bytes as
 * U+FFFD), its control characters escaped (a job's ESC or CR could
 * otherwise rewrite another host's line), after `prefix: ` unless `prefix`
 * is undefined, and ended with '\n'.
 */
export function formatLines(prefix: string | undefined, lines: readonly Buffer[]): string {
  const head = prefix === undefined ? '' : `${prefix}: `;
  return lines.map((line) => `${head}${visibleLine(line.toString('utf8'))}\n`).join('');
}
