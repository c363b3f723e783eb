import assert from 'node:assert/strict';
import type { PeerCertificate } from 'node:tls';
import { test } from 'node:test';
import { ErrorCode, JobworkerError } from '../errors.js';
import type { Jobs, JobStatus, ListFilter } from '../job/index.js';
import { isHiddenJob, principalOf, scopeJobs } from './authz.js';
import { StreamQuota } from './quota.js';

const cert = (subject: Record<string, unknown>): PeerCertificate =>
  ({ subject }) as unknown as PeerCertificate;

test('principal: CN is the user, OU the role', () => {
  assert.deepEqual(principalOf(cert({ CN: 'alice', OU: 'user' })), { name: 'alice', role: 'user' });
  assert.deepEqual(principalOf(cert({ CN: 'root_1', OU: 'admin' })), {
    name: 'root_1',
    role: 'admin',
  });
});

test('principal: refusals', () => {
  const cases: [PeerCertificate | undefined, ErrorCode, RegExp][] = [
    [undefined, ErrorCode.Unauthenticated, /no verified client certificate/],
    [cert({ OU: 'user' }), ErrorCode.Unauthenticated, /common name null/],
    [cert({ CN: 'Alice', OU: 'user' }), ErrorCode.Unauthenticated, /"Alice"/],
    [cert({ CN: ['alice', 'bob'], OU: 'user' }), ErrorCode.Unauthenticated, /common name/],
    [cert({ CN: 'alice', OU: 'root' }), ErrorCode.PermissionDenied, /unknown role "root"/],
    [cert({ CN: 'alice' }), ErrorCode.PermissionDenied, /unknown role null/],
    [cert({ CN: 'alice', OU: ['user', 'admin'] }), ErrorCode.PermissionDenied, /unknown role/],
  ];
  for (const [c, code, message] of cases) {
    assert.throws(
      () => principalOf(c),
      (err: unknown) =>
        err instanceof JobworkerError && err.code === code && message.test(err.message),
    );
  }
});

function fakeJobs(): Jobs & { lastFilter: ListFilter | undefined } {
  const job = { id: 'bbbbbbbbbbbbbbbbbbbbbbbbbe', owner: 'bob' } as JobStatus;
  const notFound = (id: string) =>
    new JobworkerError(ErrorCode.NotFound, `no job with id ${id} here`);
  const fake = {
    lastFilter: undefined as ListFilter | undefined,
    start: () => Promise.resolve(job),
    stop: (id: string) => (id === job.id ? Promise.resolve(job) : Promise.reject(notFound(id))),
    wait: (id: string) => (id === job.id ? Promise.resolve(job) : Promise.reject(notFound(id))),
    delete: (id: string) => (id === job.id ? Promise.resolve() : Promise.reject(notFound(id))),
    signal: (id: string) => {
      if (id === job.id) return job;
      throw notFound(id);
    },
    get: (id: string) => {
      if (id === job.id) return job;
      throw notFound(id);
    },
    list: (filter?: ListFilter) => {
      fake.lastFilter = filter;
      return [job];
    },
    output: () => ({
      async *[Symbol.asyncIterator]() {},
    }),
    count: (filter?: ListFilter) => {
      fake.lastFilter = filter;
      return 1;
    },
    idOfName: () => job.id,
    watch: () => ({
      async *[Symbol.asyncIterator]() {},
    }),
    shutdown: () => Promise.resolve(),
    attach: () => {
      throw new JobworkerError(ErrorCode.NotFound, 'not in this test');
    },
  };
  return fake;
}

test("scoped jobs: another user's job and a missing job fail identically", async () => {
  const jobs = fakeJobs();
  const alice = scopeJobs(jobs, { name: 'alice', role: 'user' }, new StreamQuota());
  const errors: unknown[] = [];
  for (const id of ['bbbbbbbbbbbbbbbbbbbbbbbbbe', 'cccccccccccccccccccccccccq']) {
    for (const attempt of [
      () => alice.get(id),
      () => alice.stop(id, {}),
      () => alice.output(id, { follow: false }),
      () => alice.signal(id, 'SIGHUP', false),
      () => alice.wait(id),
      () => alice.delete(id, {}),
    ]) {
      try {
        await attempt();
        assert.fail('allowed');
      } catch (err) {
        assert.ok(err instanceof JobworkerError);
        assert.equal(err.code, ErrorCode.NotFound);
        assert.equal(err.message, `job ${id} not found`);
        errors.push(err);
      }
    }
  }
  // Only the audit log can tell them apart.
  assert.deepEqual(errors.map(isHiddenJob), [
    ...Array<boolean>(6).fill(true),
    ...Array<boolean>(6).fill(false),
  ]);
  const bob = scopeJobs(jobs, { name: 'bob', role: 'user' }, new StreamQuota());
  assert.equal(bob.get('bbbbbbbbbbbbbbbbbbbbbbbbbe').owner, 'bob');
  const admin = scopeJobs(jobs, { name: 'admin', role: 'admin' }, new StreamQuota());
  assert.equal((await admin.stop('bbbbbbbbbbbbbbbbbbbbbbbbbe', {})).owner, 'bob');
});

test("scoped jobs: a user's list is forced to their own jobs; an admin's filter is kept", () => {
  const jobs = fakeJobs();
  scopeJobs(jobs, { name: 'alice', role: 'user' }, new StreamQuota()).list({
    owner: 'bob',
    state: 'running',
  });
  assert.deepEqual(jobs.lastFilter, { owner: 'alice', state: 'running' });
  scopeJobs(jobs, { name: 'admin', role: 'admin' }, new StreamQuota()).list({});
  assert.deepEqual(jobs.lastFilter, {});
});

test('scoped jobs: host_network needs role admin', async () => {
  const spec = { argv: ['true'], env: [], cwd: '/', limits: {}, hostNetwork: true };
  const jobs = fakeJobs();
  await assert.rejects(
    scopeJobs(jobs, { name: 'alice', role: 'user' }, new StreamQuota()).start(
      spec,
      new AbortController().signal,
    ),
    {
      code: ErrorCode.PermissionDenied,
    },
  );
  await scopeJobs(jobs, { name: 'admin', role: 'admin' }, new StreamQuota()).start(
    spec,
    new AbortController().signal,
  );
});

test('an identity cannot hold more output streams than its quota; a closed stream frees its slot', () => {
  const quota = new StreamQuota(2);
  const first = quota.acquire('alice');
  quota.acquire('alice');
  assert.throws(() => quota.acquire('alice'), { code: 'resource_exhausted' });
  // Other identities are not affected.
  quota.acquire('bob')();
  first();
  first(); // idempotent
  assert.equal(quota.openCount('alice'), 1);
  quota.acquire('alice');
  assert.equal(quota.openCount('bob'), 0);
});

test('a wait holds a slot of the same quota while it waits', async () => {
  const quota = new StreamQuota(1);
  const jobs = fakeJobs();
  let finish = (): void => undefined;
  jobs.wait = (id) =>
    new Promise((resolve) => {
      finish = () => {
        resolve(jobs.get(id));
      };
    });
  const bob = scopeJobs(jobs, { name: 'bob', role: 'user' }, quota);
  const waiting = bob.wait('bbbbbbbbbbbbbbbbbbbbbbbbbe');
  assert.equal(quota.openCount('bob'), 1);
  await assert.rejects(bob.wait('bbbbbbbbbbbbbbbbbbbbbbbbbe'), { code: 'resource_exhausted' });
  finish();
  await waiting;
  assert.equal(quota.openCount('bob'), 0);
});
