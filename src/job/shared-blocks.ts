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
 * The chunks cut from a shared block are shared too: the bytes of one
 * stream from one offset on are the same for every follower, so followers
 * that cut the same chunk get the same Buffer, joined once, and the API
 * layer encodes it once for all of them (src/api/encode.ts).
 *
 * Bounded: at most KEEP blocks are kept, and none once fewer than two
 * followers are left (see {@link SharedBlocks.clear}); a block's chunks are
 * kept with it and go with it, at most CHUNK_BYTES_PER_BLOCK times its
 * bytes of them.
 */

/** How many recent blocks are kept: followers a few blocks apart still share. */
const KEEP = 4;

/**
 * Most bytes of chunks kept per block, as a multiple of the block's:
 * enough for the chunks of followers that start at a few places in it.
 * Views of the block count too, so that the encodings kept beside the
 * chunks (about as large) are bounded with them. Beyond, each follower
 * cuts its own.
 */
const CHUNK_BYTES_PER_BLOCK = 3;

/**
 * What a kept chunk is charged beyond its bytes: its key, its entries and
 * the small objects of its encoding (about 800 bytes were measured for a
 * 1-byte chunk), so that a block of tiny records keeps a bounded number.
 */
const CHUNK_OVERHEAD_BYTES = 1024;

interface Block {
  readonly loading: Promise<Buffer>;
  /** The Buffer `loading` resolved to, once it has. */
  buffer: Buffer | null;
  /** The chunks cut from it, by `stream:offset:bytes`; created on the first. */
  chunks: Map<string, Buffer> | null;
  chunkBytes: number;
}

export class SharedBlocks {
  readonly #recent = new Map<string, Block>();

  /**
   * The bytes [start, end) of the log: shared if another follower read
   * them recently or is reading them now, else `load()`ed and kept. A
   * failed load is forgotten, and every follower waiting on it gets the
   * rejection (the reader then reads on its own).
   */
  read(start: number, end: number, load: () => Promise<Buffer>): Promise<Buffer> {
    const key = `${String(start)}:${String(end)}`;
    const known = this.#recent.get(key);
    if (known !== undefined) return known.loading;
    const loading = load();
    const block: Block = { loading, buffer: null, chunks: null, chunkBytes: 0 };
    this.#recent.set(key, block);
    if (this.#recent.size > KEEP) {
      const oldest = this.#recent.keys().next();
      if (oldest.done !== true) this.#recent.delete(oldest.value);
    }
    loading.then(
      (buffer) => {
        block.buffer = buffer;
      },
      () => {
        if (this.#recent.get(key) === block) this.#recent.delete(key);
      },
    );
    return loading;
  }

  /**
   * The chunk of `stream` bytes [offset, offset + bytes) that `join()` cuts
   * from `buffer`, the block read() gave for [start, start + its length): the one another
   * follower already cut if that block is still kept, else `join()`'s, kept
   * with the block while there is room. Its bytes are never written again.
   */
  chunk(
    buffer: Buffer,
    start: number,
    stream: string,
    offset: number,
    bytes: number,
    join: () => Buffer,
  ): Buffer {
    const block = this.#recent.get(`${String(start)}:${String(start + buffer.length)}`);
    // A block read again after it was dropped is another Buffer: chunks
    // (views of one) are kept only with the Buffer they were cut from.
    if (block?.buffer !== buffer) return join();
    const key = `${stream}:${String(offset)}:${String(bytes)}`;
    const known = block.chunks?.get(key);
    if (known !== undefined) return known;
    const data = join();
    const cost = data.length + CHUNK_OVERHEAD_BYTES;
    if (block.chunkBytes + cost <= CHUNK_BYTES_PER_BLOCK * buffer.length) {
      (block.chunks ??= new Map()).set(key, data);
      block.chunkBytes += cost;
    }
    return data;
  }

  /** Drops every kept block (nobody left to share them with). */
  clear(): void {
    this.#recent.clear();
  }
}
