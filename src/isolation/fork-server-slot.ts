/**
 * The isolation's one fork server (fork-server.ts): started at the first
 * fork, replaced once it has died (killed by hand, OOM), and ended by
 * close(). The one place that knows a fork server can die under a launch.
 */
import { ErrorCode, JobworkerError } from '../errors.js';
import { ForkServer, type HelperProcess } from './fork-server.js';
import type { LaunchRequest } from './protocol.js';

/** Holds the current fork server and forks helpers on it. */
export class ForkServerSlot {
  readonly #helper: string;
  readonly #baseDir: string;
  readonly #onRestart: () => void;
  #current: Promise<ForkServer> | null = null;
  #closed = false;

  /** `helper` is the jobexec binary; its socket directory goes below `baseDir`; `onRestart` is told of each replacement. */
  constructor(helper: string, baseDir: string, onRestart: () => void = () => undefined) {
    this.#helper = helper;
    this.#baseDir = baseDir;
    this.#onRestart = onRestart;
  }

  /**
   * Forks a helper (see {@link ForkServer.launch}). A fork server found dead
   * is replaced first; one that dies between that check and the request is
   * replaced and the fork tried once more: nothing ran on it, since a helper
   * runs only once the server holds its connections.
   */
  async fork(request: LaunchRequest, signal?: AbortSignal): Promise<HelperProcess> {
    const server = await this.#live();
    try {
      return await server.launch(request, signal);
    } catch (err) {
      if (server.alive || signal?.aborted === true) throw err;
      return (await this.#live()).launch(request, signal);
    }
  }

  /** Ends the fork server and refuses further forks (call once every job has ended). */
  async close(): Promise<void> {
    this.#closed = true;
    await (await this.#current?.catch(() => null))?.close();
  }

  async #live(): Promise<ForkServer> {
    // After close(): a new fork server would have no owner to end it.
    if (this.#closed) throw new JobworkerError(ErrorCode.Unavailable, 'the isolation is closed');
    const current = this.#current;
    const server = await current?.catch(() => null);
    if (server?.alive === true) return server;
    // Another fork replaced it while this one waited.
    if (this.#current !== current && this.#current !== null) return this.#current;
    if (current !== null) this.#onRestart();
    this.#current = (async () => {
      await server?.close();
      return ForkServer.start(this.#helper, this.#baseDir);
    })();
    return this.#current;
  }
}
