/**
 * Scenario 9, interactive round trip (issue 15): one byte written to a job's
 * terminal through Attach over mTLS until its echo comes back as an output
 * chunk, one keystroke at a time, for
 *   - `cat` on a terminal in its default (canonical) mode: the pty's line
 *     discipline echoes the byte (cat sees nothing before a newline);
 *   - `cat` on a terminal in raw mode without echo: cat reads each byte and
 *     writes it back, as a shell's line editor does;
 * against the baseline server's Attach (same TLS listener, same grpc-js,
 * same message types and sizes) echoing each stdin message from memory.
 * The variants run interleaved, one keystroke each per round, so that a
 * change of the machine's load hits all of them alike.
 */
import { Metadata, type ClientDuplexStream, type ServiceError } from '@grpc/grpc-js';
import type {
  AttachRequest,
  AttachResponse,
  JobServiceClient,
} from '../src/gen/jobworker/v1/job_service.js';
import { connected, startRequest } from './lib/calls.js';
import type { BenchContext } from './lib/context.js';
import { startBenchServer, type BenchServer } from './lib/servers.js';
import { distributionRow, msSince, type ScenarioResult } from './lib/stats.js';

const PTY = 'Attach keystroke -> echo (pty echoes, cat)';
const RAW = 'Attach keystroke -> echo (raw pty, cat echoes)';
const GRPC = 'grpc-js bidi echo (mTLS)';
const WARMUP = 50;
/** Bytes a canonical-mode line holds before the line discipline drops input (Linux N_TTY_BUF_SIZE - 1). */
const LINE_BYTES = 4095;
/** What the raw variant's job prints once its terminal is raw, before cat runs. */
const READY = 'raw-ready';
const TERMINAL = { rows: 24, cols: 80, term: 'xterm' };

/** One attachment that echoes what it is sent. */
interface Echo {
  /** Sends `byte` and resolves with the milliseconds until exactly it came back. */
  roundTrip(byte: number): Promise<number>;
  /** Cancels the call (detaches) and waits for its end. */
  close(): Promise<void>;
}

/**
 * Attaches to `jobId` as its writer and, when `ready` is given, waits for
 * that text in the output before the first round trip.
 */
async function openEcho(
  client: JobServiceClient,
  jobId: string,
  ready: string | null,
): Promise<Echo> {
  const call: ClientDuplexStream<AttachRequest, AttachResponse> = client.attach();
  let attached = false;
  let seen = '';
  let failure: Error | null = null;
  // The one waiter of the call's next event (one round trip is in flight at a time).
  let wake: (() => void) | null = null;
  const ended = new Promise<void>((resolve) => {
    call.on('error', (err: ServiceError) => {
      failure = err;
      wake?.();
      resolve();
    });
    call.on('end', () => {
      failure ??= new Error(`Attach to ${jobId} ended`);
      wake?.();
      resolve();
    });
  });
  call.on('data', (message: AttachResponse) => {
    const event = message.event;
    if (event?.$case === 'attached') attached = true;
    else if (event?.$case === 'chunk') seen += Buffer.from(event.value.data).toString('latin1');
    wake?.();
  });
  const until = async (done: () => boolean): Promise<void> => {
    while (!done()) {
      if (failure !== null) throw failure;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
      wake = null;
    }
  };
  const close = async (): Promise<void> => {
    call.cancel();
    await ended;
  };
  try {
    call.write({ event: { $case: 'start', value: { jobId, write: true } } });
    await until(() => attached);
    if (ready !== null) await until(() => seen.includes(ready));
  } catch (err) {
    await close();
    throw err;
  }
  return {
    async roundTrip(byte) {
      seen = '';
      const start = process.hrtime.bigint();
      call.write({ event: { $case: 'stdin', value: Buffer.of(byte) } });
      await until(() => seen.length > 0);
      const ms = msSince(start);
      const sent = String.fromCharCode(byte);
      if (seen !== sent)
        throw new Error(`sent ${JSON.stringify(sent)}, got ${JSON.stringify(seen)} back`);
      return ms;
    },
    close,
  };
}

