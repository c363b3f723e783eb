/**
 * `jobworkerd certs init|issue|show`: the command line of the PKI commands.
 * Every flag value is validated here, with the rules the server applies
 * (user names and roles: authz.ts), before anything is read or written;
 * cert-store.ts does the writing (loaded only for init and issue: heavy).
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import type { PeerCertificate } from 'node:tls';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { devPaths } from '../dev-paths.js';
import { principalOf, ROLES, USER_NAME, type Role } from './authz.js';
import { Eku } from './eku.js';
import { clientCertificateProblem } from './tls.js';

/** Longest validity `--days` takes, for the CA and for leaves (ten years). */
export const MAX_DAYS = 3650;

/** The usage of `jobworkerd certs`. */
export const CERTS_USAGE = `  jobworkerd certs init [--dir DIR] [--ca-dir DIR] [--ca-only] [--days N] [--force]
      A new CA, ECDSA P-256, valid --days N (90): ca.crt in DIR and in --ca-dir,
      its key ca.key in --ca-dir only (default: DIR). Unless --ca-only, also the
      development server (localhost, 127.0.0.1, ::1) and users alice, bob
      (role user) and admin (role admin).
  jobworkerd certs issue server (--name HOST | --ip ADDR)... [--dir DIR] [--ca-dir DIR]
                                [--days N] [--key-type p256|ed25519] [--force]
      DIR/server.crt and server.key for these names (serverAuth), from the CA in --ca-dir.
  jobworkerd certs issue user NAME --role user|admin [--dir DIR] [--ca-dir DIR]
                              [--days N] [--key-type p256|ed25519] [--force]
      DIR/NAME.crt and NAME.key (CN=NAME, OU=role, clientAuth); use them with
      jobctl --certs DIR --user NAME. DIR gets the CA's ca.crt when it has none.
  jobworkerd certs show FILE...
      Subject, identity and role, names, validity, key and SHA-256 fingerprint.
  DIR defaults to the development certificates (${devPaths().certs}).
  Leaves are valid --days N (30), never past the CA's end. Keys are written
  0600, directories made 0700; existing files are replaced only with --force.
`;

/** A bad command line: jobworkerd prints it with the usage and exits 64. */
export class CertsUsageError extends Error {
  override readonly name = 'CertsUsageError';
}

const DNS_LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
/** A host name (RFC 1123 labels, 253 characters at most); no wildcards. */
const DNS_NAME = new RegExp(`^(?=.{1,253}$)${DNS_LABEL}(?:\\.${DNS_LABEL})*$`, 'i');

const common = {
  dir: { type: 'string' },
  'ca-dir': { type: 'string' },
  days: { type: 'string' },
  force: { type: 'boolean', default: false },
} as const;
const leaf = { ...common, 'key-type': { type: 'string' } } as const;

