import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { JobServiceService } from '../gen/jobworker/v1/job_service.js';
import type { Jobs } from '../job/index.js';
import { CallTracker } from './call.js';
import { jobServiceHandlers } from './job-service.js';
import { StreamQuota } from './quota.js';
import { bindService, type Handlers } from './seam.js';

const deps = {
  jobs: {} as Jobs,
  audit: { record: () => undefined, close: () => undefined },
  log: pino({ level: 'silent' }),
  shutdown: new AbortController().signal,
  calls: new CallTracker(),
  streams: new StreamQuota(),
  connectionSignal: () => undefined,
};

test('every JobService method is bound behind the seam', () => {
  const impl = bindService(JobServiceService, jobServiceHandlers, deps);
  assert.deepEqual(Object.keys(impl).sort(), Object.keys(JobServiceService).sort());
});

test('a method without a handler is refused at start-up', () => {
  const partial = Object.fromEntries(
    Object.entries(jobServiceHandlers).filter(([name]) => name !== 'streamOutput'),
  );
  assert.throws(
    () =>
      bindService(
        JobServiceService,
        partial as unknown as Handlers<typeof JobServiceService>,
        deps,
      ),
    /no handler for \/jobworker\.v1\.JobService\/StreamOutput/,
  );
});
