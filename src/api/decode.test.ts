import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import {
  JobServiceService,
  StartJobRequest,
  StopJobRequest,
} from '../gen/jobworker/v1/job_service.js';
import { decodeRequest, Undecodable } from './decode.js';

const limits = { cpuMillis: 0, memoryBytes: 0, ioReadBps: 0, ioWriteBps: 0, pidsMax: 0 };
const startBytes = (over: Partial<typeof limits>): Buffer =>
  Buffer.from(
    StartJobRequest.encode(
      StartJobRequest.fromPartial({ command: ['true'], limits: { ...limits, ...over } }),
    ).finish(),
  );
const message = (value: unknown): string => {
  assert.ok(value instanceof Undecodable, `decoded: ${JSON.stringify(value)}`);
  return value.message;
};

test('a 64-bit integer beyond 2^53-1 is refused naming the field and its value', () => {
  assert.equal(
    message(
      decodeRequest(
        JobServiceService.startJob.requestDeserialize,
        startBytes({ memoryBytes: 2 ** 60 }),
      ),
    ),
    'limits.memory_bytes: 1152921504606846976 is beyond 9007199254740991 (2^53-1), the largest integer this server takes',
  );
  // The largest uint64, written by hand.
  const max = Buffer.from(
    new BinaryWriter()
      .uint32(26)
      .string('x')
      .uint32(24)
      .uint64(2n ** 64n - 1n)
      .finish(),
  );
  assert.match(
    message(decodeRequest(JobServiceService.streamOutput.requestDeserialize, max)),
    /^stdout_offset: 18446744073709551615 is beyond /,
  );
  const grace = StopJobRequest.encode({
    jobId: 'a'.repeat(26),
    gracePeriod: { seconds: -(2 ** 60), nanos: 0 },
  }).finish();
  assert.match(
    message(decodeRequest(JobServiceService.stopJob.requestDeserialize, Buffer.from(grace))),
    /^grace_period\.seconds: -1152921504606846976 is beyond /,
  );
  assert.match(
    message(
      decodeRequest(
        JobServiceService.startJob.requestDeserialize,
        startBytes({ ioReadBps: 2 ** 54, ioWriteBps: 2 ** 55 }),
      ),
    ),
    /^limits\.io_read_bps, limits\.io_write_bps are beyond /,
  );
});

test('2^53-1 decodes as given; bytes that are no message are still refused', () => {
  const max = Number.MAX_SAFE_INTEGER;
  const request = decodeRequest(
    JobServiceService.startJob.requestDeserialize,
    startBytes({ ioWriteBps: max }),
  );
  assert.ok(!(request instanceof Undecodable));
  assert.equal((request as StartJobRequest).limits?.ioWriteBps, max);
  assert.match(
    message(
      decodeRequest(JobServiceService.startJob.requestDeserialize, Buffer.from([0x0a, 0x05])),
    ),
    /^request could not be decoded: /,
  );
});
