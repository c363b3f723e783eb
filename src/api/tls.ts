/**
 * TLS for both ends. The server terminates TLS in its own `tls.Server` (see
 * listener.ts) with the options below, so that it sees every handshake
 * failure with its reason and can apply the checks OpenSSL does not make
 * (clientAuth EKU present, key type). Clients use {@link clientCredentials}.
 */
import * as grpc from '@grpc/grpc-js';
import { X509Certificate, constants as cryptoConstants, createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TLSSocket, TlsOptions } from 'node:tls';
import { createSecureContext } from 'node:tls';
import { ErrorCode, JobworkerError } from '../errors.js';
import { Eku } from './eku.js';

/** TLS 1.3 AEAD suites only (RFC 8446 B.4, without the CCM ones). */
export const TLS_CIPHERS =
  'TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256';
/** Key exchange groups. */
export const TLS_GROUPS = 'X25519:P-256';
/**
 * Signature algorithms offered and accepted, for handshake signatures and
 * certificate chains: ECDSA P-256 and Ed25519 keys only. An RSA or P-384
 * client key cannot sign a CertificateVerify the server accepts.
 */
export const TLS_SIGALGS = 'ecdsa_secp256r1_sha256:ed25519';

/** The PEM material of one end: the CA to verify the peer with, and its own certificate and key. */
export interface TlsIdentity {
  readonly ca: Buffer;
  readonly cert: Buffer;
  readonly key: Buffer;
}

async function readPem(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new JobworkerError(ErrorCode.InvalidArgument, `cannot read ${path}: ${code}`, {
      cause: err,
    });
  }
}

function parseCert(path: string, pem: Buffer): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (err) {
    throw new JobworkerError(ErrorCode.InvalidArgument, `${path} is not a PEM certificate`, {
      cause: err,
    });
  }
}

/** Throws unless `cert` (read from `path`) is valid now. */
function checkValidity(path: string, cert: X509Certificate, now = new Date()): void {
  if (new Date(cert.validFrom) > now) {
    throw new JobworkerError(
      ErrorCode.InvalidArgument,
      `${path} is not valid before ${cert.validFrom}`,
    );
  }
  if (new Date(cert.validTo) < now) {
    throw new JobworkerError(ErrorCode.InvalidArgument, `${path} expired on ${cert.validTo}`);
  }
}

