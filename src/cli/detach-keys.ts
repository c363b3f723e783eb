/**
 * The detach key sequence, docker's: Ctrl-P Ctrl-Q. Scanned only in keys
 * typed at a terminal (never in piped input, which may hold any bytes). A
 * Ctrl-P is held back until the next key says whether it starts the
 * sequence; any other key sends both, so Ctrl-P alone still reaches the job
 * (one key late).
 */

const CTRL_P = 0x10;
const CTRL_Q = 0x11;

/** How `jobctl attach --help` and `run --help` name the sequence. */
export const DETACH_KEYS_TEXT = 'Ctrl-P Ctrl-Q';

/** Scans keys for the sequence across chunks. */
export class DetachKeys {
  #held = false;

  /** The bytes to send for `chunk` and whether the sequence was typed (the bytes before it are sent). */
  feed(chunk: Uint8Array): { readonly data: Uint8Array; readonly detach: boolean } {
    const out: number[] = [];
    for (const byte of chunk) {
      if (this.#held) {
        this.#held = false;
        if (byte === CTRL_Q) return { data: Uint8Array.from(out), detach: true };
        out.push(CTRL_P);
      }
      if (byte === CTRL_P) this.#held = true;
      else out.push(byte);
    }
    return { data: Uint8Array.from(out), detach: false };
  }
}
