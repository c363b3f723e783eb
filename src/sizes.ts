/**
 * The grammar of a size on a command line (`256M`, `1.5G`, binary multiples,
 * a unit required), shared by jobctl's limits and jobworkerd's budgets. Each
 * program wraps the result in its own usage error.
 */

/** Binary multiples, as docker and nomad read `--memory 256M`. */
const sizeUnits: Readonly<Record<string, number>> = {
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1024 ** 4,
  tib: 1024 ** 4,
};

/**
 * Reads a size such as `1024B`, `512K`, `256M`, `1.5G` (a trailing `/s` is
 * allowed for bandwidths) as a positive whole number of bytes, or returns
 * what is wrong with it, to follow the flag and the quoted value in a
 * message. The unit is required: `--memory 256` meant as MiB would be 256 bytes.
 */
export function readSize(value: string): number | string {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)(?:\/s)?$/i.exec(value.trim());
  if (match?.[2] === '') return `has no unit; say ${match[1] ?? ''}M (or B, K, G, T)`;
  const unit = sizeUnits[(match?.[2] ?? '').toLowerCase()];
  if (match === null || unit === undefined) {
    return 'is not a size; use B, K, M, G or T (e.g. 256M, 1.5G)';
  }
  const bytes = Math.round(Number(match[1]) * unit);
  if (bytes < 1) return 'must be at least 1 byte';
  if (!Number.isSafeInteger(bytes)) return 'is too large';
  return bytes;
}
