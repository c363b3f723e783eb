/**
 * The development certificates of `jobworkerd dev`: made on the first run,
 * renewed when they have expired or expire within a day (they live 30 days;
 * a server started on day 29 would otherwise stop taking clients at night).
 * Light on purpose: only node:crypto reads the dates; certificate generation
 * (cert-store.ts, certs.ts: heavy, see eku.ts) is loaded when something must
 * be made.
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** A development certificate is renewed when it ends within this long. */
export const DEV_RENEW_BEFORE_MS = 24 * 60 * 60 * 1000;

/** What {@link prepareDevCerts} did. */
export interface DevCerts {
  /** The set did not exist and was made. */
  readonly created: boolean;
  /** One line per renewal, saying what was renewed and why. */
  readonly renewed: readonly string[];
}

/** The end of validity of the certificate in `path`, or null when there is none. */
async function notAfter(path: string): Promise<Date | null> {
  const pem = await readFile(path).catch(() => null);
  return pem === null ? null : new Date(new X509Certificate(pem).validTo);
}

function why(end: Date, now: Date): string {
  return `${end <= now ? 'expired' : 'expires'} on ${end.toISOString()}`;
}

/** The clients of a development set: name and role. */
export const DEV_CLIENTS = [
  { name: 'alice', role: 'user' },
  { name: 'bob', role: 'user' },
  { name: 'admin', role: 'admin' },
] as const;

const DEV_NAMES = ['server', ...DEV_CLIENTS.map((c) => c.name)];

/**
 * Makes the development set in `dir` if it has none; otherwise renews what
 * ends within {@link DEV_RENEW_BEFORE_MS}. When the CA itself does, or would
 * end before a renewed certificate, the whole set is made anew: certificates
 * issued from the old CA by hand then stop working, and the line says so.
 */
export async function prepareDevCerts(dir: string, now = new Date()): Promise<DevCerts> {
  const dirs = { dir, caDir: dir };
  const caEnd = await notAfter(join(dir, 'ca.crt'));
  const soon = (end: Date): boolean => end.getTime() - now.getTime() < DEV_RENEW_BEFORE_MS;
  const due: { name: string; end: Date }[] = [];
  for (const name of DEV_NAMES) {
    const end = await notAfter(join(dir, `${name}.crt`));
    if (end !== null && soon(end)) due.push({ name, end });
  }
  if (caEnd !== null && !soon(caEnd) && due.length === 0) return { created: false, renewed: [] };
  // Loaded only past this point: most starts find the set valid.
  const { LEAF_VALIDITY_DAYS, CA_VALIDITY_DAYS } = await import('./certs.js');
  const store = await import('./cert-store.js');
  if (caEnd === null) {
    await store.initCertsDir(dir);
    return { created: true, renewed: [] };
  }
  const leafEnd = now.getTime() + LEAF_VALIDITY_DAYS * DEV_RENEW_BEFORE_MS;
  if (soon(caEnd) || caEnd.getTime() < leafEnd) {
    await store.initPki({ ...dirs, days: CA_VALIDITY_DAYS, force: true });
    return {
      created: false,
      renewed: [
        `development CA ${join(dir, 'ca.crt')} ${why(caEnd, now)}: made a new CA and renewed ${DEV_NAMES.join(', ')} (certificates issued from the old CA stop working)`,
      ],
    };
  }
  const renewed: string[] = [];
  for (const { name, end } of due) {
    const options = { ...dirs, days: LEAF_VALIDITY_DAYS, force: true };
    const client = DEV_CLIENTS.find((c) => c.name === name);
    await (client === undefined
      ? store.issueServerFiles({}, options, now)
      : store.issueUserFiles(client.name, client.role, options, now));
    renewed.push(`renewed development certificate ${join(dir, `${name}.crt`)} (${why(end, now)})`);
  }
  return { created: false, renewed };
}
