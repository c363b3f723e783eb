/**
 * `npm run bench`: runs every scenario of issue 8 in one process, each with
 * its baseline, prints a table and writes docs/benchmarks.md. Sizes come
 * from the environment (lib/config.ts; BENCH_QUICK=1 for a smoke run,
 * BENCH_ONLY=1,3 for some scenarios). Needs root: jobs run in real cgroups
 * and namespaces. A failed scenario is reported and the others still run.
 */
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initCertsDir } from '../src/api/index.js';
import { loadConfig } from './lib/config.js';
import type { BenchContext } from './lib/context.js';
import { describeMachine, loadAverage } from './lib/machine.js';
import { acrossRuns, markdown, textTable, writeDocs } from './lib/report.js';
import type { ScenarioResult } from './lib/stats.js';
import * as startLatency from './start-latency.bench.js';
import * as startThroughput from './start-throughput.bench.js';
import * as streamThroughput from './stream-throughput.bench.js';
import * as fanOut from './fan-out.bench.js';
import * as stateScale from './state-scale.bench.js';
import * as cli from './cli.bench.js';
import * as logsTail from './logs-tail.bench.js';
import * as capCpu from './cap-cpu.bench.js';
import * as attachLatency from './attach-latency.bench.js';

const scenarios: [number, string, (ctx: BenchContext) => Promise<ScenarioResult>][] = [
  [1, 'Start latency', startLatency.run],
  [2, 'Start throughput', startThroughput.run],
  [3, 'Stream throughput', streamThroughput.run],
  [4, 'Fan-out', fanOut.run],
  [5, 'Scale of state', stateScale.run],
  [6, 'CLI', cli.run],
  [7, 'Logs tail', logsTail.run],
  [8, 'Past the output cap', capCpu.run],
  [9, 'Interactive round trip', attachLatency.run],
];

const docsPath = fileURLToPath(new URL('../../docs/benchmarks.md', import.meta.url));

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('bench: must run as root (jobs run in cgroups and namespaces)\n');
    return 1;
  }
  const config = loadConfig(process.env, docsPath);
  const machine = await describeMachine();
  const startedAt = new Date();
  const started = process.hrtime.bigint();
  const certsDir = await mkdtemp(join(tmpdir(), 'jobworker-bench-certs-'));
  // Interrupted: the server children stop and clean up when their IPC channel
  // closes; only this directory is the bench's own to remove.
  const onInterrupt = (signal: NodeJS.Signals): void => {
    rmSync(certsDir, { recursive: true, force: true });
    process.stderr.write(`bench: interrupted by ${signal}\n`);
    process.exit(130);
  };
  process.once('SIGINT', onInterrupt);
  process.once('SIGTERM', onInterrupt);
  const runs: ScenarioResult[][] = [];
  let results: ScenarioResult[] = [];
  let failed = 0;
  try {
    await initCertsDir(certsDir);
    const ctx: BenchContext = {
      config,
      certsDir,
      progress: (message) => process.stderr.write(`bench: ${message}\n`),
    };
    for (let run = 1; run <= config.runs; run++) {
      results = [];
      runs.push(results);
      if (config.runs > 1) ctx.progress(`run ${String(run)} of ${String(config.runs)}`);
      for (const [id, title, runScenario] of scenarios) {
        if (config.only !== null && !config.only.has(id)) continue;
        ctx.progress(`${String(id)}. ${title} (load ${loadAverage()})`);
        try {
          results.push(await runScenario(ctx));
        } catch (err) {
          failed++;
          const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
          ctx.progress(`${String(id)}. ${title} FAILED: ${message}`);
          results.push({
            id,
            title,
            rows: [],
            goals: [],
            notes: [`FAILED: ${err instanceof Error ? err.message : String(err)}`],
          });
        }
      }
    }
  } finally {
    process.off('SIGINT', onInterrupt);
    process.off('SIGTERM', onInterrupt);
    await rm(certsDir, { recursive: true, force: true });
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  process.stdout.write(`${textTable(results)}\n`);
  const across = runs.length > 1 ? acrossRuns(runs) : null;
  if (across !== null) {
    process.stdout.write(
      `\nAcross ${String(runs.length)} runs\n${across.map((r) => r.join(' | ')).join('\n')}\n`,
    );
  }
  const env = Object.entries(process.env)
    .filter(([k]) => k.startsWith('BENCH_'))
    .map(([k, v]) => `${k}=${v ?? ''}`)
    .join(' ');
  if (config.docsPath !== null) {
    await writeDocs(
      config.docsPath,
      markdown(results, machine, {
        command: 'sudo npm run bench',
        env,
        startedAt,
        seconds,
        loadAtEnd: loadAverage(),
        across,
      }),
    );
    process.stderr.write(`bench: wrote ${config.docsPath} (${seconds.toFixed(0)} s)\n`);
  }
  return failed === 0 ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(
      `bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exitCode = 1;
  },
);
