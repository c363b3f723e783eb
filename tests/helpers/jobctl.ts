/**
 * Runs the built jobctl (dist/src/cli/main.js) as a child process, the way a
 * user does, against a test server: the CLI's end-to-end tests use only this.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

/** Path of the built CLI entry. */
export const jobctlPath = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

/** What a finished jobctl left behind. */
export interface JobctlResult {
  /** Exit status, or null when a signal ended it. */
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: Buffer;
  readonly stderr: string;
}

/** A running jobctl whose output is being collected. */
export interface JobctlProcess {
  readonly child: ChildProcess;
  /** Resolves once stdout+stderr so far contain `text`; rejects if jobctl exits first. */
  waitForOutput(text: string): Promise<void>;
  /** Resolves when jobctl has exited and its pipes are drained. */
  readonly result: Promise<JobctlResult>;
}

/** Options of a jobctl run. */
export interface JobctlOptions {
  /** Environment added to a minimal one (PATH, HOME); JOBCTL_* of the test process never leak in. */
  readonly env?: NodeJS.ProcessEnv;
}

/** Starts `jobctl ...args` and collects its output. The caller must await `result`. */
export function spawnJobctl(args: readonly string[], options: JobctlOptions = {}): JobctlProcess {
  const child = spawn(process.execPath, ['--enable-source-maps', jobctlPath, ...args], {
    env: { PATH: process.env['PATH'], HOME: process.env['HOME'], ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out: Buffer[] = [];
  let err = '';
  let seen = '';
  const waiters = new Set<{ text: string; resolve: () => void }>();
  const check = (): void => {
    for (const w of waiters) {
      if (seen.includes(w.text)) {
        waiters.delete(w);
        w.resolve();
      }
    }
  };
  child.stdout.on('data', (chunk: Buffer) => {
    out.push(chunk);
    // Only the tail matters for matching; keep the text bounded.
    seen = (seen + chunk.toString('latin1')).slice(-65_536);
    check();
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk;
    seen = (seen + chunk).slice(-65_536);
    check();
  });
  const result = once(child, 'close').then(([code, signal]) => ({
    code: code as number | null,
    signal: signal as NodeJS.Signals | null,
    stdout: Buffer.concat(out),
    stderr: err,
  }));
  const exited = result.then((r) => {
    throw new Error(
      `jobctl exited (${String(r.code ?? r.signal)}) before printing the text; stderr: ${r.stderr}`,
    );
  });
  // Waiters that lose the race to the exit reject through `exited`; this keeps it from being unhandled.
  exited.catch(() => undefined);
  return {
    child,
    result,
    waitForOutput: (text) =>
      Promise.race([
        new Promise<void>((resolve) => {
          waiters.add({ text, resolve });
          check();
        }),
        exited,
      ]),
  };
}

/** Runs `jobctl ...args` to its end. */
export async function jobctl(
  args: readonly string[],
  options: JobctlOptions = {},
): Promise<JobctlResult> {
  return spawnJobctl(args, options).result;
}