/** StartJob of `argv` on a terminal; resolves with its id. */
function startOnTerminal(client: JobServiceClient, argv: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    client.startJob(
      { ...startRequest(argv), terminal: TERMINAL },
      new Metadata(),
      {},
      (err: ServiceError | null, res) => {
        if (err !== null) reject(err);
        else if (res.job === undefined) reject(new Error('StartJob answered without a job'));
        else resolve(res.job.id);
      },
    );
  });
}

/** StopJob, without a grace period worth waiting for (cat ends at SIGTERM). */
function stopJob(client: JobServiceClient, jobId: string): Promise<void> {
  return new Promise((resolve, reject) => {
    client.stopJob({ jobId, gracePeriod: { seconds: 1, nanos: 0 } }, (err: ServiceError | null) => {
      if (err !== null) reject(err);
      else resolve();
    });
  });
}

/** Runs scenario 9. */
export async function run(ctx: BenchContext): Promise<ScenarioResult> {
  const samples = ctx.config.attachSamples;
  if (samples + WARMUP > LINE_BYTES)
    throw new Error(
      `BENCH_ATTACH_SAMPLES=${String(samples)} exceeds ${String(LINE_BYTES - WARMUP)}: the canonical variant types into one terminal line of ${String(LINE_BYTES)} bytes`,
    );
  const times = new Map<string, number[]>([PTY, RAW, GRPC].map((k) => [k, []]));
  // Every resource below is released in reverse order of creation, whatever fails.
  const servers: BenchServer[] = [];
  const clients: JobServiceClient[] = [];
  const jobs: [JobServiceClient, string][] = [];
  const echoes: Echo[] = [];
  try {
    const jobworker = await startBenchServer('jobworker', ctx.certsDir, {
      cpuProfDir: ctx.config.cpuProfDir,
    });
    servers.push(jobworker);
    const baseline = await startBenchServer('baseline', ctx.certsDir);
    servers.push(baseline);
    const client = await jobworker.client();
    clients.push(client);
    const base = await baseline.client();
    clients.push(base);
    await Promise.all([connected(client), connected(base)]);
    const ptyJob = await startOnTerminal(client, ['cat']);
    jobs.push([client, ptyJob]);
    const rawJob = await startOnTerminal(client, [
      'sh',
      '-c',
      `stty raw -echo && echo ${READY} && exec cat`,
    ]);
    jobs.push([client, rawJob]);
    const list: [string, Echo][] = [];
    for (const [name, open] of [
      [PTY, () => openEcho(client, ptyJob, null)],
      [RAW, () => openEcho(client, rawJob, READY)],
      [GRPC, () => openEcho(base, 'echo', null)],
    ] as const) {
      const echo = await open();
      echoes.push(echo);
      list.push([name, echo]);
    }
    for (let round = 0; round < WARMUP + samples; round++) {
      // Letters only: no byte the terminal treats as a control character.
      const byte = 0x61 + (round % 26);
      for (const [name, echo] of list) {
        const ms = await echo.roundTrip(byte);
        if (round >= WARMUP) times.get(name)?.push(ms);
      }
      if (round % 100 === 99) ctx.progress(`interactive round trip: round ${String(round + 1)}`);
    }
  } finally {
    for (const echo of echoes.reverse()) await echo.close();
    for (const [c, id] of jobs.reverse()) await stopJob(c, id).catch(() => undefined);
    for (const c of clients.reverse()) c.close();
    for (const s of servers.reverse()) await s.close();
  }
  return {
    id: 9,
    title: 'Interactive round trip',
    rows: [
      distributionRow(PTY, 'ms', times.get(PTY) ?? [], { vs: GRPC }),
      distributionRow(RAW, 'ms', times.get(RAW) ?? [], { vs: GRPC }),
      distributionRow(GRPC, 'ms', times.get(GRPC) ?? [], { baseline: true }),
    ],
    goals: [],
    notes: [
      `${String(samples)} round trips per variant after ${String(WARMUP)} warm-up rounds, interleaved, one byte in flight at a time: a 1-byte stdin message in, a 1-byte output chunk back.`,
      'One client (this process) and one TLS connection per server; each server in its own process. The jobs are `cat` on a 24x80 terminal, its output recorded to the log as any job output.',
      '`ssh -tt localhost` is not measured: it needs an sshd with a key authorised for root on this shared machine.',
    ],
  };
}
