/**
 * Job ids: 128 random bits written as 26 characters of lowercase RFC 4648
 * base32 (no padding). Ids become directory names and cgroup names, so every
 * id that comes from outside is checked with {@link isValidJobId} before any
 * path is built from it.
 */
import { randomBytes } from 'node:crypto';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';

/** Length of a job id in characters: ceil(128 / 5). */
export const JOB_ID_LENGTH = 26;

/**
 * 25 full characters plus a last one that carries 3 bits and two zero bits
 * (130 - 128), so only every fourth letter of the alphabet can end an id.
 * Checking that keeps one canonical spelling per id.
 */
const JOB_ID_PATTERN = /^[a-z2-7]{25}[aeimquy4]$/;

/** A fresh random job id. */
export function newJobId(): string {
  const bytes = randomBytes(16);
  let out = '';
  let acc = 0;
  let bits = 0;
  for (const byte of bytes) {
    acc = (acc << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += ALPHABET.charAt((acc >>> bits) & 31);
    }
    acc &= (1 << bits) - 1;
  }
  // 128 = 25 * 5 + 3: the last 3 bits, padded with zeros on the right.
  out += ALPHABET.charAt((acc << (5 - bits)) & 31);
  return out;
}

/** Whether `id` has the exact shape of an id made by {@link newJobId}. */
export function isValidJobId(id: unknown): id is string {
  return typeof id === 'string' && JOB_ID_PATTERN.test(id);
}
