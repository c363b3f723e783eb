/**
 * Hostile and careless connections against a server in its own process
 * (issue 14, points 1-4), run on its own, not by run.ts:
 *
 *   sudo node --enable-source-maps dist/bench/connections.bench.js
 *
 * 1. N connections that break HTTP/2 (each of the three bad frames in
 *    turn): how long until the server has closed them all, and its open fds
 *    before and after;
 * 2. 2,000 silent TCP connections held: how long a new client takes to make
 *    its first call (or its error);
 * 3. 10,000 followed streams cancelled at random points through one channel
 *    while long followers run on it: the statuses seen;
 * 4. the server's RSS and heap (after a full GC) before and after those
 *    cancels, and after two more rounds. Figures go to docs/benchmarks.md by
 *    hand. BENCH_CANCELS and BENCH_BAD_CONNECTIONS change the sizes.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Metadata, status as Status, type ServiceError } from '@grpc/grpc-js';
import { initCertsDir, loadIdentity } from '../src/api/index.js';
import type { JobServiceClient } from '../src/gen/jobworker/v1/job_service.js';
import { BAD_FRAMES, rawConnect, type RawConnection } from '../tests/helpers/h2-raw.js';
import { cancelAtRandom } from '../tests/helpers/streams.js';
import { startJob } from './lib/calls.js';
import { startBenchServer, type BenchServer, type ChildReply } from './lib/servers.js';

type Memory = Extract<ChildReply, { op: 'memory' }>;
const MB = 1024 * 1024;
const CANCELS = Number(process.env['BENCH_CANCELS'] ?? 10_000);
const BAD = Number(process.env['BENCH_BAD_CONNECTIONS'] ?? 500);
const SILENT = 2000;

function print(line: string): void {
  process.stdout.write(`${line}\n`);
}

async function fds(pid: number): Promise<number> {
  return (await readdir(`/proc/${String(pid)}/fd`)).length;
}

/** 1. Protocol-breaking connections: seconds until the server closed them all (null: not within 60 s). */
async function badFrames(server: BenchServer): Promise<void> {
  const identity = await loadIdentity(server.certsDir, 'alice');
  const before = await fds(server.pid);
  const frames = Object.values(BAD_FRAMES);
  const started = performance.now();
  const connections: RawConnection[] = [];
  // In batches, as a script would: a burst of hundreds of handshakes from one address is itself cut down.
  for (let i = 0; i < BAD; i += 50) {
    connections.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(50, BAD - i) }, async (_, j) => {
          const c = await rawConnect(server.port, identity);
          c.socket.write(frames[(i + j) % frames.length] as Buffer);
          return c;
        }),
      )),
    );
  }
  const opened = await fds(server.pid);
  const all = Promise.all(connections.map((c) => c.closed)).then(() => performance.now());
  const closedAt = await Promise.race([all, sleep(60_000).then(() => null)]);
  const open = connections.filter((c) => !c.socket.destroyed).length;
  await sleep(500);
  const afterFds = await fds(server.pid);
  print(
    `1. ${String(BAD)} protocol-breaking connections: ${closedAt === null ? `${String(open)} still open after 60 s` : `all closed by the server after ${((closedAt - started) / 1000).toFixed(1)} s`}; server fds ${String(before)} before, ${String(opened)} with them open, ${String(afterFds)} after`,
  );
  for (const c of connections) c.socket.destroy();
}

/** 2. Silent TCP connections held: a new client's first call. */
async function silentConnections(server: BenchServer): Promise<void> {
  const sockets: Socket[] = [];
  for (let i = 0; i < SILENT; i++) {
    const socket = netConnect({ host: '127.0.0.1', port: server.port });
    socket.on('error', () => undefined);
    socket.resume(); // reads, so that a close by the server is seen
    sockets.push(socket);
  }
  await Promise.all(sockets.map((s) => new Promise((r) => s.once('connect', r).once('close', r))));
  const client = await server.client();
  const started = performance.now();
  let outcome: string;
  try {
    await new Promise<void>((resolve, reject) => {
      client.getJob(
        { jobId: 'aaaaaaaaaaaaaaaaaaaaaaaaaa' },
        new Metadata(),
        { deadline: Date.now() + 20_000 },
        (err: ServiceError | null) => {
          // NOT_FOUND: the call reached the server.
          if (err === null || err.code === Status.NOT_FOUND) resolve();
          else reject(err);
        },
      );
    });
    outcome = `first call after ${(performance.now() - started).toFixed(0)} ms`;
  } catch (err) {
    outcome = `first call failed after ${(performance.now() - started).toFixed(0)} ms: ${String(err)}`;
  }
  client.close();
  print(`2. ${String(SILENT)} silent TCP connections held: ${outcome}`);
  for (const s of sockets) s.destroy();
}

/** 3. One round of cancels through `client`; returns the statuses seen with their counts. */
async function cancels(client: JobServiceClient, jobId: string): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  let next = 0;
  await Promise.all(
    Array.from({ length: 150 }, async () => {
      while (next < CANCELS) {
        next++;
        const name = Status[await cancelAtRandom(client, jobId)];
        seen.set(name, (seen.get(name) ?? 0) + 1);
      }
    }),
  );
  return seen;
}

/** The server's memory after a full GC, and its peak RSS since the last call. */
async function memory(server: BenchServer): Promise<string> {
  const peak = await server.procStatusBytes('VmHWM');
  await sleep(1000);
  const m = await server.request<Memory>({ op: 'memory', gc: true });
  await server.resetPeak();
  const mb = (bytes: number): string => (bytes / MB).toFixed(0);
  return `peak RSS ${mb(peak)} MB; after a GC: RSS ${mb(m.rss)} MB, heap ${mb(m.heapUsed)} of ${mb(m.heapTotal)} MB committed, external ${mb(m.external)} MB`;
}

async function main(): Promise<void> {
  const certsDir = await mkdtemp(join(tmpdir(), 'jobworker-bench-certs-'));
  try {
    await initCertsDir(certsDir);
    let server = await startBenchServer('jobworker', certsDir);
    try {
      await badFrames(server);
      await silentConnections(server);
    } finally {
      await server.close();
    }
    server = await startBenchServer('jobworker', certsDir);
    try {
      const client = await server.client();
      const job = await startJob(client, ['sh', '-c', 'while :; do echo tick; sleep 0.05; done']);
      print(`4. server with one job followed by nobody: ${await memory(server)}`);
      const warm = await cancels(client, job.id);
      print(
        `3. round 0: ${String(CANCELS)} cancels at random points on one channel: ${JSON.stringify(Object.fromEntries(warm))}`,
      );
      print(`4. server after round 0: ${await memory(server)}`);
      for (let round = 1; round <= 3; round++) {
        const seen = await cancels(client, job.id);
        print(
          `3. round ${String(round)}: ${String(CANCELS)} cancels at random points on one channel: ${JSON.stringify(Object.fromEntries(seen))}`,
        );
        print(`4. server after round ${String(round)}: ${await memory(server)}`);
      }
      client.close();
    } finally {
      await server.close();
    }
  } finally {
    await rm(certsDir, { recursive: true, force: true });
  }
}

await main();
