/**
 * Each owner runs as a uid of its own (owner-ids.ts), with umask 077: real
 * jobs through the real job manager and isolation, as root.
 */
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ErrorCode, JobworkerError } from '../../src/errors.js';
import {
  type JobManager,
  type JobManagerOptions,
  OWNER_UID_RANGE,
  openJobManager,
} from '../../src/job/index.js';
import { requiresRoot } from '../helpers/guards.js';
import { newFixture, readAll, spec } from '../helpers/job-fixture.js';
import { type IsolationFactory, realIsolationFactory } from '../helpers/isolations.js';
import { jobScratchDir } from '../helpers/scratch.js';

const skip = requiresRoot();

/** The real isolation (these tests run as root only). */
function real(): IsolationFactory {
  const factory = realIsolationFactory();
  assert.ok(factory, 'running as root, the real isolation is registered');
  return factory;
}

/** Runs `sh -c script` as `owner` and returns its exit code and stdout. */
async function run(jobs: JobManager, owner: string, script: string) {
  const job = await jobs.start(owner, spec(['sh', '-c', script]));
  const { stdout, finished } = await readAll(jobs, job.id);
  return { exitCode: finished?.exitCode ?? null, stdout: stdout.toString() };
}

/** `id -u`, `id -g` and `id -G` of a job of `owner`. */
async function idsOf(jobs: JobManager, owner: string): Promise<string[]> {
  const { exitCode, stdout } = await run(jobs, owner, 'id -u; id -g; id -G');
  assert.equal(exitCode, 0, stdout);
  return stdout.trim().split('\n');
}

const inRange = (uid: number) => uid >= OWNER_UID_RANGE.first && uid <= OWNER_UID_RANGE.last;

test(
  'two owners run as different uids of the range, gid = uid, no other groups',
  { skip },
  async () => {
    const fx = await newFixture(real());
    try {
      const [aliceUid, aliceGid, aliceGroups] = await idsOf(fx.jobs, 'alice');
      const [bobUid, bobGid, bobGroups] = await idsOf(fx.jobs, 'bob');
      assert.notEqual(aliceUid, bobUid);
      for (const [uid, gid, groups] of [
        [aliceUid, aliceGid, aliceGroups],
        [bobUid, bobGid, bobGroups],
      ]) {
        assert.ok(inRange(Number(uid)), `uid ${uid} is in the range`);
        assert.equal(gid, uid);
        assert.equal(groups, uid);
      }
      assert.deepEqual(await idsOf(fx.jobs, 'alice'), [aliceUid, aliceGid, aliceGroups]);
    } finally {
      await fx.close();
    }
  },
);

test(
  'servers on two state directories of one host give their owners different uids',
  { skip },
  async () => {
    // The host's registry, as two real servers would share it.
    const [one, two] = await Promise.all([newFixture(real()), newFixture(real())]);
    try {
      const [alice] = await idsOf(one.jobs, 'alice');
      const [bob] = await idsOf(two.jobs, 'bob');
      const [aliceOnTwo] = await idsOf(two.jobs, 'alice');
      assert.equal(new Set([alice, bob, aliceOnTwo]).size, 3, `${alice} ${bob} ${aliceOnTwo}`);
    } finally {
      await Promise.all([one.close(), two.close()]);
    }
  },
);

test("bob's job can neither read nor change a file alice's job wrote", { skip }, async () => {
  const fx = await newFixture(real());
  const shared = await jobScratchDir('owners-');
  try {
    await chmod(shared, 0o1777); // both may create files here, as in /var/tmp of a host
    const file = join(shared, 'secret');
    assert.equal((await run(fx.jobs, 'alice', `echo alice > ${file}`)).exitCode, 0);
    assert.equal((await stat(file)).mode & 0o777, 0o600, 'umask 077 by default');
    const read = await run(fx.jobs, 'bob', `cat ${file}`);
    assert.notEqual(read.exitCode, 0);
    assert.equal(read.stdout, '');
    assert.notEqual((await run(fx.jobs, 'bob', `echo bob >> ${file}`)).exitCode, 0);
    assert.notEqual((await run(fx.jobs, 'bob', `chmod 666 ${file}`)).exitCode, 0);
    assert.notEqual((await run(fx.jobs, 'bob', `rm -f ${file}`)).exitCode, 0);
    assert.equal(await readFile(file, 'utf8'), 'alice\n');
    assert.equal((await run(fx.jobs, 'alice', `cat ${file}`)).stdout, 'alice\n');
  } finally {
    await fx.close();
    await rm(shared, { recursive: true, force: true });
  }
});

