/**
 * One uid (and gid = uid) per owner, so that tenants' jobs share no file
 * permissions, RLIMIT_NPROC count, inotify budget or `_uid.N` keyring. Taken
 * from a reserved range, allocated on an owner's first job and kept in
 * `<stateDir>/owners.json` (replaced atomically, as store.ts does for job
 * records), so an owner keeps its uid across restarts.
 *
 * Servers with different state directories on one host draw from the same
 * range, so each uid is also leased host-wide: `<registry>/leases.json`
 * maps uid to (state directory, owner), read and written only under an
 * flock on `<registry>/leases.lock`, with the state directory's own table
 * written inside the same lock. A lease is live while its state directory's
 * owners.json still gives that uid to that owner; one whose state directory
 * is gone (a test's, a decommissioned server's) is taken over.
 *
 * The range sits in the gap systemd leaves unused between systemd-homed
 * (60001-60513) and DynamicUser (61184-65519) in its UIDS-GIDS.md, so that
 * neither allocator hands out one of ours; it excludes 65534 (nobody). At
 * open the host's passwd and group files are checked for entries inside it.
 * TODO(nss): only the files are read; users from LDAP, sssd or systemd's
 * own NSS modules are not checked.
 */
import { mkdir, readFile, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, JobworkerError } from '../errors.js';
import { clearUidKeys, DEFAULT_HELPER_PATH, lockFile, NOBODY } from '../isolation/index.js';
import { deadlineSignal } from '../signals.js';
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

/** The host-wide lease table's directory (root's, 0700) when none is given. */
export const DEFAULT_UID_REGISTRY = '/var/lib/jobworker-uids';
const LEASES_FILE = 'leases.json';
const LEASES_LOCK = 'leases.lock';
// Holders only read and write two small files: a longer hold is a hung server.
const LEASE_LOCK_WAIT_MS = 10_000;

/** Options of {@link openOwnerIds}; the files are an I/O seam for tests. */
export interface OwnerIdsOptions {
  readonly stateDir: string;
  readonly range?: UidRange;
  /** Default /etc/passwd. */
  readonly passwdPath?: string;
  /** Default /etc/group. */
  readonly groupPath?: string;
  /** Directory of the host-wide uid leases; default {@link DEFAULT_UID_REGISTRY}. */
  readonly registry?: string;
  /** The native helper that takes the registry's flock; default the package's. */
  readonly helperPath?: string;
  /**
   * Empties a uid's own kernel keyrings before it is given to a new owner;
   * default the helper's `--clear-keys` (a seam for tests whose range holds
   * uids of real users).
   */
  readonly clearKeys?: (uid: number) => Promise<void>;
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

function damaged(path: string, why: string): JobworkerError {
  return new JobworkerError(ErrorCode.Internal, `${path} is damaged: ${why}`);
}

/** The JSON object in `path`; null if the file does not exist. */
async function readObject(path: string): Promise<Record<string, unknown> | null> {
  const text = await readFile(path, 'utf8').catch((err: unknown) => {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw storageError(err, `cannot read ${path}`);
  });
  if (text === null) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw damaged(path, err instanceof Error ? err.message : String(err));
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw damaged(path, 'not an object');
  return parsed as Record<string, unknown>;
}

/** The table read from owners.json, checked: every uid in the range and used once. */
function parseTable(
  parsed: Record<string, unknown>,
  path: string,
  range: UidRange,
): Map<string, number> {
  const fail = (why: string) => damaged(path, why);
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

/** Who holds a uid host-wide. */
interface Lease {
  readonly stateDir: string;
  readonly owner: string;
}

/** The host-wide lease table: uid to holder. */
type Leases = Map<number, Lease>;

function parseLeases(parsed: Record<string, unknown>, path: string): Leases {
  const leases: Leases = new Map();
  for (const [key, value] of Object.entries(parsed)) {
    const lease = value as Partial<Lease> | null;
    if (
      !/^[1-9]\d*$/.test(key) ||
      typeof lease !== 'object' ||
      lease === null ||
      typeof lease.stateDir !== 'string' ||
      typeof lease.owner !== 'string'
    )
      throw damaged(
        path,
        `entry ${JSON.stringify(key)} is not a uid leased to a state directory and owner`,
      );
    leases.set(Number(key), { stateDir: lease.stateDir, owner: lease.owner });
  }
  return leases;
}

/** The host-wide lease table in `dir`, used only inside {@link withLeases}. */
class Registry {
  readonly #dir: string;
  readonly #helper: string;

  constructor(dir: string, helper: string) {
    this.#dir = dir;
    this.#helper = helper;
  }

  /**
   * Runs `fn` on the current leases under the registry's flock, and writes
   * them back if `fn` returns true; what `fn` writes elsewhere is inside the lock too.
   */
  async withLeases(fn: (leases: Leases) => Promise<boolean>): Promise<void> {
    await mkdir(this.#dir, { recursive: true, mode: 0o700 }).catch((err: unknown) => {
      throw storageError(err, 'cannot create the uid lease directory');
    });
    const deadline = deadlineSignal(LEASE_LOCK_WAIT_MS, 'waiting for the uid lease lock');
    const lock = await lockFile(join(this.#dir, LEASES_LOCK), this.#helper, {
      wait: true,
      signal: deadline.signal,
    }).finally(deadline.dispose);
    if ('held' in lock) throw new Error('a waiting lock is never refused');
    try {
      const path = join(this.#dir, LEASES_FILE);
      const parsed = await readObject(path);
      const leases = parsed === null ? new Map<number, Lease>() : parseLeases(parsed, path);
      if (await fn(leases)) {
        const text = `${JSON.stringify(Object.fromEntries(leases))}\n`;
        await replaceFile(this.#dir, LEASES_FILE, text).catch((err: unknown) => {
          throw storageError(err, 'cannot write the uid leases');
        });
      }
    } finally {
      await lock.release();
    }
  }
}

/**
 * Whether `lease` is still held: its state directory's owner table gives
 * `uid` to its owner. A table that cannot be read or is damaged counts as
 * held: a uid is never taken from a server that may still use it.
 */
async function isLive(lease: Lease, uid: number): Promise<boolean> {
  try {
    const table = await readObject(join(lease.stateDir, OWNERS_FILE));
    return table !== null && table[lease.owner] === uid;
  } catch {
    return true;
  }
}

/** The allocation table of owners' uids. */
export class OwnerIds {
  readonly #dir: string;
  /** The state directory's real path, as leases name it. */
  readonly #realDir: string;
  readonly #range: UidRange;
  readonly #table: Map<string, number>;
  readonly #registry: Registry;
  readonly #clearKeys: (uid: number) => Promise<void>;
  /** Allocations run one at a time: each writes the whole table. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(
    dirs: { readonly dir: string; readonly realDir: string },
    range: UidRange,
    table: Map<string, number>,
    registry: Registry,
    clearKeys: (uid: number) => Promise<void>,
  ) {
    this.#dir = dirs.dir;
    this.#realDir = dirs.realDir;
    this.#range = range;
    this.#table = table;
    this.#registry = registry;
    this.#clearKeys = clearKeys;
  }

  /** The uid of `owner`, allocated and persisted on its first call; resource_exhausted when the range is used up. */
  uidOf(owner: string): Promise<number> {
    const known = this.#table.get(owner);
    if (known !== undefined) return Promise.resolve(known);
    const allocated = this.#queue.then(() => this.#allocate(owner));
    this.#queue = allocated.catch(() => undefined);
    return allocated;
  }

