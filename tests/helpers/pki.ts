/**
 * The test PKI, made at test time with the same module as `jobworkerd certs
 * init`: the normal set (ca, server, alice, bob, admin) plus the broken
 * certificates the TLS tests need. Each is written as `<name>.crt|key`.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  createCa,
  Eku,
  issue,
  issueServer,
  loadCa,
  type LeafOptions,
  type PemPair,
} from '../../src/api/index.js';

const DAY_MS = 24 * 60 * 60 * 1000;
const TEST_CA_NAME = 'jobworker test CA';

/** Client certificate names in a test PKI, and what is wrong with each (nothing for the first three). */
export const TEST_CLIENTS = {
  alice: 'valid, role user',
  bob: 'valid, role user',
  admin: 'valid, role admin',
  carol: 'valid, role user, Ed25519 key',
  expired: 'expired yesterday',
  notyet: 'valid from tomorrow',
  noclientauth: 'EKU serverAuth only',
  noeku: 'no EKU extension at all',
  otherca: 'signed by another CA',
  selfsigned: 'self-signed',
  rootrole: 'OU=root (unknown role)',
  badname: 'CN "Bad Name!" (not a user name)',
} as const;

/** Name of a client certificate in the test PKI. */
export type TestClient = keyof typeof TEST_CLIENTS;

/** Writes a complete test PKI into `dir` (created). */
export async function makeTestPki(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const ca = await createCa(TEST_CA_NAME);
  const other = await createCa('another CA');
  const now = Date.now();
  const set: Record<string, PemPair> = {
    ca,
    server: await issueServer(ca),
    alice: await issue(ca, { commonName: 'alice', role: 'user' }),
    bob: await issue(ca, { commonName: 'bob', role: 'user' }),
    admin: await issue(ca, { commonName: 'admin', role: 'admin' }),
    carol: await issue(ca, { commonName: 'carol', role: 'user', keyAlgorithm: 'ed25519' }),
    expired: await issue(ca, {
      commonName: 'expired',
      role: 'user',
      notBefore: new Date(now - 10 * DAY_MS),
      notAfter: new Date(now - DAY_MS),
    }),
    notyet: await issue(ca, {
      commonName: 'notyet',
      role: 'user',
      notBefore: new Date(now + DAY_MS),
      notAfter: new Date(now + 10 * DAY_MS),
    }),
    noclientauth: await issue(ca, {
      commonName: 'noclientauth',
      role: 'user',
      eku: [Eku.serverAuth],
    }),
    noeku: await issue(ca, { commonName: 'noeku', role: 'user', eku: null }),
    otherca: await issue(other, { commonName: 'otherca', role: 'user' }),
    selfsigned: await issue(null, { commonName: 'selfsigned', role: 'user' }),
    rootrole: await issue(ca, { commonName: 'rootrole', role: 'root' }),
    badname: await issue(ca, { commonName: 'Bad Name!', role: 'user' }),
  };
  for (const [name, pair] of Object.entries(set)) {
    await writeFile(join(dir, `${name}.crt`), pair.cert);
    await writeFile(join(dir, `${name}.key`), pair.key, { mode: 0o600 });
  }
}

/** Issues one more client certificate from the CA of the test PKI in `dir`, written as `<name>.crt|key`. */
export async function issueTestClient(
  dir: string,
  name: string,
  options: LeafOptions,
): Promise<void> {
  const pair = await issue(await loadCa({ dir, caDir: dir }), options);
  await writeFile(join(dir, `${name}.crt`), pair.cert);
  await writeFile(join(dir, `${name}.key`), pair.key, { mode: 0o600 });
}
