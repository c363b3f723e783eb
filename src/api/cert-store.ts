/**
 * The files of `jobworkerd certs`. A certificate directory DIR holds
 * `ca.crt` and `NAME.crt`/`NAME.key` for the server and each user: what
 * `serve --certs DIR` and `jobctl --certs DIR --user NAME` read. The CA's
 * key is `ca.key` in the CA directory: DIR itself (the development layout),
 * or a directory of its own (`--ca-dir`), so that the host that serves never
 * holds the key that makes identities. Directories are made 0700, keys are
 * written 0600, certificates 0644; nothing is replaced without `force`, and a
 * replacement is a rename, so a reader sees the old file or the new one.
 */
import { randomBytes } from 'node:crypto';
import { access, mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, JobworkerError } from '../errors.js';
import type { Role } from './authz.js';
import { DEV_CLIENTS } from './dev-certs.js';
import {
  CA_VALIDITY_DAYS,
  createCa,
  issue,
  issuerFromPem,
  issueServer,
  type Issuer,
  type KeyAlgorithm,
  type PemPair,
  type ServerNames,
} from './certs.js';

const DAY_MS = 24 * 60 * 60 * 1000;

/** Where certificates go and where the CA's key is. */
export interface PkiDirs {
  /** Receives ca.crt and NAME.crt/NAME.key. */
  readonly dir: string;
  /** Holds ca.crt and ca.key (equal to `dir` in the development layout). */
  readonly caDir: string;
}

/** Options shared by every write. */
export interface WriteOptions extends PkiDirs {
  /** Replace existing files instead of refusing. */
  readonly force?: boolean;
}

/** `certs init`. */
export interface InitOptions extends WriteOptions {
  /** Validity of the CA. */
  readonly days: number;
  /** Only the CA: no development server and users. */
  readonly caOnly?: boolean;
  /** The CA's common name. */
  readonly caName?: string;
}

/** `certs issue server` / `certs issue user`: validity and key of the leaf. */
export interface LeafFileOptions extends WriteOptions {
  readonly days: number;
  readonly keyAlgorithm?: KeyAlgorithm;
}

/** Name of the development CA (its subject CN). */
export const DEV_CA_NAME = 'jobworker development CA';

function invalid(message: string): JobworkerError {
  return new JobworkerError(ErrorCode.InvalidArgument, message);
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** Writes `content` to a new file with `mode`; refuses (EEXIST) to replace an existing one. */
export async function writeNewFile(path: string, content: string, mode: number): Promise<void> {
  // 'wx' = O_CREAT|O_EXCL: never overwrite, and no window where a key is world-readable.
  const file = await open(path, 'wx', mode).catch((err: unknown) => {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'EEXIST' ? 'already exists; refusing to overwrite it (--force replaces it)' : code;
    throw new JobworkerError(ErrorCode.InvalidArgument, `${path} ${why ?? String(err)}`, {
      cause: err,
    });
  });
  try {
    await file.writeFile(content);
  } finally {
    await file.close();
  }
}

/** Writes `content` to `path` through a new temporary file renamed over it. */
async function replaceFile(path: string, content: string, mode: number): Promise<void> {
  const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeNewFile(temp, content, mode);
    await rename(temp, path);
  } finally {
    await rm(temp, { force: true });
  }
}

/** One file to write: path, content and mode. */
interface FileToWrite {
  readonly path: string;
  readonly content: string;
  readonly mode: number;
}

function pairFiles(dir: string, name: string, pair: PemPair): FileToWrite[] {
  return [
    { path: join(dir, `${name}.crt`), content: pair.cert, mode: 0o644 },
    { path: join(dir, `${name}.key`), content: pair.key, mode: 0o600 },
  ];
}

/** Paths written by a command, refused as a whole if any exists (unless forced). */
async function checkFree(paths: readonly string[], force: boolean): Promise<void> {
  if (force) return;
  // Checked before anything is written, so a refusal leaves the directories as they were.
  for (const path of paths) {
    if (await exists(path)) {
      throw invalid(`${path} already exists; refusing to overwrite it (--force replaces it)`);
    }
  }
}

async function writeAll(files: readonly FileToWrite[], force: boolean): Promise<string[]> {
  for (const file of files) {
    await (force ? replaceFile : writeNewFile)(file.path, file.content, file.mode);
  }
  return files.map((f) => f.path);
}

async function makeDirs(dirs: PkiDirs): Promise<void> {
  await mkdir(dirs.dir, { recursive: true, mode: 0o700 });
  await mkdir(dirs.caDir, { recursive: true, mode: 0o700 });
}

/**
 * The CA of `caDir`, checked: its key is nobody else's to read (mode 0600 or
 * stricter) and it is valid now.
 */
