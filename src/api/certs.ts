/**
 * Development and test certificates: a CA, a server certificate and client
 * certificates, ECDSA P-256 (or Ed25519 for clients) made with @peculiar/x509
 * on Node's WebCrypto. Identity lives in the subject: CN = user name, OU = role
 * (see authz.ts). cert-store.ts writes them as `jobworkerd certs` lays them
 * out; tests/helpers/pki.ts reuses the same functions to make the broken
 * certificates the TLS tests need.
 */
// @peculiar/x509 uses decorators that read reflect-metadata when its module is evaluated.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createPrivateKey, type KeyObject, webcrypto, X509Certificate } from 'node:crypto';
import { ErrorCode, JobworkerError } from '../errors.js';
import { Eku } from './eku.js';

x509.cryptoProvider.set(webcrypto);

const DAY_MS = 24 * 60 * 60 * 1000;
/** Validity of a CA made by {@link createCa}, in days. */
export const CA_VALIDITY_DAYS = 90;
/** Default validity of a leaf certificate, in days: short, so that a lost key is not good for long. */
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
  /** Subject DN of the CA certificate (RFC 4514), the issuer of what it signs. */
  readonly subject: string;
  readonly signingKey: webcrypto.CryptoKey;
  /** End of the CA's validity: nothing it issues may outlive it. */
  readonly notAfter: Date;
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
  const notAfter = new Date(now + validityDays * DAY_MS);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: dn(name),
    keys,
    signingAlgorithm: P256,
    notBefore: new Date(now - 60_000),
    notAfter,
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
    subject: dn(name),
    cert: cert.toString('pem') + '\n',
    key: await keyPem(keys.privateKey),
    signingKey: keys.privateKey,
    // The certificate stores whole seconds: compare with what it says.
    notAfter: cert.notAfter,
  };
}

/**
 * The CA of `ca.crt` and `ca.key` (PEM, as {@link createCa} writes them) as
 * an {@link Issuer}. Throws `invalid_argument` naming the file when one is
 * not a certificate, not a P-256 key, or not the certificate's key.
 */
export function issuerFromPem(
  files: { readonly cert: string; readonly key: string },
  pem: PemPair,
): Promise<Issuer> {
  const fail = (message: string, cause?: unknown): JobworkerError =>
    new JobworkerError(ErrorCode.InvalidArgument, message, cause === undefined ? {} : { cause });
  let cert: X509Certificate;
  let key: KeyObject;
  try {
    cert = new X509Certificate(pem.cert);
  } catch (err) {
    throw fail(`${files.cert} is not a PEM certificate`, err);
  }
  try {
    key = createPrivateKey(pem.key);
  } catch (err) {
    throw fail(`${files.key} is not a PEM private key`, err);
  }
  if (!cert.ca) throw fail(`${files.cert} is not a CA certificate (basicConstraints CA:FALSE)`);
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw fail(`${files.key} is not an ECDSA P-256 key (jobworkerd certs makes P-256 CAs only)`);
  }
  if (!cert.checkPrivateKey(key)) throw fail(`${files.key} does not match ${files.cert}`);
  const der = key.export({ type: 'pkcs8', format: 'der' });
  return webcrypto.subtle.importKey('pkcs8', der, P256, false, ['sign']).then((signingKey) => ({
    ...pem,
    // The issuer of what it signs is exactly its subject, as encoded (chains are built by name).
    subject: new x509.X509Certificate(pem.cert).subject,
    signingKey,
    notAfter: new Date(cert.validTo),
  }));
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
          issuer: ca.subject,
          publicKey: keys.publicKey,
          signingKey: ca.signingKey,
          signingAlgorithm: P256,
          extensions,
          ...validity,
        });
  return { cert: cert.toString('pem') + '\n', key: await keyPem(keys.privateKey) };
}

/** What a server certificate names; the defaults are the development server's. */
export interface ServerNames {
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
  readonly notAfter?: Date;
  readonly keyAlgorithm?: KeyAlgorithm;
}

/** The server certificate: serverAuth EKU, SANs `localhost`, `127.0.0.1` and `::1` unless given. */
export function issueServer(ca: Issuer, names: ServerNames = {}): Promise<PemPair> {
  return issue(ca, {
    commonName: 'jobworkerd',
    eku: [Eku.serverAuth],
    dnsNames: names.dnsNames ?? ['localhost'],
    ipAddresses: names.ipAddresses ?? ['127.0.0.1', '::1'],
    ...(names.notAfter === undefined ? {} : { notAfter: names.notAfter }),
    ...(names.keyAlgorithm === undefined ? {} : { keyAlgorithm: names.keyAlgorithm }),
  });
}
