// Builds the native helper (native/*.c -> native/build/jobexec, one binary) at
// `npm ci` / `npm install` time. The compiler is invoked directly, with an
// argv array and no shell, so no path or flag is ever re-parsed.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const native = join(root, 'native');
const output = join(native, 'build', 'jobexec');
const cc = process.env.CC || 'gcc';

// The binary embeds one SHA-256 of every source and header and prints it with
// --version; the isolation layer computes the same digest of native/ at
// start-up and refuses a stale helper (src/isolation/helper-check.ts,
// sourceDigest: the two must hash alike).
const names = readdirSync(native)
  .filter((name) => /\.[ch]$/.test(name))
  .sort();
const hash = createHash('sha256');
for (const name of names) {
  const text = readFileSync(join(native, name));
  hash.update(`${name}\0${text.length}\0`).update(text);
}
const sourceSha256 = hash.digest('hex');
const sources = names.filter((name) => name.endsWith('.c')).map((name) => join(native, name));

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

/** Exits with a message naming what to install. */
function missing(what, packages) {
  console.error(
    `jobworker: no ${what} found to build the native helper.\n` +
      `Install it, e.g. 'apt-get install ${packages}' on Debian/Ubuntu, then run 'npm ci' again.`,
  );
  process.exit(1);
}

// The job's seccomp filter (native/syscall-filter.c) is built with libseccomp: check for its
// header first, so that its absence is named rather than buried in compiler errors.
const probe = spawnSync(cc, ['-E', '-x', 'c', '-o', '/dev/null', '-'], {
  input: '#include <seccomp.h>\n',
  stdio: ['pipe', 'ignore', 'ignore'],
});
if (probe.error?.code === 'ENOENT') missing(`C compiler (${cc})`, 'gcc libc6-dev');
if (probe.error) throw probe.error;
if (probe.status !== 0) missing('libseccomp header (seccomp.h)', 'libseccomp-dev');

mkdirSync(dirname(output), { recursive: true });
const result = spawnSync(cc, [...flags, '-o', output, ...sources, '-lseccomp'], {
  stdio: 'inherit',
});
if (result.error) throw result.error;
if (result.status !== 0) {
  console.error(
    `jobworker: building the native helper failed (${cc} exited with ${result.status}).`,
  );
  process.exit(result.status ?? 1);
}
