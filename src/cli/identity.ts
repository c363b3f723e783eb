/**
 * Where jobctl connects and as whom: flags, then JOBCTL_* environment
 * variables, then the development setup of `npm start` (localhost:50051 as
 * alice). The client certificate's validity is checked locally before
 * dialing, because a server refuses an expired certificate with nothing more
 * than a closed connection.
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { devPaths } from '../dev-paths.js';
import { ErrorCode, JobworkerError } from '../errors.js';
import type { ConnectionFlags } from './args.js';
import { ConfigError, UsageError } from './failures.js';

/** The default server: a hostname, so that the server's certificate name is verified without an IP SAN. */
export const defaultServer = 'localhost:50051';

/** The default identity: the first user of the development certificates. */
export const defaultUser = 'alice';

/** Resolved connection settings: the target and the paths of the PEM files. */
export interface Target {
  /** HOST:PORT as dialed. */
  readonly server: string;
  /** Name to verify the server's certificate against, when not the host of `server`. */
  readonly tlsServerName: string | undefined;
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile: string;
}

/**
 * Applies the environment and defaults to `flags`; validates the server
 * address and user name. `context`, the settings of a context of the
 * contexts file (contexts.ts), comes before the environment when it was
 * chosen by name (`--context`, JOBCTL_CONTEXT) and after it when it is only
 * the file's current context, as docker's DOCKER_HOST beats its current
 * context but not an explicit `--context`.
 */
export function resolveTarget(
  flags: ConnectionFlags,
  env: NodeJS.ProcessEnv,
  context?: { readonly settings: ConnectionFlags; readonly explicit: boolean },
): Target {
  const fromEnv: ConnectionFlags = {
    server: nonEmpty(env['JOBCTL_SERVER']),
    tlsServerName: nonEmpty(env['JOBCTL_TLS_SERVER_NAME']),
    certs: nonEmpty(env['JOBCTL_CERTS']),
    user: nonEmpty(env['JOBCTL_USER']),
    cert: nonEmpty(env['JOBCTL_CERT']),
    key: nonEmpty(env['JOBCTL_KEY']),
    ca: nonEmpty(env['JOBCTL_CA']),
  };
  const layers =
    context === undefined
      ? [flags, fromEnv]
      : context.explicit
        ? [flags, context.settings, fromEnv]
        : [flags, fromEnv, context.settings];
  const chosen = firstOfEach(layers);
  const server = chosen.server ?? defaultServer;
  const serverIssue = serverProblem(server);
  if (serverIssue !== null)
    throw new UsageError(`--server ${JSON.stringify(server)} ${serverIssue}`);
  const dir = chosen.certs ?? devPaths(env).certs;
  const user = chosen.user ?? defaultUser;
  const userIssue = userProblem(user);
  if (userIssue !== null) throw new UsageError(`--user ${JSON.stringify(user)} ${userIssue}`);
  return {
    server,
    tlsServerName: chosen.tlsServerName,
    certFile: chosen.cert ?? join(dir, `${user}.crt`),
    keyFile: chosen.key ?? join(dir, `${user}.key`),
    caFile: chosen.ca ?? join(dir, 'ca.crt'),
  };
}

/**
 * Each setting from the first layer that has it, except that a layer naming
 * a certificate directory or user hides the single files of the layers
 * after it: `--certs DIR` on the command line wins over a JOBCTL_CERT left
 * in the environment (or a context's `cert`).
 */
function firstOfEach(layers: readonly ConnectionFlags[]): ConnectionFlags {
  let server, tlsServerName, certs, user, cert, key, ca;
  let filesHidden = false;
  for (const layer of layers) {
    server ??= layer.server;
    tlsServerName ??= layer.tlsServerName;
    certs ??= layer.certs;
    user ??= layer.user;
    if (!filesHidden) {
      cert ??= layer.cert;
      key ??= layer.key;
      ca ??= layer.ca;
    }
    if (layer.certs !== undefined || layer.user !== undefined) filesHidden = true;
  }
  return { server, tlsServerName, certs, user, cert, key, ca };
}

/** Why `user` is not a user name jobctl takes, or null. */
export function userProblem(user: string): string | null {
  // A file name in --certs: no '/', and no leading '.' (so never '..'); the
  // server's own rule (api/authz.ts USER_NAME) is stricter and may start with '_'.
  return /^[A-Za-z0-9_][A-Za-z0-9._-]*$/.test(user)
    ? null
    : "is not a user name (letters, digits, '.', '_', '-')";
}

/** The PEM contents of a {@link Target}'s files. */
export interface Credentials {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly ca: Buffer;
}

/**
 * Reads the three PEM files and checks that the client certificate is
 * currently valid. A missing or unreadable file is a {@link ConfigError}
 * naming it; an expired certificate is `unauthenticated`.
 */
export async function loadCredentials(target: Target, now = new Date()): Promise<Credentials> {
  // All three are read at once; a failure is reported for the first in this
  // order, so that the message does not depend on which read lost the race.
  const [cert, key, ca] = (
    await Promise.allSettled([
      readPem(target.certFile, 'certificate'),
      readPem(target.keyFile, 'private key'),
      readPem(target.caFile, 'CA certificate'),
    ])
  ).map((result) => {
    if (result.status === 'rejected') throw result.reason;
    return result.value;
  }) as [Buffer, Buffer, Buffer];
  checkValidity(target.certFile, cert, now);
  return { cert, key, ca };
}

/** Throws unless the PEM certificate in `pem` is valid at `now`. */
export function checkValidity(file: string, pem: Buffer, now: Date): void {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(pem);
  } catch (err) {
    throw new ConfigError(
      `${file} is not a PEM certificate; pass the client certificate with --cert`,
      {
        cause: err,
      },
    );
  }
  const notAfter = new Date(x509.validTo);
  const notBefore = new Date(x509.validFrom);
  if (notAfter.getTime() < now.getTime()) {
    throw new JobworkerError(
      ErrorCode.Unauthenticated,
      `certificate ${file} expired on ${notAfter.toISOString()}; get a new one from the server's administrator`,
    );
  }
  if (notBefore.getTime() > now.getTime()) {
    throw new JobworkerError(
      ErrorCode.Unauthenticated,
      `certificate ${file} is not valid before ${notBefore.toISOString()}; check this machine's clock`,
    );
  }
}

async function readPem(file: string, what: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const problem =
      code === 'ENOENT'
        ? 'does not exist'
        : code === 'EACCES'
          ? 'is not readable'
          : `cannot be read (${code ?? 'error'})`;
    throw new ConfigError(
      `${what} ${file} ${problem}; pass --certs DIR --user NAME or --cert/--key/--ca, or run 'npm start' for the development certificates`,
      { cause: err },
    );
  }
}

/** Why `server` is not HOST:PORT or [IPv6]:PORT, or null. */
export function serverProblem(server: string): string | null {
  const match = /^(\[[0-9a-fA-F:.]+\]|[^\s:[\]/]+):(\d{1,5})$/.exec(server);
  const port = Number(match?.[2]);
  return match === null || port < 1 || port > 65_535
    ? 'is not HOST:PORT (e.g. localhost:50051)'
    : null;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