test('an owner keeps its uid when the manager reopens the state directory', { skip }, async () => {
  const factory = real();
  const stateDir = await mkdtemp(join(tmpdir(), 'jobworker-owners-test-'));
  const open = async () => {
    const isolation = await factory.create(stateDir);
    const jobs = await openJobManager({ stateDir, isolation, log: () => undefined });
    return {
      jobs,
      close: async () => {
        await jobs.shutdown();
        await isolation.close?.();
      },
    };
  };
  try {
    const first = await open();
    const alice = await idsOf(first.jobs, 'alice');
    const bob = await idsOf(first.jobs, 'bob');
    await first.close();
    const second = await open();
    try {
      // bob first: a fresh table would give him alice's uid.
      assert.deepEqual(await idsOf(second.jobs, 'bob'), bob);
      assert.deepEqual(await idsOf(second.jobs, 'alice'), alice);
      const [carol] = await idsOf(second.jobs, 'carol');
      assert.ok(carol !== alice[0] && carol !== bob[0], `carol's uid ${carol} is her own`);
    } finally {
      await second.close();
    }
  } finally {
    await rm(stateDir, { recursive: true, force: true });
  }
});

test(
  'a passwd or group entry inside the range refuses the start, naming it',
  { skip },
  async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'jobworker-owners-test-'));
    const isolation = await real().create(stateDir);
    try {
      const passwdPath = join(stateDir, 'passwd');
      const groupPath = join(stateDir, 'group');
      const inside = OWNER_UID_RANGE.first + 7;
      const rows: [string, string, RegExp][] = [
        [`intruder:x:${inside}:100::/:/bin/false\n`, '', /passwd: entry "intruder" has id/],
        [`stray:x:100:${inside}::/:/bin/false\n`, '', /passwd: entry "stray" has id/],
        ['root:x:0:0::/root:/bin/sh\n', `squatters:x:${inside}:\n`, /group: entry "squatters"/],
      ];
      for (const [passwd, group, message] of rows) {
        await writeFile(passwdPath, `root:x:0:0::/root:/bin/sh\n${passwd}`);
        await writeFile(groupPath, `root:x:0:\n${group}`);
        const options: JobManagerOptions = {
          stateDir,
          isolation,
          owners: { passwdPath, groupPath },
        };
        await assert.rejects(openJobManager(options), (err: unknown) => {
          assert.ok(err instanceof JobworkerError);
          assert.equal(err.code, ErrorCode.Internal);
          assert.match(err.message, message);
          return true;
        });
      }
    } finally {
      await isolation.close?.();
      await rm(stateDir, { recursive: true, force: true });
    }
  },
);

test(
  'an owner beyond the range is refused with resource_exhausted naming it',
  { skip },
  async () => {
    // One uid, the range's last (no live server holds it but one with 670 owners);
    // the host's registry, so that a live holder would be refused, not taken over.
    const first = OWNER_UID_RANGE.last;
    const fx = await newFixture(real(), {
      owners: { range: { first, last: first } },
    });
    try {
      assert.deepEqual(await idsOf(fx.jobs, 'alice'), [
        String(first),
        String(first),
        String(first),
      ]);
      await assert.rejects(fx.jobs.start('bob', spec(['true'])), (err: unknown) => {
        assert.ok(err instanceof JobworkerError);
        assert.equal(err.code, ErrorCode.ResourceExhausted);
        assert.match(err.message, /owner "bob"/);
        return true;
      });
      assert.deepEqual(await fx.jobDirs(), [fx.jobs.list()[0]?.id], 'nothing left of bob');
    } finally {
      await fx.close();
    }
  },
);

test("a uid given to a new owner does not carry the previous owner's keys", { skip }, async () => {
  const uid = OWNER_UID_RANGE.last;
  const options = { owners: { range: { first: uid, last: uid } } };
  const one = await newFixture(real(), options);
  try {
    const planted = await run(one.jobs, 'alice', 'keyctl add user jobworker-test-tok s3cr3t @u');
    assert.equal(planted.exitCode, 0, planted.stdout);
    // Alice's next job finds it: the user keyring outlives her jobs.
    const again = await run(one.jobs, 'alice', 'keyctl search @u user jobworker-test-tok');
    assert.equal(again.exitCode, 0, "the key is in alice's user keyring");
  } finally {
    await one.close(); // removes its state directory: the uid is free again
  }
  const two = await newFixture(real(), options);
  try {
    const [bobUid] = await idsOf(two.jobs, 'bob');
    assert.equal(bobUid, String(uid), 'bob has the uid alice had');
    const found = await run(two.jobs, 'bob', 'keyctl search @u user jobworker-test-tok');
    assert.notEqual(found.exitCode, 0, `bob found alice's key: ${found.stdout}`);
  } finally {
    await two.close();
  }
});
