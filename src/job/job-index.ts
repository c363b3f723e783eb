/**
 * The manager's jobs, kept in listing order so that a page of a listing
 * costs its own length, not a sort of every job held: one array of all jobs
 * and one per owner, oldest first by start time then id (a new job is
 * almost always the newest: it is appended), walked backwards from a
 * cursor found by binary search. Jobs not yet finished are few (bounded by
 * the running-job limit) and also kept in a set, so that a listing of
 * running or stopping jobs does not walk the finished ones. Name and label
 * filters are tested on each job walked: a selective filter costs a walk of
 * the owner's (or every) job, which docs/benchmarks.md measures.
 */
import type { JobRecord } from './job.js';
import { matchesSelector } from './labels.js';
import type { ListCursor, ListFilter } from './types.js';

/** What the index needs of a job. */
export interface IndexedJob {
  readonly record: JobRecord;
  /** Resolves once the job is finished. */
  readonly done: Promise<void>;
}

/** Negative when `a` started before `b` (ties: the smaller id first). */
function compare(a: ListCursor, b: ListCursor): number {
  if (a.startedAtMs !== b.startedAtMs) return a.startedAtMs - b.startedAtMs;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

const keyOf = (job: IndexedJob): ListCursor => job.record;

/** The first index of `list` whose job is not before `key`. */
function lowerBound(list: readonly IndexedJob[], key: ListCursor): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compare(keyOf(list[mid] as IndexedJob), key) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function insert<J extends IndexedJob>(list: J[], job: J): void {
  const last = list.at(-1);
  if (last === undefined || compare(keyOf(last), keyOf(job)) < 0) list.push(job);
  else list.splice(lowerBound(list, keyOf(job)), 0, job);
}

function remove<J extends IndexedJob>(list: J[], job: J): void {
  const at = lowerBound(list, keyOf(job));
  if (list[at] === job) list.splice(at, 1);
}

/** Whether `record` passes `filter`'s owner, state, name and labels (not its cursor or limit). */
export function matchesFilter(record: JobRecord, filter: ListFilter): boolean {
  return (
    (filter.owner === undefined || record.owner === filter.owner) &&
    (filter.state === undefined || record.state === filter.state) &&
    (filter.name === undefined || record.name === filter.name) &&
    (filter.selector === undefined || matchesSelector(record.labels, filter.selector))
  );
}

/** Jobs by id and in listing order. */
export class JobIndex<J extends IndexedJob> {
  readonly #byId = new Map<string, J>();
  readonly #all: J[] = [];
  readonly #byOwner = new Map<string, J[]>();
  readonly #unfinished = new Set<J>();

  /** Number of jobs held. */
  get size(): number {
    return this.#byId.size;
  }

  /** The job with this id. */
  get(id: string): J | undefined {
    return this.#byId.get(id);
  }

  /** Every job, oldest first. */
  values(): IterableIterator<J> {
    return this.#all.values();
  }

  /** Adds `job` (its id must be new). */
  add(job: J): void {
    this.#byId.set(job.record.id, job);
    insert(this.#all, job);
    let own = this.#byOwner.get(job.record.owner);
    if (own === undefined) this.#byOwner.set(job.record.owner, (own = []));
    insert(own, job);
    if (job.record.state !== 'finished') {
      this.#unfinished.add(job);
      void job.done.then(() => this.#unfinished.delete(job));
    }
  }

  /** Removes the job with this id; whether there was one. */
  delete(id: string): boolean {
    const job = this.#byId.get(id);
    if (job === undefined) return false;
    this.#byId.delete(id);
    this.#unfinished.delete(job);
    remove(this.#all, job);
    const own = this.#byOwner.get(job.record.owner);
    if (own !== undefined) {
      remove(own, job);
      if (own.length === 0) this.#byOwner.delete(job.record.owner);
    }
    return true;
  }

  /** The jobs matching `filter`, newest first: after its cursor, at most its limit. */
  list(filter: ListFilter = {}): J[] {
    const limit = filter.limit ?? Infinity;
    const out: J[] = [];
    if (limit <= 0) return out;
    const matches = (job: J): boolean =>
      matchesFilter(job.record, filter) &&
      (filter.after === undefined || compare(keyOf(job), filter.after) < 0);
    if (filter.state === 'running' || filter.state === 'stopping') {
      return [...this.#unfinished]
        .filter(matches)
        .sort((a, b) => compare(keyOf(b), keyOf(a)))
        .slice(0, limit);
    }
    const list = this.#listOf(filter);
    let at = filter.after === undefined ? list.length : lowerBound(list, filter.after);
    while (--at >= 0 && out.length < limit) {
      const job = list[at] as J;
      if (matches(job)) out.push(job);
    }
    return out;
  }

  /** How many jobs match `filter` (cursor and limit ignored). */
  count(filter: ListFilter = {}): number {
    const source =
      filter.state === 'running' || filter.state === 'stopping'
        ? this.#unfinished
        : this.#listOf(filter);
    let n = 0;
    for (const job of source) if (matchesFilter(job.record, filter)) n++;
    return n;
  }

  /** `owner`'s newest job named `name`. */
  newestNamed(owner: string, name: string): J | undefined {
    return this.#byOwner.get(owner)?.findLast((job) => job.record.name === name);
  }

  #listOf(filter: ListFilter): readonly J[] {
    return filter.owner === undefined ? this.#all : (this.#byOwner.get(filter.owner) ?? []);
  }
}
