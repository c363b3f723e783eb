/**
 * Sizes of a run, from the environment. Defaults follow issue 8 where that
 * fits in a few minutes on 2 cores; BENCH_QUICK=1 shrinks everything for a
 * smoke run of the harness. Each variable overrides one size.
 */
import { MiB } from './stats.js';

/** The sizes every scenario reads. */
export interface BenchConfig {
  readonly quick: boolean;
  /** Scenario ids to run (BENCH_ONLY=1,3); all when unset. */
  readonly only: ReadonlySet<number> | null;
  /** Whole runs in a row (BENCH_RUNS); with more than one, a table of each goal's figure per run and median. */
  readonly runs: number;
  /** 1: samples of each start-latency variant. */
  readonly startSamples: number;
  /** 2: concurrent clients and duration of the start-throughput run. */
  readonly throughputClients: number;
  readonly throughputSeconds: number;
  /** 3: bytes of the single-follower stream. */
  readonly streamBytes: number;
  /** 4: followers, bytes of the big live job, of the small one, and how long followers read (0: to the end). */
  readonly fanoutFollowers: number;
  readonly fanoutBytes: number;
  readonly fanoutSmallBytes: number;
  readonly fanoutWindowSeconds: number;
  /** 5: finished jobs to hold, concurrency of their creation, and samples of each call. */
  readonly stateJobs: number;
  readonly stateConcurrency: number;
  readonly stateSamples: number;
  /** 6: samples of each process start. */
  readonly cliSamples: number;
  /** 7: bytes of the job whose log is tailed, and samples of each tail. */
  readonly logsBytes: number;
  readonly logsSamples: number;
  /** 8: output cap of the server, and seconds the job prints past it while CPU is measured. */
  readonly capBytes: number;
  readonly capSeconds: number;
  /** 9: keystroke round trips of each interactive variant (after a warm-up). */
  readonly attachSamples: number;
  /** Directory for `--cpu-prof` of the server child processes, or null. */
  readonly cpuProfDir: string | null;
  /** Where the report is written; null: not written (BENCH_DOCS=0). */
  readonly docsPath: string | null;
}

function num(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  // Sizes may carry a binary suffix: 512M, 2G.
  const match = /^(\d+(?:\.\d+)?)([KMG]?)$/i.exec(raw.trim());
  if (match === null) throw new Error(`${name}=${JSON.stringify(raw)} is not a number`);
  const scale = { '': 1, K: 1024, M: MiB, G: 1024 * MiB }[(match[2] ?? '').toUpperCase()] ?? 1;
  return Math.round(Number(match[1]) * scale);
}

/** Reads the configuration from `env`. */
export function loadConfig(env: NodeJS.ProcessEnv, defaultDocsPath: string): BenchConfig {
  const quick = env['BENCH_QUICK'] === '1';
  const only =
    env['BENCH_ONLY'] === undefined || env['BENCH_ONLY'] === ''
      ? null
      : new Set(env['BENCH_ONLY'].split(',').map((s) => Number(s.trim())));
  const docs = env['BENCH_DOCS'];
  return {
    quick,
    only,
    runs: Math.max(1, num(env, 'BENCH_RUNS', 1)),
    startSamples: num(env, 'BENCH_START_SAMPLES', quick ? 30 : 200),
    throughputClients: num(env, 'BENCH_THROUGHPUT_CLIENTS', 16),
    throughputSeconds: num(env, 'BENCH_THROUGHPUT_SECONDS', quick ? 3 : 20),
    streamBytes: num(env, 'BENCH_STREAM_BYTES', quick ? 64 * MiB : 1024 * MiB),
    fanoutFollowers: num(env, 'BENCH_FANOUT_FOLLOWERS', 50),
    fanoutBytes: num(env, 'BENCH_FANOUT_BYTES', quick ? 256 * MiB : 2048 * MiB),
    fanoutSmallBytes: num(env, 'BENCH_FANOUT_SMALL_BYTES', MiB),
    fanoutWindowSeconds: num(env, 'BENCH_FANOUT_WINDOW_SECONDS', quick ? 3 : 15),
    stateJobs: num(env, 'BENCH_STATE_JOBS', quick ? 500 : 10_000),
    stateConcurrency: num(env, 'BENCH_STATE_CONCURRENCY', 16),
    stateSamples: num(env, 'BENCH_STATE_SAMPLES', quick ? 20 : 100),
    cliSamples: num(env, 'BENCH_CLI_SAMPLES', quick ? 5 : 20),
    logsBytes: num(env, 'BENCH_LOGS_BYTES', quick ? 64 * MiB : 1024 * MiB),
    logsSamples: num(env, 'BENCH_LOGS_SAMPLES', quick ? 5 : 20),
    capBytes: num(env, 'BENCH_CAP_BYTES', MiB),
    capSeconds: num(env, 'BENCH_CAP_SECONDS', quick ? 3 : 10),
    attachSamples: num(env, 'BENCH_ATTACH_SAMPLES', quick ? 100 : 500),
    cpuProfDir:
      env['BENCH_CPU_PROF'] === undefined || env['BENCH_CPU_PROF'] === ''
        ? null
        : env['BENCH_CPU_PROF'],
    docsPath: docs === '0' ? null : docs === undefined || docs === '' ? defaultDocsPath : docs,
  };
}