export async function loadCa(dirs: PkiDirs, now = new Date()): Promise<Issuer> {
  const certPath = join(dirs.caDir, 'ca.crt');
  const keyPath = join(dirs.caDir, 'ca.key');
  const read = (path: string): Promise<string> =>
    readFile(path, 'utf8').catch((err: unknown) => {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      throw new JobworkerError(
        ErrorCode.InvalidArgument,
        `cannot read ${path}: ${code} (--ca-dir names the directory of ca.crt and ca.key; 'certs init' makes them)`,
        { cause: err },
      );
    });
  const pem = { cert: await read(certPath), key: await read(keyPath) };
  const mode = (await stat(keyPath)).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw invalid(
      `${keyPath} has mode ${mode.toString(8).padStart(4, '0')}: the CA key must be readable by its owner only (fix: chmod 600 ${keyPath})`,
    );
  }
  const ca = await issuerFromPem({ cert: certPath, key: keyPath }, pem);
  if (ca.notAfter <= now) {
    throw invalid(
      `the CA ${certPath} expired on ${ca.notAfter.toISOString()}; make a new one with 'certs init'`,
    );
  }
  return ca;
}

/** Makes sure `dir` has the CA's certificate (the same one: refuses another CA's). */
async function shareCaCert(dirs: PkiDirs, ca: Issuer): Promise<string[]> {
  const path = join(dirs.dir, 'ca.crt');
  const present = await readFile(path, 'utf8').catch(() => null);
  if (present === null) return writeAll([{ path, content: ca.cert, mode: 0o644 }], false);
  if (present !== ca.cert) {
    throw invalid(
      `${path} is not the CA certificate of ${join(dirs.caDir, 'ca.crt')}: certificates issued now would not be trusted by what reads ${dirs.dir}`,
    );
  }
  return [];
}

/** The end of a leaf valid for `days` from `now`; refused if it would outlive the CA. */
function leafNotAfter(ca: Issuer, caDir: string, days: number, now: Date): Date {
  const notAfter = new Date(now.getTime() + days * DAY_MS);
  if (notAfter > ca.notAfter) {
    throw invalid(
      `--days ${days} would end on ${notAfter.toISOString()}, after the CA ${join(caDir, 'ca.crt')} expires (${ca.notAfter.toISOString()})`,
    );
  }
  return notAfter;
}

/**
 * `certs init`: a new CA (ca.crt in both directories, ca.key in the CA
 * directory) and, unless `caOnly`, the development server (localhost,
 * 127.0.0.1, ::1) and users alice, bob (role user) and admin (role admin).
 * Returns the paths written.
 */
export async function initPki(options: InitOptions): Promise<string[]> {
  const force = options.force === true;
  await makeDirs(options);
  const ca = await createCa(options.caName ?? DEV_CA_NAME, options.days);
  const caFiles = [
    ...pairFiles(options.caDir, 'ca', ca),
    ...(options.caDir === options.dir
      ? []
      : [{ path: join(options.dir, 'ca.crt'), content: ca.cert, mode: 0o644 }]),
  ];
  const leaves: FileToWrite[] = [];
  if (options.caOnly !== true) {
    leaves.push(...pairFiles(options.dir, 'server', await issueServer(ca)));
    for (const client of DEV_CLIENTS) {
      const pair = await issue(ca, { commonName: client.name, role: client.role });
      leaves.push(...pairFiles(options.dir, client.name, pair));
    }
  }
  const files = [...caFiles, ...leaves];
  await checkFree(
    files.map((f) => f.path),
    force,
  );
  return writeAll(files, force);
}

/** The development set of `certs init` in `dir` (CA key included), with the default validity. */
export function initCertsDir(dir: string): Promise<string[]> {
  return initPki({ dir, caDir: dir, days: CA_VALIDITY_DAYS });
}

/** `certs issue server`: DIR/server.crt and server.key for these names (the development ones when absent). */
export async function issueServerFiles(
  names: Pick<ServerNames, 'dnsNames' | 'ipAddresses'>,
  options: LeafFileOptions,
  now = new Date(),
): Promise<string[]> {
  return issueLeafFiles('server', options, now, (ca, notAfter) =>
    issueServer(ca, {
      ...names,
      notAfter,
      ...(options.keyAlgorithm === undefined ? {} : { keyAlgorithm: options.keyAlgorithm }),
    }),
  );
}

/** `certs issue user`: DIR/NAME.crt and NAME.key, identity NAME with `role`. */
export async function issueUserFiles(
  name: string,
  role: Role,
  options: LeafFileOptions,
  now = new Date(),
): Promise<string[]> {
  return issueLeafFiles(name, options, now, (ca, notAfter) =>
    issue(ca, {
      commonName: name,
      role,
      notAfter,
      ...(options.keyAlgorithm === undefined ? {} : { keyAlgorithm: options.keyAlgorithm }),
    }),
  );
}

async function issueLeafFiles(
  name: string,
  options: LeafFileOptions,
  now: Date,
  make: (ca: Issuer, notAfter: Date) => Promise<PemPair>,
): Promise<string[]> {
  const force = options.force === true;
  const files = [join(options.dir, `${name}.crt`), join(options.dir, `${name}.key`)];
  // Refused before the CA is read or anything is made.
  await checkFree(files, force);
  const ca = await loadCa(options, now);
  const notAfter = leafNotAfter(ca, options.caDir, options.days, now);
  const pair = await make(ca, notAfter);
  await makeDirs(options);
  return [
    ...(await shareCaCert(options, ca)),
    ...(await writeAll(pairFiles(options.dir, name, pair), force)),
  ];
}
