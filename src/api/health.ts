/**
 * grpc.health.v1.Health, behind the same seam as JobService: any client
 * certificate from the CA with a known role may call it, and each call is
 * audited like any other. The status is SERVING while the server runs and
 * NOT_SERVING once shutdown begins; only the overall service ("") and
 * "jobworker.v1.JobService" are known.
 */
import { EventEmitter, on } from 'node:events';
import { ErrorCode, JobworkerError } from '../errors.js';
import {
  HealthCheckResponse_ServingStatus as ServingStatus,
  HealthService,
} from '../gen/grpc/health/v1/health.js';
import { ROLES } from './authz.js';
import type { Handlers } from './seam.js';

const KNOWN_SERVICES = new Set(['', 'jobworker.v1.JobService']);

/** The server's serving status, observable by Watch calls. */
export class HealthState {
  #serving = true;
  readonly #changes = new EventEmitter();

  /** Current status. */
  get status(): ServingStatus {
    return this.#serving ? ServingStatus.SERVING : ServingStatus.NOT_SERVING;
  }

  /** Marks the server NOT_SERVING (shutdown began) and tells every watcher. */
  setNotServing(): void {
    if (!this.#serving) return;
    this.#serving = false;
    this.#changes.emit('change', this.status);
  }

  /**
   * Each new status until `signal` aborts (then the iteration throws).
   * Subscribes at the call, not at the first `next()`: a change that happens
   * while the watcher still sends its first message is not missed.
   */
  changes(signal: AbortSignal): AsyncIterable<[ServingStatus]> {
    return on(this.#changes, 'change', { signal }) as AsyncIterable<[ServingStatus]>;
  }
}

/** The Health handler table over `state`. */
export function healthHandlers(state: HealthState): Handlers<typeof HealthService> {
  const check = (service: string): ServingStatus => {
    if (!KNOWN_SERVICES.has(service)) {
      throw new JobworkerError(ErrorCode.NotFound, `service ${JSON.stringify(service)} is unknown`);
    }
    return state.status;
  };
  return {
    check: {
      roles: ROLES,
      handle(request) {
        return Promise.resolve({ status: check(request.service) });
      },
    },
    watch: {
      roles: ROLES,
      async handle(request, ctx, send) {
        const known = KNOWN_SERVICES.has(request.service);
        const changes = state.changes(ctx.signal)[Symbol.asyncIterator]();
        try {
          await send({ status: known ? state.status : ServingStatus.SERVICE_UNKNOWN });
          // Runs until the client cancels or the server shuts down (both abort ctx.signal).
          for (;;) {
            const next = await changes.next();
            if (next.done === true) return;
            if (known) await send({ status: next.value[0] });
          }
        } finally {
          // Unsubscribes however the call ends (a failed send included).
          await changes.return?.();
        }
      },
    },
  };
}