/** Where one end's PEM files are: the CA to verify the peer with, its certificate and its key. */
export interface TlsFiles {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

/** The files of `name` as `jobworkerd certs init` lays them out in `dir`: ca.crt, NAME.crt, NAME.key. */
export function tlsFilesIn(dir: string, name: string): TlsFiles {
  return { ca: join(dir, 'ca.crt'), cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
}

/** {@link loadIdentityFiles} of `name`'s files in `dir` ({@link tlsFilesIn}). */
export function loadIdentity(dir: string, name: string): Promise<TlsIdentity> {
  return loadIdentityFiles(tlsFilesIn(dir, name));
}

/**
 * Reads the CA, certificate and key `files` and checks them: each file
 * parses, the certificates are valid now, the key matches the certificate and
 * the CA signed it. Every error names the file at fault.
 */
export async function loadIdentityFiles(files: TlsFiles): Promise<TlsIdentity> {
  const { ca: caPath, cert: certPath, key: keyPath } = files;
  // One after the other, so that the first missing file is always the one named.
  const ca = await readPem(caPath);
  const cert = await readPem(certPath);
  const key = await readPem(keyPath);
  const caCert = parseCert(caPath, ca);
  const leaf = parseCert(certPath, cert);
  checkValidity(caPath, caCert);
  checkValidity(certPath, leaf);
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw new JobworkerError(ErrorCode.InvalidArgument, `${keyPath} is not a PEM private key`, {
      cause: err,
    });
  }
  if (!leaf.checkPrivateKey(privateKey)) {
    throw new JobworkerError(ErrorCode.InvalidArgument, `${keyPath} does not match ${certPath}`);
  }
  if (!leaf.checkIssued(caCert) || !leaf.verify(caCert.publicKey)) {
    throw new JobworkerError(ErrorCode.InvalidArgument, `${certPath} is not signed by ${caPath}`);
  }
  return { ca, cert, key };
}

/** Options of the server's `tls.Server`: TLS 1.3 only, client certificate requested and verified (enforced in listener.ts). */
export function serverTlsOptions(identity: TlsIdentity): TlsOptions {
  return {
    ca: identity.ca,
    cert: identity.cert,
    key: identity.key,
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    ciphers: TLS_CIPHERS,
    ecdhCurve: TLS_GROUPS,
    sigalgs: TLS_SIGALGS,
    requestCert: true,
    // Verification still runs and its result is enforced: Node accepts every
    // chain in OpenSSL's verify callback and decides afterwards in JavaScript
    // (lib/_tls_wrap.js, onServerSocketSecure), where `true` destroys the
    // socket without any event. `false` moves that same decision into
    // listener.ts ('secureConnection' -> refuseClientCertificate, which
    // refuses unless `socket.authorized`), where the reason can be logged.
    // An unverified socket never reaches grpc-js, and grpc-js's
    // getAuthContext() also yields no certificate for one (seam: UNAUTHENTICATED).
    rejectUnauthorized: false,
    // gRPC runs over HTTP/2 only; a client that cannot negotiate it is refused (listener.ts).
    ALPNProtocols: ['h2'],
    // No session resumption: a resumed TLS 1.3 session carries the first
    // handshake's verified certificate without sending or checking one again
    // (expired since, or another certificate presented). Without stateless
    // tickets OpenSSL falls back to session ids, which need a cache Node
    // only has when 'newSession'/'resumeSession' are handled: none here, so
    // every connection makes a full handshake and is verified.
    secureOptions: cryptoConstants.SSL_OP_NO_TICKET,
    // The handshake deadline is the listener's (connection-policy.ts).
  };
}

/**
 * Checks OpenSSL does not make on a verified client certificate; returns why
 * it is refused, or null. OpenSSL's "ssl_client" purpose check (which gives
 * `INVALID_PURPOSE` at the handshake) passes a certificate that has no EKU
 * extension at all; this project requires clientAuth to be present.
 */
export function refuseClientCertificate(socket: TLSSocket): string | null {
  if (!socket.authorized)
    return `client certificate not verified: ${String(socket.authorizationError)}`;
  if (socket.alpnProtocol !== 'h2') return 'client did not negotiate HTTP/2 (ALPN h2)';
  const cert = socket.getPeerX509Certificate();
  if (cert === undefined) return 'no client certificate';
  return clientCertificateProblem(cert);
}

/**
 * What the server refuses in a client certificate whose chain verified, or
 * null: the clientAuth EKU must be present and the key ECDSA P-256 or
 * Ed25519. (`jobworkerd certs show` reports the same.)
 */
export function clientCertificateProblem(cert: X509Certificate): string | null {
  // X509Certificate.keyUsage is the extended key usage list (undefined when absent).
  const eku = cert.keyUsage as string[] | undefined;
  if (eku?.includes(Eku.clientAuth) !== true)
    return 'client certificate lacks the clientAuth extended key usage';
  const keyType = cert.publicKey.asymmetricKeyType;
  const curve = cert.publicKey.asymmetricKeyDetails?.namedCurve;
  if (!(keyType === 'ed25519' || (keyType === 'ec' && curve === 'prime256v1'))) {
    return `client key type ${String(keyType)}${curve === undefined ? '' : `/${curve}`} is not ECDSA P-256 or Ed25519`;
  }
  return null;
}

/**
 * gRPC channel credentials for a client: TLS 1.3, the server verified against
 * `ca` (chain and name; dial a host name such as `localhost`, which the
 * development server certificate carries).
 */
export function clientCredentials(identity: TlsIdentity): grpc.ChannelCredentials {
  const context = createSecureContext({
    ca: identity.ca,
    cert: identity.cert,
    key: identity.key,
    minVersion: 'TLSv1.3',
    ciphers: TLS_CIPHERS,
  });
  return grpc.credentials.createFromSecureContext(context);
}
