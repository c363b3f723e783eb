/**
 * jobctl with names and labels, list's filters, limit and formats, and the
 * watches (`list --watch`, `events`), as child processes against a real
 * jobworkerd.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { jobctl, spawnJobctl } from '../helpers/jobctl.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
let base: string[];

before(async () => {
  server = await startTestServer();
  base = ['--server', server.address, '--certs', server.certsDir, '--user', 'alice'];
});
after(async () => {
  await server.close();
});

async function ok(...args: string[]): Promise<string> {
  const r = await jobctl([...base, ...args]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.toString();
}

async function finished(id: string): Promise<void> {
  for await (const event of server.jobs.output(id, { follow: true })) {
    if (event.type === 'finished') return;
  }
}

describe('jobctl names, labels, list and watches', { timeout: 120_000 }, () => {
  test('start --name -l; every verb takes the name', async () => {
    const id = (
      await ok('start', '--name', 'sleeper', '-l', 'team=db', '-l', 'env=dev', '--', 'sleep', '60')
    ).trim();
    const status = await ok('status', 'sleeper');
    assert.match(status, new RegExp(`^ID: +${id}$`, 'm'));
    const stopped = await ok('stop', '--grace', '5s', 'sleeper');
    assert.match(stopped, new RegExp(`^${id} finished: stopped by alice`));
    assert.equal(await ok('logs', 'sleeper'), '');
    // Bob has no job of that name: the same answer as for a missing job.
    const bob = await jobctl([...base, '--user', 'bob', 'status', 'sleeper']);
    assert.equal(bob.code, 66);
    assert.equal(bob.stderr, 'jobctl: job sleeper not found\n');
  });

  test('bad names, labels and selectors exit 65 naming them; a duplicate name exits 73', async () => {
    for (const [args, message] of [
      [
        ['start', '-l', `team=${'d'.repeat(64)}`, '--', 'true'],
        /metadata.labels\["team"\] value "d+" is longer than 63 characters/,
      ],
      [
        ['start', '--name', 'Bad_Name', '--', 'true'],
        /metadata.name "Bad_Name" is not a DNS label/,
      ],
      [['list', '-l', 'team in (db'], /selector.label_selector "team in \(db" does not parse/],
      [['events', '-l', 'a,,b'], /does not parse: expected a key, found ","/],
    ] as const) {
      const r = await jobctl([...base, ...args]);
      assert.equal(r.code, 65, r.stderr);
      assert.match(r.stderr, message);
    }
    const usage = await jobctl([...base, 'start', '-l', 'novalue', '--', 'true']);
    assert.equal(usage.code, 64);
    assert.match(usage.stderr, /--label "novalue" is not KEY=VALUE/);
    await ok('start', '--name', 'dup', '--', 'sleep', '60');
    const dup = await jobctl([...base, 'start', '--name', 'dup', '--', 'true']);
    assert.equal(dup.code, 73, dup.stderr);
    assert.equal(dup.stderr, 'jobctl: alice has a job named "dup" that has not finished\n');
    await ok('stop', '--grace', '0s', 'dup');
  });

  test('list: -l and --name filter, --limit says how many more, -o wide has every column uncut', async () => {
    const long = `echo ${'x'.repeat(100)}`;
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      ids.push(
        (
          await ok(
            'start',
            '--name',
            `w${i}`,
            '-l',
            'app=wide',
            '-l',
            `n=${i}`,
            '--',
            'sh',
            '-c',
            long,
          )
        ).trim(),
      );
    }
    for (const id of ids) await finished(id);
    assert.deepEqual((await ok('list', '-q', '-l', 'app=wide,n notin (0,1)')).trim().split('\n'), [
      ids[3],
      ids[2],
    ]);
    assert.deepEqual((await ok('list', '-q', '--name', 'w1')).trim().split('\n'), [ids[1]]);
    const limited = await jobctl([...base, 'list', '-l', 'app=wide', '--limit', '2']);
    assert.equal(limited.code, 0, limited.stderr);
    const rows = limited.stdout.toString().trim().split('\n');
    assert.equal(rows.length, 3);
    assert.equal(limited.stderr, 'jobctl: 2 more job(s) match; --limit 0 lists them all\n');
    // Not a terminal: the command is not cut.
    assert.ok(rows[1]?.endsWith(`sh -c '${long}'`), rows[1]);
    const wide = (await ok('list', '-o', 'wide', '-l', 'app=wide', '--name', 'w3')).split('\n');
    assert.match(wide[0] ?? '', /^ID +NAME +OWNER +STATE +EXIT +AGE +LABELS +COMMAND$/);
    assert.match(
      wide[1] ?? '',
      new RegExp(`^${ids[3]} +w3 +alice +finished +0 +\\S+ +app=wide,n=3 +sh -c '${long}'$`),
    );
    // --owner is an admin's filter; a user sees only its own jobs whatever it says.
    const bobs = await jobctl([...base, '--user', 'bob', 'start', '-l', 'app=wide', '--', 'true']);
    const bobId = bobs.stdout.toString().trim();
    const admin = ['--user', 'admin', 'list', '-q', '-l', 'app=wide'];
    assert.deepEqual((await ok(...admin, '--owner', 'bob')).trim().split('\n'), [bobId]);
    assert.equal((await ok(...admin, '--owner', 'alice')).trim().split('\n').length, 4);
    assert.equal(
      (await ok('list', '-q', '-l', 'app=wide', '--owner', 'bob')).trim().split('\n').length,
      4,
    );
    const none = await jobctl([...base, 'list', '-l', 'app=none']);
    assert.deepEqual([none.code, none.stderr], [0, '']);
  });

  test('list --watch and events print each change until Ctrl-C', async () => {
    const before = (await ok('start', '-l', 'app=watch', '--', 'true')).trim();
    await finished(before);
    const list = spawnJobctl([...base, 'list', '--watch', '-l', 'app=watch']);
    const events = spawnJobctl([...base, 'events', '-l', 'app=watch']);
    const admin = spawnJobctl([...base, '--user', 'admin', 'events']);
    await list.waitForOutput(before);
    // `events` prints nothing until a change: wait until the server has all three watches.
    while (server.jobs.watcherCount < 3) await new Promise((resolve) => setTimeout(resolve, 20));
    const id = (
      await ok('start', '--name', 'watched', '-l', 'app=watch', '--', 'sleep', '60')
    ).trim();
    await ok('stop', '--grace', '5s', id);
    await events.waitForOutput(`finished ${id} watched stopped by alice`);
    await list.waitForOutput(`${id}   alice   finished`);
    await admin.waitForOutput(`finished ${id} watched`);
    for (const p of [list, events, admin]) p.child.kill('SIGINT');
    const [l, e] = await Promise.all([list.result, events.result, admin.result]);
    assert.equal(l.code, 130, l.stderr);
    assert.equal(e.code, 130, e.stderr);
    const lines = l.stdout.toString().trim().split('\n');
    assert.match(lines[0] ?? '', /^ID +OWNER +STATE +EXIT +AGE +COMMAND$/);
    assert.match(lines[1] ?? '', new RegExp(`^${before} +alice +finished`));
    assert.deepEqual(
      lines.slice(2).map((line) => line.split(/ +/).slice(0, 3).join(' ')),
      [`${id} alice running`, `${id} alice stopping`, `${id} alice finished`],
    );
    const words = e.stdout
      .toString()
      .trim()
      .split('\n')
      .map((line) => line.split(/ +/).slice(1, 3).join(' '));
    assert.deepEqual(words, [`started ${id}`, `stopping ${id}`, `finished ${id}`]);
    assert.match(e.stdout.toString(), /^\d{4}-\d\d-\d\dT\S+Z started {2}\S+ watched sleep 60$/m);
  });
});
