/**
 * Runs the built jobworkerd (dist/src/api/main.js) as a child process, for
 * the commands that end on their own (`certs`, and `dev` where it fails).
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Path of the built server entry. */
export const jobworkerdPath = fileURLToPath(new URL('../../src/api/main.js', import.meta.url));

/** What a finished jobworkerd left behind. */
export interface JobworkerdResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Options of a jobworkerd run. */
export interface JobworkerdOptions {
  /** The whole environment (default: PATH and HOME only). */
  readonly env?: NodeJS.ProcessEnv;
}

/** Runs `jobworkerd ...args` to its end (bounded: a minute). */
export function jobworkerd(
  args: readonly string[],
  options: JobworkerdOptions = {},
): Promise<JobworkerdResult> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--enable-source-maps', jobworkerdPath, ...args],
      {
        env: options.env ?? { PATH: process.env['PATH'], HOME: process.env['HOME'] },
        timeout: 60_000,
      },
      (err, stdout, stderr) => {
        if (err !== null && typeof err.code !== 'number') {
          reject(
            new Error(`jobworkerd ${args.join(' ')} did not run: ${err.message}`, { cause: err }),
          );
          return;
        }
        resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr });
      },
    );
  });
}
