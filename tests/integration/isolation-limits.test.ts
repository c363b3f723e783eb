/**
 * Limits enforced by the kernel on a real sandbox (root, real cgroups). Rates
 * are measured by the kernel's own counters or by the job's tool, and checked
 * with wide tolerances: these tests prove the limit holds, not its precision.
 */
import assert from 'node:assert/strict';
import { chmod, rm } from 'node:fs/promises';
import { describe, test } from 'node:test';
import { requiresRoot } from '../helpers/guards.js';
import { run, suiteIsolation } from '../helpers/isolation-fixture.js';
import { jobScratchDir } from '../helpers/scratch.js';

const MiB = 1024 * 1024;

describe('isolation limits', { skip: requiresRoot() }, () => {
  const fx = suiteIsolation();

  test('a child allocating past the memory limit is OOM-killed and reported', async (t) => {
    // The job forks at once; the child (tail, buffering one endless line) is
    // the one killed, so the report must come from the cgroup's counter.
    const { report, stdout } = await run(
      fx.iso,
      ['sh', '-c', '(head -c 300000000 /dev/zero | tail > /dev/null); echo after'],
      { limits: { memoryBytes: 64 * MiB } },
    );
    assert.equal(report.oomKilled, true);
    t.diagnostic(`memory: peak ${report.usage.peakMemoryBytes} bytes at a 64 MiB limit`);
    assert.ok(report.usage.peakMemoryBytes <= 64 * MiB, String(report.usage.peakMemoryBytes));
    assert.ok(report.usage.peakMemoryBytes > 32 * MiB, String(report.usage.peakMemoryBytes));
    // The layouts differ here, by design (RFD "OOM order"): cgroup v2's
    // memory.oom.group=1 kills every process of the job, init included;
    // v1 (and hybrid, whose memory controller is v1) kills the offender only,
    // and the shell goes on.
    const outcome = [report.exitCode, report.signal, stdout];
    t.diagnostic(`${fx.iso.cgroupKind}: exit ${report.exitCode}, signal ${report.signal}`);
    if (fx.iso.cgroupKind === 'v2') assert.deepEqual(outcome, [null, 9, '']);
    else assert.deepEqual(outcome, [0, null, 'after\n']);
  });

  test('a job within its memory limit is not reported as OOM-killed', async () => {
    const { report } = await run(
      fx.iso,
      ['sh', '-c', 'head -c 10000000 /dev/zero | tail > /dev/null'],
      {
        limits: { memoryBytes: 64 * MiB },
      },
    );
    assert.deepEqual([report.exitCode, report.oomKilled], [0, false]);
  });

  test('the CPU quota holds two busy loops near half a core', async (t) => {
    const started = process.hrtime.bigint();
    const { report } = await run(
      fx.iso,
      ['sh', '-c', 'for i in 1 2; do timeout 3 sh -c "while :; do :; done" & done; wait'],
      { limits: { cpuMillis: 500 } },
    );
    const wallNs = Number(process.hrtime.bigint() - started);
    const cores = report.usage.cpuTimeNs / wallNs;
    t.diagnostic(`cpu: ${cores.toFixed(3)} cores at a 0.5 core limit`);
    // Unlimited, two loops on this 2-core machine would use up to 2 cores.
    assert.ok(cores <= 0.5 * 1.3, `used ${cores.toFixed(3)} cores`);
    assert.ok(cores >= 0.1, `used only ${cores.toFixed(3)} cores`);
  });

  test('an O_DIRECT write is throttled near the IO limit', async (t) => {
    const dir = await jobScratchDir('io-');
    await chmod(dir, 0o777);
    try {
      // v1 throttles direct IO only; buffered writeback is not attributed to the job.
      const { report, stderr } = await run(
        fx.iso,
        ['dd', 'if=/dev/zero', `of=${dir}/f`, 'bs=1M', 'count=24', 'oflag=direct'],
        { limits: { ioWriteBps: 8 * MiB } },
      );
      assert.equal(report.exitCode, 0, stderr);
      // dd's own figure: "25165824 bytes (25 MB, 24 MiB) copied, 3.0 s, 8.4 MB/s"
      const match = /(\d+) bytes .* copied, ([\d.]+) s/.exec(stderr);
      assert.ok(match, stderr);
      const rate = Number(match[1]) / Number(match[2]);
      t.diagnostic(`io: ${(rate / MiB).toFixed(2)} MiB/s at an 8 MiB/s limit`);
      assert.ok(rate <= 8 * MiB * 1.3, `wrote at ${(rate / MiB).toFixed(2)} MiB/s`);
      assert.ok(report.usage.ioWriteBytes >= 24 * MiB, String(report.usage.ioWriteBytes));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('pids.max stops a bounded fork loop at the limit', async () => {
    // dash exits 2 when fork fails; init and sh take 2 of the 20 tasks.
    const { report, stdout } = await run(
      fx.iso,
      ['sh', '-c', 'i=0; while [ $i -lt 100 ]; do sleep 30 & i=$((i+1)); echo $i; done'],
      { limits: { pidsMax: 20 } },
    );
    assert.equal(report.exitCode, 2);
    assert.equal(stdout.trim().split('\n').at(-1), '18');
  });
});
