/**
 * Development and test certificates: a CA, a server certificate and client
 * certificates, ECDSA P-256 (or Ed25519 for clients) made with @peculiar/x509
 * on Node's WebCrypto. Identity lives in the subject: CN = user name, OU = role
 * (see authz.ts). `jobworkerd certs init` writes a set; tests/helpers/pki.ts
 * reuses the same functions to make the broken certificates the TLS tests need.
 */
// @peculiar/x509 uses decorators that read reflect-metadata when its module is evaluated.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';
import { access, mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, JobworkerError } from '../errors.js';
import { Eku } from './eku.js';

x509.cryptoProvider.set(webcrypto);

const DAY_MS = 24 * 60 * 60 * 1000;
/** Validity of a CA made by {@link createCa}, in days. */
export const CA_VALIDITY_DAYS = 90;
/** Validity of a leaf certificate made by {@link issue}, in days: short, these are development certificates. */
export const LEAF_VALIDITY_DAYS = 30;

const P256: webcrypto.EcKeyGenParams & webcrypto.EcdsaParams = {
  name: 'ECDSA',
  namedCurve: 'P-256',
  hash: 'SHA-256',
};
const ED25519: webcrypto.Algorithm = { name: 'Ed25519' };

/** Key algorithms a certificate may use (the server accepts exactly these). */
export type KeyAlgorithm = 'p256' | 'ed25519';

/** A certificate and its private key, PEM encoded. */
export interface PemPair {
  readonly cert: string;
  readonly key: string;
}

/** A CA able to sign: its PEM pair plus the live signing key. */
export interface Issuer extends PemPair {
  readonly name: string;
  readonly signingKey: webcrypto.CryptoKey;
}

export { Eku };

/** What goes into one leaf certificate. Defaults give a valid client certificate. */
export interface LeafOptions {
  /** Subject CN: the user name for clients, "jobworkerd" for the server. */
  readonly commonName: string;
  /** Subject OU: the role of a client (`user`, `admin`); absent for the server. */
  readonly role?: string;
  /** EKU OIDs; `null` omits the extension entirely. Default: clientAuth. */
  readonly eku?: readonly string[] | null;
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  readonly keyAlgorithm?: KeyAlgorithm;
}

function algorithmOf(kind: KeyAlgorithm): webcrypto.Algorithm {
  return kind === 'p256' ? P256 : ED25519;
}

async function generateKeys(kind: KeyAlgorithm): Promise<webcrypto.CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(algorithmOf(kind), true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
}

async function keyPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN PRIVATE KEY-----\n${lines.join('\n')}\n-----END PRIVATE KEY-----\n`;
}

/** Distinguished name with RFC 4514 escaping of the few characters that matter. */
function dn(commonName: string, role?: string): string {
  const esc = (v: string): string => v.replace(/[\\,+"<>;=]/g, (c) => `\\${c}`);
  return role === undefined ? `CN=${esc(commonName)}` : `CN=${esc(commonName)}, OU=${esc(role)}`;
}

/** Makes a self-signed CA (P-256). */
export async function createCa(
  name = 'jobworker development CA',
  validityDays = CA_VALIDITY_DAYS,
): Promise<Issuer> {
  const keys = await generateKeys('p256');
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: dn(name),
    keys,
    signingAlgorithm: P256,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + validityDays * DAY_MS),
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return {
    name,
    cert: cert.toString('pem') + '\n',
    key: await keyPem(keys.privateKey),
    signingKey: keys.privateKey,
  };
}

/** Issues a leaf certificate signed by `ca` (or self-signed when `ca` is null). */
export async function issue(ca: Issuer | null, options: LeafOptions): Promise<PemPair> {
  const keys = await generateKeys(options.keyAlgorithm ?? 'p256');
  const now = Date.now();
  const subject = dn(options.commonName, options.role);
  const eku = options.eku === undefined ? [Eku.clientAuth] : options.eku;
  const names = [
    ...(options.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(options.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
  ];
  if (eku !== null) extensions.push(new x509.ExtendedKeyUsageExtension([...eku], false));
  if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names, false));
  const validity = {
    notBefore: options.notBefore ?? new Date(now - 60_000),
    notAfter: options.notAfter ?? new Date(now + LEAF_VALIDITY_DAYS * DAY_MS),
  };
  const cert =
    ca === null
      ? await x509.X509CertificateGenerator.createSelfSigned({
          name: subject,
          keys,
          signingAlgorithm: algorithmOf(options.keyAlgorithm ?? 'p256'),
          extensions,
          ...validity,
        })
      : await x509.X509CertificateGenerator.create({
          subject,
          issuer: dn(ca.name),
          publicKey: keys.publicKey,
          signingKey: ca.signingKey,
          signingAlgorithm: P256,
          extensions,
          ...validity,
        });
  return { cert: cert.toString('pem') + '\n', key: await keyPem(keys.privateKey) };
}

/** The server certificate: SANs localhost, 127.0.0.1 and ::1, serverAuth EKU. */
export function issueServer(ca: Issuer): Promise<PemPair> {
  return issue(ca, {
    commonName: 'jobworkerd',
    eku: [Eku.serverAuth],
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1', '::1'],
  });
}

/** The clients of a development set: name and role. */
export const DEV_CLIENTS = [
  { name: 'alice', role: 'user' },
  { name: 'bob', role: 'user' },
  { name: 'admin', role: 'admin' },
] as const;

/** Writes `content` to a new file with `mode`; refuses (EEXIST) to replace an existing one. */
export async function writeNewFile(path: string, content: string, mode: number): Promise<void> {
  // 'wx' = O_CREAT|O_EXCL: never overwrite, and no window where a key is world-readable.
  const file = await open(path, 'wx', mode).catch((err: unknown) => {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'EEXIST' ? 'already exists; refusing to overwrite it' : String(err);
    throw new JobworkerError(ErrorCode.InvalidArgument, `${path} ${why}`, { cause: err });
  });
  try {
    await file.writeFile(content);
  } finally {
    await file.close();
  }
}

/**
 * Creates a development set in `dir`: ca.crt/ca.key, server.crt/key and
 * alice, bob (role user) and admin (role admin). The CA key is kept (mode
 * 0600) so that more clients can be issued from the same CA later.
 * TODO(no issue command yet): add `jobworkerd certs issue NAME --role R`.
 * Returns the paths written.
 */
export async function initCertsDir(dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const names = ['ca', 'server', ...DEV_CLIENTS.map((c) => c.name)];
  // Checked before anything is written, so a refusal leaves the directory as it was.
  for (const file of names.flatMap((n) => [`${n}.crt`, `${n}.key`])) {
    if (
      await access(join(dir, file)).then(
        () => true,
        () => false,
      )
    ) {
      throw new JobworkerError(
        ErrorCode.InvalidArgument,
        `${join(dir, file)} already exists; refusing to overwrite it`,
      );
    }
  }
  const ca = await createCa();
  const pairs: [string, PemPair][] = [
    ['ca', ca],
    ['server', await issueServer(ca)],
  ];
  for (const client of DEV_CLIENTS) {
    pairs.push([client.name, await issue(ca, { commonName: client.name, role: client.role })]);
  }
  const written: string[] = [];
  for (const [name, pair] of pairs) {
    const crt = join(dir, `${name}.crt`);
    const key = join(dir, `${name}.key`);
    await writeNewFile(crt, pair.cert, 0o644);
    await writeNewFile(key, pair.key, 0o600);
    written.push(crt, key);
  }
  return written;
}
