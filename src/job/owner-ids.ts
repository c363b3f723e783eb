/**
 * One uid (and gid = uid) per owner, so that tenants' jobs share no file
 * permissions, RLIMIT_NPROC count, inotify budget or `_uid.N` keyring. Taken
 * from a reserved range, allocated on an owner's first job and kept in
 * `<stateDir>/owners.json` (replaced atomically, as store.ts does for job
 * records), so an owner keeps its uid across restarts.
 *
 * The range sits in the gap systemd leaves unused between systemd-homed
 * (60001-60513) and DynamicUser (61184-65519) in its UIDS-GIDS.md, so that
 * neither allocator hands out one of ours; it excludes 65534 (nobody). At
 * open the host's passwd and group files are checked for entries inside it.
 * TODO(nss): only the files are read; users from LDAP, sssd or systemd's
 * own NSS modules are not checked.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, JobworkerError } from '../errors.js';
import { NOBODY } from '../isolation/index.js';
import { replaceFile, storageError } from './store.js';

/** The uids (inclusive) given to owners; their size bounds the number of owners. */
export interface UidRange {
  readonly first: number;
  readonly last: number;
}

/** The default range, between systemd-homed's and DynamicUser's (see above). */
export const OWNER_UID_RANGE: UidRange = { first: 60514, last: 61183 };

/** Name of the owner table in the state directory. */
export const OWNERS_FILE = 'owners.json';

/** Options of {@link openOwnerIds}; the files are an I/O seam for tests. */
export interface OwnerIdsOptions {
  readonly stateDir: string;
  readonly range?: UidRange;
  /** Default /etc/passwd. */
  readonly passwdPath?: string;
  /** Default /etc/group. */
  readonly groupPath?: string;
}

function inside(id: number, range: UidRange): boolean {
  return id >= range.first && id <= range.last;
}

/** Rejects (internal) with the first passwd or group entry whose id is inside `range`. */
async function checkHostIds(path: string, idFields: readonly number[], range: UidRange) {
  const text = await readFile(path, 'utf8').catch((err: unknown) => {
    throw new JobworkerError(ErrorCode.Internal, `cannot read ${path}: ${String(err)}`, {
      cause: err,
    });
  });
  for (const line of text.split('\n')) {
    const fields = line.split(':');
    for (const i of idFields) {
      const id = Number(fields[i]);
      if (fields[i] !== '' && inside(id, range)) {
        throw new JobworkerError(
          ErrorCode.Internal,
          `${path}: entry "${fields[0] ?? ''}" has id ${id}, inside the owners' uid range ${range.first}-${range.last}`,
        );
      }
    }
  }
}

/** The table read from owners.json, checked: every uid in the range and used once. */
function parseTable(text: string, path: string, range: UidRange): Map<string, number> {
  const fail = (why: string) =>
    new JobworkerError(ErrorCode.Internal, `${path} is damaged: ${why}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw fail(err instanceof Error ? err.message : String(err));
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw fail('not an object');
  const table = new Map<string, number>();
  const used = new Set<number>();
  for (const [owner, uid] of Object.entries(parsed)) {
    if (typeof uid !== 'number' || !Number.isSafeInteger(uid) || !inside(uid, range))
      throw fail(`owner ${JSON.stringify(owner)} has uid ${String(uid)}, outside the range`);
    if (used.has(uid)) throw fail(`uid ${uid} is given twice`);
    used.add(uid);
    table.set(owner, uid);
  }
  return table;
}

/** The allocation table of owners' uids. */
export class OwnerIds {
  readonly #dir: string;
  readonly #range: UidRange;
  readonly #table: Map<string, number>;
  /** Allocations run one at a time: each writes the whole table. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(dir: string, range: UidRange, table: Map<string, number>) {
    this.#dir = dir;
    this.#range = range;
    this.#table = table;
  }

  /** The uid of `owner`, allocated and persisted on its first call; resource_exhausted when the range is used up. */
  uidOf(owner: string): Promise<number> {
    const known = this.#table.get(owner);
    if (known !== undefined) return Promise.resolve(known);
    const allocated = this.#queue.then(() => this.#allocate(owner));
    this.#queue = allocated.catch(() => undefined);
    return allocated;
  }

  async #allocate(owner: string): Promise<number> {
    const known = this.#table.get(owner);
    if (known !== undefined) return known;
    const used = new Set(this.#table.values());
    let uid = this.#range.first;
    while (used.has(uid)) uid++;
    if (uid > this.#range.last) {
      throw new JobworkerError(
        ErrorCode.ResourceExhausted,
        `owner ${JSON.stringify(owner)}: no uid left for a new owner (${used.size} owners hold them all)`,
      );
    }
    const next = new Map(this.#table).set(owner, uid);
    await this.#write(next);
    this.#table.set(owner, uid);
    return uid;
  }

  async #write(table: Map<string, number>): Promise<void> {
    const text = `${JSON.stringify(Object.fromEntries(table))}\n`;
    await replaceFile(this.#dir, OWNERS_FILE, text).catch((err: unknown) => {
      throw storageError(err, 'cannot write the owner table');
    });
  }
}

/**
 * Reads the owner table of a state directory (missing: empty) after checking
 * that no passwd or group entry of the host has an id inside the range;
 * rejects (internal) naming the colliding entry or the damage.
 */
export async function openOwnerIds(options: OwnerIdsOptions): Promise<OwnerIds> {
  const range = options.range ?? OWNER_UID_RANGE;
  if (range.first > range.last || inside(NOBODY, range)) {
    throw new JobworkerError(
      ErrorCode.InvalidArgument,
      `range: ${range.first}-${range.last} is empty or includes 65534 (nobody)`,
    );
  }
  // passwd: name:password:uid:gid:...; group: name:password:gid:members.
  await checkHostIds(options.passwdPath ?? '/etc/passwd', [2, 3], range);
  await checkHostIds(options.groupPath ?? '/etc/group', [2], range);
  const path = join(options.stateDir, OWNERS_FILE);
  const text = await readFile(path, 'utf8').catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw storageError(err, `cannot read ${path}`);
  });
  return new OwnerIds(
    options.stateDir,
    range,
    text === null ? new Map<string, number>() : parseTable(text, path, range),
  );
}
