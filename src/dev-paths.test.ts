import assert from 'node:assert/strict';
import { test } from 'node:test';
import { devPaths } from './dev-paths.js';

test('devPaths: under an absolute XDG_STATE_HOME, else ~/.local/state', () => {
  const cases: [NodeJS.ProcessEnv, string][] = [
    [{ HOME: '/home/u' }, '/home/u/.local/state/jobworker/dev'],
    [{ HOME: '/home/u', XDG_STATE_HOME: '/state' }, '/state/jobworker/dev'],
    // The XDG spec says a relative path is ignored.
    [{ HOME: '/home/u', XDG_STATE_HOME: 'relative' }, '/home/u/.local/state/jobworker/dev'],
  ];
  for (const [env, root] of cases) {
    assert.deepEqual(
      devPaths(env),
      { root, certs: `${root}/certs`, state: `${root}/state` },
      JSON.stringify(env),
    );
  }
});