function parse(
  what: string,
  args: string[],
  options: NonNullable<ParseArgsConfig['options']>,
): { values: Record<string, unknown>; positionals: string[] } {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: true });
  } catch (err) {
    throw new CertsUsageError(`certs ${what}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function stringFlag(values: Record<string, unknown>, name: string): string | undefined {
  const value = values[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '')
    throw new CertsUsageError(`--${name} must not be empty`);
  return value;
}

function days(values: Record<string, unknown>, fallback: number): number {
  const raw = stringFlag(values, 'days');
  if (raw === undefined) return fallback;
  const n = /^[1-9][0-9]{0,4}$/.test(raw) ? Number(raw) : NaN;
  if (!(n <= MAX_DAYS)) {
    throw new CertsUsageError(
      `--days ${JSON.stringify(raw)} is not a whole number of days from 1 to ${MAX_DAYS}`,
    );
  }
  return n;
}

function keyType(values: Record<string, unknown>): { keyAlgorithm?: 'p256' | 'ed25519' } {
  const raw = stringFlag(values, 'key-type');
  if (raw === undefined) return {};
  if (raw !== 'p256' && raw !== 'ed25519')
    throw new CertsUsageError(`--key-type ${JSON.stringify(raw)} is not p256 or ed25519`);
  return { keyAlgorithm: raw };
}

function dirs(values: Record<string, unknown>): { dir: string; caDir: string; force: boolean } {
  const dir = stringFlag(values, 'dir') ?? devPaths().certs;
  return { dir, caDir: stringFlag(values, 'ca-dir') ?? dir, force: values['force'] === true };
}

function noPositionals(what: string, positionals: string[]): void {
  if (positionals.length > 0)
    throw new CertsUsageError(
      `certs ${what}: unexpected argument ${JSON.stringify(positionals[0])}`,
    );
}

/** Checks a `--name` value: a host name, not an address. */
export function checkDnsName(name: string): void {
  if (isIP(name) !== 0)
    throw new CertsUsageError(`--name ${JSON.stringify(name)} is an address; pass it with --ip`);
  if (!DNS_NAME.test(name)) {
    throw new CertsUsageError(
      `--name ${JSON.stringify(name)} is not a host name (dot-separated labels of letters, digits and '-', at most 253 characters)`,
    );
  }
}

/** Checks an `--ip` value: an IPv4 or IPv6 address without a zone. */
export function checkIp(ip: string): void {
  if (isIP(ip) === 0 || ip.includes('%'))
    throw new CertsUsageError(`--ip ${JSON.stringify(ip)} is not an IPv4 or IPv6 address`);
}

/** Checks a user name and role against the server's rules. */
export function checkUser(name: string | undefined, role: string | undefined): Role {
  if (name === undefined) throw new CertsUsageError('certs issue user: missing the user NAME');
  if (!USER_NAME.test(name)) {
    throw new CertsUsageError(
      `user name ${JSON.stringify(name)} is not one the server accepts (${String(USER_NAME)})`,
    );
  }
  if (!ROLES.includes(role as Role)) {
    throw new CertsUsageError(
      role === undefined
        ? '--role is required (user or admin)'
        : `--role ${JSON.stringify(role)} is not ${ROLES.join(' or ')}`,
    );
  }
  return role as Role;
}

/** Runs `jobworkerd certs ARGS`, writing what it did to `out`. */
export async function runCerts(
  args: string[],
  out: { write(text: string): unknown },
): Promise<void> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'init': {
      const { values, positionals } = parse('init', rest, {
        ...common,
        'ca-only': { type: 'boolean', default: false },
      });
      noPositionals('init', positionals);
      const [{ initPki }, { CA_VALIDITY_DAYS }] = await Promise.all([
        import('./cert-store.js'),
        import('./certs.js'),
      ]);
      const caOnly = values['ca-only'] === true;
      const written = await initPki({
        ...dirs(values),
        days: days(values, CA_VALIDITY_DAYS),
        caOnly,
        ...(caOnly ? { caName: 'jobworker CA' } : {}),
      });
      out.write(`${written.join('\n')}\n`);
      return;
    }
    case 'issue': {
      const [kind, ...flags] = rest;
      if (kind === 'server') {
        const { values, positionals } = parse('issue server', flags, {
          ...leaf,
          name: { type: 'string', multiple: true },
          ip: { type: 'string', multiple: true },
        });
        noPositionals('issue server', positionals);
        const dnsNames = (values['name'] as string[] | undefined) ?? [];
        const ipAddresses = (values['ip'] as string[] | undefined) ?? [];
        dnsNames.forEach(checkDnsName);
        ipAddresses.forEach(checkIp);
        if (dnsNames.length + ipAddresses.length === 0)
          throw new CertsUsageError(
            'certs issue server: give at least one --name HOST or --ip ADDR',
          );
        const options = { ...dirs(values), ...keyType(values) };
        const [{ issueServerFiles }, { LEAF_VALIDITY_DAYS }] = await Promise.all([
          import('./cert-store.js'),
          import('./certs.js'),
        ]);
        const written = await issueServerFiles(
          { dnsNames, ipAddresses },
          {
            ...options,
            days: days(values, LEAF_VALIDITY_DAYS),
          },
        );
        out.write(`${written.join('\n')}\n`);
        return;
      }
      if (kind === 'user') {
        const { values, positionals } = parse('issue user', flags, {
          ...leaf,
          role: { type: 'string' },
        });
        const [name, ...extra] = positionals;
        noPositionals('issue user', extra);
        const role = checkUser(name, stringFlag(values, 'role'));
        const options = { ...dirs(values), ...keyType(values) };
        const [{ issueUserFiles }, { LEAF_VALIDITY_DAYS }] = await Promise.all([
          import('./cert-store.js'),
          import('./certs.js'),
        ]);
        const written = await issueUserFiles(name as string, role, {
          ...options,
          days: days(values, LEAF_VALIDITY_DAYS),
        });
        out.write(`${written.join('\n')}\n`);
        return;
      }
      throw new CertsUsageError(
        `unknown certs issue kind ${JSON.stringify(kind ?? '')}; expected server or user`,
      );
    }
    case 'show': {
      const { positionals } = parse('show', rest, {});
      if (positionals.length === 0) throw new CertsUsageError('certs show: missing the FILE');
      const blocks: string[] = [];
      for (const file of positionals) blocks.push(await describeFile(file));
      out.write(blocks.join('\n'));
      return;
    }
    default:
      throw new CertsUsageError(
        `unknown certs command ${JSON.stringify(sub ?? '')}; expected init, issue or show`,
      );
  }
}

async function describeFile(file: string): Promise<string> {
  const pem = await readFile(file).catch((err: unknown) => {
    throw new CertsUsageError(
      `certs show: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    );
  });
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch {
    throw new CertsUsageError(`certs show: ${file} is not a PEM or DER certificate`);
  }
  return describeCertificate(file, cert);
}

