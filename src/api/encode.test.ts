import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  AttachResponse,
  JobServiceService,
  OutputStream,
  StreamOutputResponse,
  type OutputChunk,
} from '../gen/jobworker/v1/job_service.js';
import { jobServiceWire } from './encode.js';

const streams = [
  OutputStream.OUTPUT_STREAM_UNSPECIFIED,
  OutputStream.OUTPUT_STREAM_STDOUT,
  OutputStream.OUTPUT_STREAM_STDERR,
];
// Around every varint width of the length prefixes, and a full 64 KiB read with its framing.
const sizes = [0, 1, 100, 127, 128, 16_370, 16_383, 16_384, 65_536, 2_097_151, 2_097_152];
const offsets = [0, 1, 300, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER];
const times = [undefined, new Date(0), new Date(1_764_768_000_123), new Date(-1_500)];

function* chunks(): Generator<OutputChunk> {
  for (const size of sizes) {
    const data = Buffer.alloc(size, size % 251);
    for (const stream of streams)
      for (const offset of offsets)
        for (const storedAt of times) yield { stream, offset, data, storedAt };
  }
}

test('a chunk is encoded byte for byte as ts-proto encodes it, in both output responses', () => {
  let checked = 0;
  for (const chunk of chunks()) {
    const value: StreamOutputResponse = { event: { $case: 'chunk', value: chunk } };
    const bytes = jobServiceWire.streamOutput.responseSerialize(value);
    assert.deepEqual(bytes, JobServiceService.streamOutput.responseSerialize(value));
    assert.deepEqual(StreamOutputResponse.decode(bytes), value);
    const attached: AttachResponse = { event: { $case: 'chunk', value: chunk } };
    assert.deepEqual(
      jobServiceWire.attach.responseSerialize(attached),
      JobServiceService.attach.responseSerialize(attached),
    );
    checked++;
  }
  assert.equal(checked, sizes.length * streams.length * offsets.length * times.length);
});

test('every other event is ts-proto encoding unchanged', () => {
  const values: StreamOutputResponse[] = [
    {},
    { event: { $case: 'truncated', value: { capBytes: 1024 } } },
  ];
  for (const value of values)
    assert.deepEqual(
      jobServiceWire.streamOutput.responseSerialize(value),
      JobServiceService.streamOutput.responseSerialize(value),
    );
});

test('the same chunk Buffer sent again reuses its encoding, only while the fields around it match', () => {
  const serialize = jobServiceWire.streamOutput.responseSerialize;
  const data = Buffer.alloc(65_536, 7);
  const chunk: OutputChunk = {
    stream: OutputStream.OUTPUT_STREAM_STDOUT,
    offset: 4096,
    data,
    storedAt: new Date(1_000),
  };
  const first = serialize({ event: { $case: 'chunk', value: chunk } });
  // A follower's own copy of the event, the same Buffer in it: the same encoding, not a new one.
  assert.equal(serialize({ event: { $case: 'chunk', value: { ...chunk } } }), first);
  const variants: OutputChunk[] = [
    { ...chunk, offset: 4097 },
    { ...chunk, stream: OutputStream.OUTPUT_STREAM_STDERR },
    { ...chunk, storedAt: new Date(1_001) },
    { ...chunk, storedAt: undefined },
    { ...chunk, data: Buffer.from(data) },
  ];
  for (const changed of variants) {
    const value: StreamOutputResponse = { event: { $case: 'chunk', value: changed } };
    const bytes = serialize(value);
    assert.notEqual(bytes, first);
    assert.deepEqual(bytes, JobServiceService.streamOutput.responseSerialize(value));
  }
  // The other response type encodes it on its own (a different message).
  const attached = jobServiceWire.attach.responseSerialize({
    event: { $case: 'chunk', value: chunk },
  });
  assert.notEqual(attached, first);
});
