/**
 * Scenario 7, logs tail: the last 100 lines of a job's 1 GiB log, written by
 * the server's own log writer from a real job's pipe, as `jobctl logs --tail
 * 100` (a new process, from spawn to exit) and as one StreamOutput call with
 * tail_lines over an open connection, against `tail -n 100` of the same file
 * (coreutils reads it backwards from the end). Samples alternate.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { countStream, startJob, waitFinished } from './lib/calls.js';
import type { BenchContext } from './lib/context.js';
import { startBenchServer } from './lib/servers.js';
import { distributionRow, MiB, msSince, type ScenarioResult } from './lib/stats.js';
import { timeProcess } from './cli.bench.js';

const jobctl = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const TAIL = 100;
const CLI = `jobctl logs --tail ${String(TAIL)} ID, start to exit`;
const RPC = `StreamOutput tail_lines=${String(TAIL)}, open connection`;
const COREUTILS = `tail -n ${String(TAIL)} of the same file`;
const NODE = 'node -e 0';

/** Runs scenario 7. */
export async function run(ctx: BenchContext): Promise<ScenarioResult> {
  const { logsBytes: bytes, logsSamples: samples } = ctx.config;
  // Exactly the output cap at most: the tail is of stored lines, none dropped.
  const server = await startBenchServer('jobworker', ctx.certsDir, { outputCapBytes: bytes });
  const cli: number[] = [];
  const rpc: number[] = [];
  const coreutils: number[] = [];
  const node: number[] = [];
  let lines = 0;
  try {
    const client = await server.client();
    try {
      // Numbered lines of about 100 bytes, written by the job in pipe-sized pieces.
      const script = `seq -f '%012g ${'x'.repeat(86)}' 1 ${String(Math.floor(bytes / 100))}`;
      const id = (await startJob(client, ['sh', '-c', script])).id;
      await waitFinished(client, id);
      const log = join(server.stateDir, 'jobs', id, 'output.log');
      const argv = [
        jobctl,
        ...['--server', server.address, '--tls-server-name', 'localhost'],
        ...['--certs', server.certsDir, '--user', 'alice'],
        ...['logs', '--tail', String(TAIL), id],
      ];
      // Warm the page cache of both (the log's end and jobctl's modules).
      await timeProcess(process.execPath, argv);
      await timeProcess('tail', ['-n', String(TAIL), log]);
      for (let i = 0; i < samples; i++) {
        cli.push(await timeProcess(process.execPath, argv));
        const start = process.hrtime.bigint();
        const got = await countStream(client, { jobId: id, tailLines: TAIL });
        rpc.push(msSince(start));
        lines = got.bytes / 100;
        coreutils.push(await timeProcess('tail', ['-n', String(TAIL), log]));
        node.push(await timeProcess(process.execPath, ['-e', '0']));
      }
    } finally {
      client.close();
    }
  } finally {
    await server.close();
  }
  const cliRow = distributionRow(CLI, 'ms', cli, { vs: COREUTILS });
  const rpcRow = distributionRow(RPC, 'ms', rpc, { vs: COREUTILS });
  return {
    id: 7,
    title: 'Logs tail',
    rows: [
      cliRow,
      rpcRow,
      distributionRow(COREUTILS, 'ms', coreutils, { baseline: true }),
      distributionRow(NODE, 'ms', node, { baseline: true }),
    ],
    goals: [],
    notes: [
      `A job printed ${String(Math.round(bytes / MiB))} MiB of 100-byte numbered lines (seq), stored by the server's log writer; ${String(samples)} alternating samples of each after one warm-up, page cache warm.`,
      `Each StreamOutput call sent ${String(lines)} lines. \`tail\` reads the framed log file itself: the same bytes on disk, headers included.`,
      'The jobctl row includes Node start-up (the node -e 0 row) and the TLS handshake; the StreamOutput row is the server-side cost of finding and sending the tail.',
    ],
  };
}