/** Node's subject text (`CN=alice\nOU=user`) as the object a TLS peer certificate has. */
function subjectObject(subject: string): PeerCertificate['subject'] {
  const fields: Record<string, string | string[]> = {};
  for (const line of subject.split('\n')) {
    const at = line.indexOf('=');
    const [key, value] = [line.slice(0, at), line.slice(at + 1)];
    const seen = fields[key];
    fields[key] = seen === undefined ? value : [...(Array.isArray(seen) ? seen : [seen]), value];
  }
  // Repeated attributes are arrays, as Node gives them to a TLS server (authz.ts refuses them).
  return fields;
}

function keyDescription(cert: X509Certificate): string {
  const key = cert.publicKey;
  const details = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === 'ed25519') return 'Ed25519';
  if (key.asymmetricKeyType === 'ec')
    return details?.namedCurve === 'prime256v1'
      ? 'ECDSA P-256'
      : `ECDSA ${String(details?.namedCurve)}`;
  if (key.asymmetricKeyType === 'rsa') return `RSA ${String(details?.modulusLength)} bits`;
  return String(key.asymmetricKeyType);
}

function validity(cert: X509Certificate, now: Date): string {
  const from = new Date(cert.validFrom);
  const to = new Date(cert.validTo);
  const days = (ms: number): string => `${Math.floor(ms / 86_400_000)} days`;
  const state =
    from > now
      ? 'not yet valid'
      : to <= now
        ? `expired ${days(now.getTime() - to.getTime())} ago`
        : `${days(to.getTime() - now.getTime())} left`;
  return `${from.toISOString()} to ${to.toISOString()} (${state})`;
}

/** The `certs show` text of one certificate. */
export function describeCertificate(file: string, cert: X509Certificate, now = new Date()): string {
  const eku = (cert.keyUsage as string[] | undefined) ?? [];
  const kinds = [
    ...(cert.ca ? ['CA'] : []),
    ...(eku.includes(Eku.serverAuth) ? ['server (serverAuth)'] : []),
    ...(eku.includes(Eku.clientAuth) ? ['client (clientAuth)'] : []),
  ];
  const lines: [string, string][] = [
    ['File', file],
    ['Subject', cert.subject.split('\n').join(', ')],
    ['Issuer', cert.issuer.split('\n').join(', ')],
    ['Kind', kinds.length > 0 ? kinds.join(', ') : 'no CA flag and no serverAuth/clientAuth EKU'],
  ];
  // The identity line for what may be a client: a clientAuth EKU or a role (OU) in the subject.
  if (!cert.ca && (eku.includes(Eku.clientAuth) || /^OU=/m.test(cert.subject))) {
    let identity: string;
    try {
      const principal = principalOf({ subject: subjectObject(cert.subject) });
      const problem = clientCertificateProblem(cert);
      identity =
        problem === null
          ? `user ${principal.name}, role ${principal.role}`
          : `not accepted as a client: ${problem}`;
    } catch (err) {
      identity = `not accepted as a client: ${err instanceof Error ? err.message : String(err)}`;
    }
    lines.push(['Identity', identity]);
  }
  lines.push(
    ['Names', cert.subjectAltName ?? 'none'],
    ['Valid', validity(cert, now)],
    ['Key', keyDescription(cert)],
    ['SHA-256', cert.fingerprint256],
    ['Serial', cert.serialNumber],
  );
  return lines.map(([k, v]) => `${`${k}:`.padEnd(10)}${v}\n`).join('');
}
