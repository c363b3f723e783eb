/**
 * Text a server or another user chose, made safe for a terminal. Its own
 * module, free of imports, so that main.ts can use it without loading
 * grpc-js (format.ts's generated types do).
 */

/**
 * C0 controls, DEL and C1 controls: what a terminal may act on instead of
 * showing (ESC starts the sequences that set the clipboard or move the cursor).
 */
const CONTROL = /\p{Cc}/gu;

/** `\x1b` for ESC, `\u009b` for a C1 control: the spelling of bash's `$'...'`. */
function escapeControl(c: string): string {
  const code = c.codePointAt(0) ?? 0;
  return code < 0x80
    ? `\\x${code.toString(16).padStart(2, '0')}`
    : `\\u${code.toString(16).padStart(4, '0')}`;
}

/**
 * `text` with every control character shown as an escape (ESC as `\x1b`).
 * Everything jobctl prints that a server or another user chose (commands,
 * directories, names, messages) goes through it; only `logs` and `run`
 * write raw bytes, the job's output.
 */
export function visible(text: string): string {
  return text.replace(CONTROL, escapeControl);
}

/** Whether `text` has a control character {@link visible} would escape. */
export function hasControl(text: string): boolean {
  return /\p{Cc}/u.test(text);
}

/**
 * {@link visible} for one line of a job's output among other hosts' lines
 * (`jobctl run` on several contexts): a tab stays, since it cannot leave the
 * line or overwrite its prefix; every other control character is escaped.
 */
export function visibleLine(text: string): string {
  return text.replace(CONTROL, (c) => (c === '\t' ? c : escapeControl(c)));
}
