// Runs every compiled test file with node:test. The files are listed here
// because `node --test` takes directories only up to Node 20 and globs only
// from Node 21 on.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const roots = ['dist/src', 'dist/tests'];
const files = roots
  .flatMap((root) =>
    readdirSync(root, { recursive: true, encoding: 'utf8' })
      .filter((name) => name.endsWith('.test.js'))
      .map((name) => join(root, name)),
  )
  .sort();
const flags = ['--test-reporter=spec', '--enable-source-maps', '--test-timeout=120000'];
const run = spawnSync(process.execPath, ['--test', ...flags, ...process.argv.slice(2), ...files], {
  stdio: 'inherit',
});
process.exitCode = run.status ?? 1;