  /**
   * Leases this table's uids host-wide (a table written before leases
   * existed, or after a registry was lost); rejects (internal) naming the
   * other holder of a uid that is live elsewhere.
   */
  async claim(): Promise<void> {
    await this.#registry.withLeases(async (leases) => {
      let changed = false;
      for (const [owner, uid] of this.#table) {
        const lease = leases.get(uid);
        if (lease?.stateDir === this.#realDir && lease.owner === owner) continue;
        if (lease !== undefined && lease.stateDir !== this.#realDir && (await isLive(lease, uid))) {
          throw new JobworkerError(
            ErrorCode.Internal,
            `uid ${uid} of owner ${JSON.stringify(owner)} in ${this.#realDir} is also given to owner ${JSON.stringify(lease.owner)} of ${lease.stateDir}: remove the owner from one ${OWNERS_FILE} (its files keep the uid)`,
          );
        }
        leases.set(uid, { stateDir: this.#realDir, owner });
        changed = true;
      }
      return changed;
    });
  }

  async #allocate(owner: string): Promise<number> {
    const known = this.#table.get(owner);
    if (known !== undefined) return known;
    let uid = 0;
    await this.#registry.withLeases(async (leases) => {
      uid = await this.#free(leases, owner);
      // A uid's user keyrings outlive its processes: the previous owner's keys must not reach this one.
      await this.#clearKeys(uid);
      leases.set(uid, { stateDir: this.#realDir, owner });
      // Inside the lock, so that no other server sees the lease without the table entry (stale).
      await this.#write(new Map(this.#table).set(owner, uid));
      return true;
    });
    this.#table.set(owner, uid);
    return uid;
  }

  /** The lowest uid of the range neither in this table nor live elsewhere. */
  async #free(leases: Leases, owner: string): Promise<number> {
    const used = new Set(this.#table.values());
    let heldElsewhere = 0;
    for (let uid = this.#range.first; uid <= this.#range.last; uid++) {
      if (used.has(uid)) continue;
      const lease = leases.get(uid);
      if (lease === undefined || lease.stateDir === this.#realDir) return uid;
      if (!(await isLive(lease, uid))) return uid;
      heldElsewhere++;
    }
    throw new JobworkerError(
      ErrorCode.ResourceExhausted,
      `owner ${JSON.stringify(owner)}: no uid left for a new owner (${used.size} owners here and ${heldElsewhere} of other servers on this host hold them all)`,
    );
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
 * that no passwd or group entry of the host has an id inside the range, and
 * leases its uids host-wide; rejects (internal) naming the colliding entry,
 * the damage or the other server holding one of its uids.
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
  const parsed = await readObject(path);
  const realDir = await realpath(options.stateDir).catch((err: unknown) => {
    throw storageError(err, `cannot resolve ${options.stateDir}`);
  });
  const helper = options.helperPath ?? DEFAULT_HELPER_PATH;
  const ids = new OwnerIds(
    { dir: options.stateDir, realDir },
    range,
    parsed === null ? new Map<string, number>() : parseTable(parsed, path, range),
    new Registry(options.registry ?? DEFAULT_UID_REGISTRY, helper),
    options.clearKeys ?? ((uid) => clearUidKeys(uid, helper)),
  );
  await ids.claim();
  return ids;
}
