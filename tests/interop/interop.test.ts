/**
 * Interoperability with another gRPC implementation: Debian's python3-grpcio
 * (gRPC C-core) with stubs generated from proto/ at test time, over mTLS,
 * making a unary call, a followed server stream and a failing call.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { JobServiceClient } from '../../src/gen/jobworker/v1/job_service.js';
import { requiresExecutable } from '../helpers/guards.js';
import { connect, startTestServer, unary, type TestServer } from '../helpers/server.js';

const run = promisify(execFile);
/** Debian's packages install for the system interpreter, not whatever python3 is first on PATH. */
const PYTHON = '/usr/bin/python3';
const PROTOC = '/usr/bin/protoc';
const GRPC_PYTHON_PLUGIN = '/usr/bin/grpc_python_plugin';
/** Repository root, from dist/tests/interop/. */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

const hasGrpc = await run(PYTHON, ['-c', 'import grpc, grpc_tools']).then(
  () => true,
  () => false,
);
const skip =
  (await requiresExecutable(PYTHON)) ||
  (await requiresExecutable(PROTOC)) ||
  (await requiresExecutable(GRPC_PYTHON_PLUGIN)) ||
  (hasGrpc || process.env['CI'] === 'true'
    ? false
    : 'requires python3-grpcio and python3-grpc-tools');

describe('interop with python3-grpcio', { timeout: 120_000, skip }, () => {
  let server: TestServer;
  let alice: JobServiceClient;
  let gen: string;

  before(async () => {
    gen = await mkdtemp(join(tmpdir(), 'jobworker-interop-'));
    const { stdout: include } = await run(PYTHON, [
      '-c',
      'import grpc_tools, os; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))',
    ]);
    // Debian's protoc 3.21 (protobuf-compiler) and grpc_python_plugin (protobuf-compiler-grpc):
    // python3-grpc-tools embeds a protoc too old for proto3 `optional` (Job.exit_code).
    // The well-known types (duration, timestamp) come from grpc_tools' copy.
    await run(PROTOC, [
      `-I${join(ROOT, 'proto')}`,
      `-I${include.trim()}`,
      `--plugin=protoc-gen-grpc_python=${GRPC_PYTHON_PLUGIN}`,
      `--python_out=${gen}`,
      `--grpc_python_out=${gen}`,
      join(ROOT, 'proto/jobworker/v1/job_service.proto'),
    ]);
    server = await startTestServer();
    alice = await connect(server.address, server.certsDir, 'alice');
  });
  after(async () => {
    alice.close();
    await server.close();
    await rm(gen, { recursive: true, force: true });
  });

  for (const user of ['alice', 'carol'] as const) {
    test(`a Python client (${user === 'carol' ? 'Ed25519' : 'P-256'} key) makes unary and streaming calls over mTLS`, async () => {
      // 1 MiB of known output; the Python client follows it to the end.
      const script = 'process.stdout.write(Buffer.alloc(1048576, 120))';
      const started = await unary(alice, 'startJob', {
        command: [process.execPath, '-e', script],
        env: [],
        workingDir: '',
        hostNetwork: false,
      });
      const id = started.job?.id ?? assert.fail('no job');
      // carol may not see alice's job: the same stream for her is NOT_FOUND, so she streams her own.
      let jobId = id;
      if (user === 'carol') {
        const carol = await connect(server.address, server.certsDir, 'carol');
        try {
          const own = await unary(carol, 'startJob', {
            command: [process.execPath, '-e', script],
            env: [],
            workingDir: '',
            hostNetwork: false,
          });
          jobId = own.job?.id ?? assert.fail('no job');
        } finally {
          carol.close();
        }
      }
      const { stdout } = await run(PYTHON, [
        join(ROOT, 'tests/interop/client.py'),
        gen,
        `127.0.0.1:${server.port}`,
        server.certsDir,
        user,
        jobId,
      ]);
      const result = JSON.parse(stdout) as Record<string, unknown>;
      assert.equal(result['owner'], user);
      assert.equal(result['stdout_bytes'], 1048576);
      assert.equal(
        result['stdout_sha256'],
        createHash('sha256').update(Buffer.alloc(1048576, 120)).digest('hex'),
      );
      assert.equal(result['finished_state'], 'JOB_STATE_FINISHED');
      assert.equal(result['finished_exit_code'], 0);
      assert.deepEqual(result['invalid'], {
        code: 'INVALID_ARGUMENT',
        error_code: 'invalid_argument',
      });
    });
  }
});
