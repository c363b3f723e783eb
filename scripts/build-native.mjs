// Builds the native helper (native/*.c -> native/build/jobexec) at
// `npm ci` / `npm install` time. The compiler is invoked directly, with an
// argv array and no shell, so no path or flag is ever re-parsed.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const native = join(root, 'native');
const output = join(root, 'native', 'build', 'jobexec');
const cc = process.env.CC || 'gcc';

// The binary embeds the SHA-256 of its sources and prints it with --version;
// the isolation layer computes the same hash of native/ at start-up and
// refuses a stale helper (src/isolation/helper-check.ts, sourcesSha256).
const sources = readdirSync(native)
  .filter((name) => /\.[ch]$/.test(name))
  .sort();
const hash = createHash('sha256');
for (const name of sources) hash.update(`${name}\0`).update(readFileSync(join(native, name)));
const sourceSha256 = hash.digest('hex');

const flags = [
  '-std=gnu11',
  '-O2',
  '-Wall',
  '-Wextra',
  '-Werror',
  '-pedantic-errors',
  '-D_FORTIFY_SOURCE=2',
  '-fstack-protector-strong',
  '-fPIE',
  '-pie',
  '-Wl,-z,relro,-z,now',
  `-DJOBEXEC_SOURCE_SHA256="${sourceSha256}"`,
];

mkdirSync(dirname(output), { recursive: true });
const result = spawnSync(
  cc,
  [
    ...flags,
    '-o',
    output,
    ...sources.filter((name) => name.endsWith('.c')).map((name) => join(native, name)),
  ],
  { stdio: 'inherit' },
);
if (result.error?.code === 'ENOENT') {
  console.error(
    `jobworker: no C compiler (${cc}) found to build the native helper.\n` +
      `Install one, e.g. 'apt-get install gcc libc6-dev' on Debian/Ubuntu, then run 'npm ci' again.`,
  );
  process.exit(1);
}
if (result.error) throw result.error;
if (result.status !== 0) {
  console.error(
    `jobworker: building the native helper failed (${cc} exited with ${result.status}).`,
  );
  process.exit(result.status ?? 1);
}
