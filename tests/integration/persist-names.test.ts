/**
 * Names and labels are part of the persisted record: after a restart a job
 * is found by its name and its labels as before, and a record written
 * before jobs had either reads as a job with neither.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseSelector } from '../../src/job/index.js';
import { readAll, spec } from '../helpers/job-fixture.js';
import { persistFixture } from '../helpers/persist-fixture.js';

test('names and labels survive a restart; older records have neither', async () => {
  const fx = await persistFixture();
  try {
    const first = await fx.open();
    const named = await first.start('alice', {
      ...spec(['true']),
      name: 'nightly',
      labels: { team: 'db', 'example.com/env': 'prod' },
    });
    const plain = await first.start('alice', spec(['true']));
    await readAll(first, named.id);
    await readAll(first, plain.id);
    await first.shutdown();
    // As written by a server before names and labels.
    const path = join(fx.jobsDir, plain.id, 'record.json');
    const old = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
    delete old['name'];
    delete old['labels'];
    await writeFile(path, JSON.stringify(old));

    const second = await fx.open();
    assert.equal(second.idOfName('alice', 'nightly'), named.id);
    assert.deepEqual(second.get(named.id).labels, { team: 'db', 'example.com/env': 'prod' });
    assert.deepEqual(
      second
        .list({ selector: parseSelector('team=db,example.com/env in (prod)') })
        .map((j) => j.id),
      [named.id],
    );
    assert.equal(second.count({ selector: parseSelector('!team') }), 1);
    assert.deepEqual([second.get(plain.id).name, second.get(plain.id).labels], [null, {}]);
    // Finished: the name is free again.
    const again = await second.start('alice', { ...spec(['true']), name: 'nightly' });
    assert.equal(second.idOfName('alice', 'nightly'), again.id);
    assert.deepEqual(fx.warnings, []);
  } finally {
    await fx.close();
  }
});

test('two starts of one name at once: one runs, the other is refused', async () => {
  const fx = await persistFixture();
  try {
    const jobs = await fx.open();
    const sleeper = { ...spec(['sleep', '60']), name: 'once' };
    const results = await Promise.allSettled([
      jobs.start('alice', sleeper),
      jobs.start('alice', sleeper),
      jobs.start('bob', sleeper),
    ]);
    assert.deepEqual(
      results.map((r) => (r.status === 'fulfilled' ? 'ok' : (r.reason as { code: string }).code)),
      ['ok', 'already_exists', 'ok'],
    );
  } finally {
    await fx.close();
  }
});
