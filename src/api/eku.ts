/**
 * EKU OIDs (RFC 5280 4.2.1.12). A module of its own: the TLS checks need
 * them on every connection, while certs.ts (certificate generation, with
 * @peculiar/x509, heavy to load: docs/benchmarks.md) is loaded only
 * when certificates are made.
 */
export const Eku = { serverAuth: '1.3.6.1.5.5.7.3.1', clientAuth: '1.3.6.1.5.5.7.3.2' } as const;
