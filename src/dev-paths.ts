/**
 * Paths of the development setup that `npm start` (`jobworkerd dev`) creates
 * and jobctl uses by default: one definition for both programs, below every
 * layer (it imports only node:os and node:path, so jobctl stays light).
 */
import { homedir } from 'node:os';
import { join } from 'node:path';

/** Where the development server keeps its certificates and state. */
export interface DevPaths {
  /** Root: `${XDG_STATE_HOME:-$HOME/.local/state}/jobworker/dev`. */
  readonly root: string;
  /** ca.crt, server.*, alice.*, bob.*, admin.* */
  readonly certs: string;
  /** The server's state directory (jobs, audit.log). */
  readonly state: string;
}

/** The development paths for the current user (`env` for tests). */
export function devPaths(env: NodeJS.ProcessEnv = process.env): DevPaths {
  // The XDG spec says to ignore a relative XDG_STATE_HOME.
  const xdg = env['XDG_STATE_HOME'];
  const base =
    xdg !== undefined && xdg.startsWith('/')
      ? xdg
      : join(env['HOME'] ?? homedir(), '.local', 'state');
  const root = join(base, 'jobworker', 'dev');
  return { root, certs: join(root, 'certs'), state: join(root, 'state') };
}
