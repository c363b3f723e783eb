/**
 * Watchers of job state changes. The manager publishes each change once;
 * every watcher whose filter the job passes gets it in its own queue, bounded
 * by {@link WATCH_QUEUE_EVENTS}. A watcher that lets its queue fill (a slow
 * client behind gRPC flow control) loses the queued changes and gets a
 * `resync` event, then the jobs that match now: the server never holds more
 * than a queue per watcher, and the watcher still ends up knowing every
 * job's current state.
 */
import { matchesFilter } from './job-index.js';
import type { JobRecord } from './job.js';
import { Notifier } from './notifier.js';
import type {
  JobStatus,
  ListCursor,
  ListFilter,
  WatchChange,
  WatchEvent,
  WatchOptions,
} from './types.js';

/** Most changes queued for one watcher before it is resynced. */
export const WATCH_QUEUE_EVENTS = 256;
/** Jobs fetched at a time while sending the jobs that match. */
const SNAPSHOT_BATCH = 100;

interface Watcher {
  readonly filter: ListFilter;
  readonly queue: WatchEvent[];
  readonly notifier: Notifier;
  overflowed: boolean;
}

/** Publishes job state changes to watchers; see the module comment. */
export class WatchHub {
  readonly #watchers = new Set<Watcher>();
  readonly #list: (filter: ListFilter) => JobStatus[];

  /** `list` is the manager's listing, used for the jobs that match at a (re)sync. */
  constructor(list: (filter: ListFilter) => JobStatus[]) {
    this.#list = list;
  }

  /** Number of open watchers (tests, metrics). */
  get size(): number {
    return this.#watchers.size;
  }

  /** Queues `change` of the job with `record` (its status: `status()`) for each watcher it matches. */
  publish(change: WatchChange, record: JobRecord, status: () => JobStatus): void {
    let job: JobStatus | undefined;
    for (const watcher of this.#watchers) {
      if (!matchesFilter(record, watcher.filter)) continue;
      if (watcher.queue.length >= WATCH_QUEUE_EVENTS) {
        watcher.queue.length = 0;
        watcher.overflowed = true;
      } else if (!watcher.overflowed) {
        job ??= status();
        watcher.queue.push({ type: change, job });
      }
      watcher.notifier.notify();
    }
  }

  /** The events of one watch; it ends only by `options.signal` (rejecting with its coded reason) or by the consumer. */
  async *watch(options: WatchOptions): AsyncGenerator<WatchEvent> {
    const { signal } = options;
    signal.throwIfAborted();
    const watcher: Watcher = {
      filter: options.filter,
      queue: [],
      notifier: new Notifier(),
      overflowed: false,
    };
    this.#watchers.add(watcher);
    try {
      if (options.initial) yield* this.#matching(watcher.filter);
      for (;;) {
        if (watcher.overflowed) {
          watcher.overflowed = false;
          yield { type: 'resync' };
          yield* this.#matching(watcher.filter);
          continue;
        }
        const event = watcher.queue.shift();
        if (event !== undefined) yield event;
        else await watcher.notifier.wait(signal);
      }
    } finally {
      this.#watchers.delete(watcher);
    }
  }

  /** The jobs matching `filter` now, newest first, a batch at a time, then `synced`. */
  *#matching(filter: ListFilter): Generator<WatchEvent> {
    let after: ListCursor | undefined;
    for (;;) {
      const batch = this.#list({ ...filter, ...(after && { after }), limit: SNAPSHOT_BATCH });
      for (const job of batch) yield { type: 'existing', job };
      const last = batch.at(-1);
      if (batch.length < SNAPSHOT_BATCH || last === undefined) break;
      after = { startedAtMs: last.startedAt.getTime(), id: last.id };
    }
    yield { type: 'synced' };
  }
}
