/**
 * Scenario 6, CLI: `jobctl status ID` as a new process, from spawn to exit,
 * against `node -e 0` (Node's own start-up, the floor of any Node CLI).
 * Samples of the two alternate.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { startJob, waitFinished } from './lib/calls.js';
import type { BenchContext } from './lib/context.js';
import { startBenchServer } from './lib/servers.js';
import { distributionRow, msSince, type ScenarioResult } from './lib/stats.js';

const jobctl = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const STATUS = 'jobctl status ID, start to exit';
const NODE = 'node -e 0';

/** Runs `argv` with Node; resolves with the milliseconds to its exit. */
function timeNode(argv: string[]): Promise<number> {
  return timeProcess(process.execPath, argv);
}

/** Runs `file` with `argv`, output discarded; resolves with the milliseconds to its exit. */
export async function timeProcess(file: string, argv: string[]): Promise<number> {
  const start = process.hrtime.bigint();
  const child = spawn(file, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  const ms = msSince(start);
  if (code !== 0)
    throw new Error(`${file} ${argv.join(' ')} exited with ${String(code)}: ${stderr}`);
  return ms;
}

/** Runs scenario 6. */
export async function run(ctx: BenchContext): Promise<ScenarioResult> {
  const samples = ctx.config.cliSamples;
  const server = await startBenchServer('jobworker', ctx.certsDir);
  const status: number[] = [];
  const node: number[] = [];
  try {
    const client = await server.client();
    let id: string;
    try {
      id = (await startJob(client, ['/bin/true'])).id;
      await waitFinished(client, id);
    } finally {
      client.close();
    }
    const argv = [
      jobctl,
      '--server',
      server.address,
      '--tls-server-name',
      'localhost',
      '--certs',
      server.certsDir,
      '--user',
      'alice',
      'status',
      id,
    ];
    await timeNode(argv); // warm the page cache
    for (let i = 0; i < samples; i++) {
      status.push(await timeNode(argv));
      node.push(await timeNode(['-e', '0']));
    }
  } finally {
    await server.close();
  }
  const row = distributionRow(STATUS, 'ms', status, { vs: NODE });
  return {
    id: 6,
    title: 'CLI',
    rows: [row, distributionRow(NODE, 'ms', node, { baseline: true })],
    goals: [
      {
        text: 'jobctl status <= 250 ms',
        met: row.value <= 250,
        detail: `p50 ${row.value.toFixed(0)} ms`,
      },
    ],
    notes: [
      `${String(samples)} alternating samples of each, after one warm-up; jobctl is run as \`node dist/src/cli/main.js\` (what the bin's shebang does).`,
    ],
  };
}
