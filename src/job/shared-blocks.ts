/**
 * Recent blocks of one live job's output log, read once for all of its
 * followers. Followers of a live job read aligned blocks of the log
 * (READ_BUFFER_BYTES each, the last one cut at the committed length); those
 * at about the same place, typically all of them caught up at the tail and
 * woken by the same commit, ask for the same block, and one read serves
 * them all instead of one read, one buffer and one copy each. A block below
 * the committed length never changes (the log is append-only), and a
 * follower never writes into what it read, so sharing the Buffer is safe.
 *
 * Bounded: at most KEEP blocks are kept, and none once fewer than two
 * followers are left (see {@link SharedBlocks.clear}).
 */

/** How many recent blocks are kept: followers a few blocks apart still share. */
const KEEP = 4;

export class SharedBlocks {
  readonly #recent = new Map<string, Promise<Buffer>>();

  /**
   * The bytes [start, end) of the log: shared if another follower read
   * them recently or is reading them now, else `load()`ed and kept. A
   * failed load is forgotten, and every follower waiting on it gets the
   * rejection (the reader then reads on its own).
   */
  read(start: number, end: number, load: () => Promise<Buffer>): Promise<Buffer> {
    const key = `${String(start)}:${String(end)}`;
    const known = this.#recent.get(key);
    if (known !== undefined) return known;
    const loading = load();
    this.#recent.set(key, loading);
    if (this.#recent.size > KEEP) {
      const oldest = this.#recent.keys().next();
      if (oldest.done !== true) this.#recent.delete(oldest.value);
    }
    loading.catch(() => {
      if (this.#recent.get(key) === loading) this.#recent.delete(key);
    });
    return loading;
  }

  /** Drops every kept block (nobody left to share them with). */
  clear(): void {
    this.#recent.clear();
  }
}
