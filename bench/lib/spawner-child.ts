/**
 * The start-latency baselines that spawn a process, timed in a small process
 * of their own (spawner.ts forks it): (a) spawn /bin/true, (b) the native
 * helper alone, (c) runc run. Node's spawn() forks the calling process, so
 * timed from the bench process, whose size grows with the scenarios run
 * before it, they would pay for that size: in runs 2 and 3 of a
 * BENCH_RUNS=3 run (b) came out slower than (b'), which does more
 * (docs/benchmarks.md, issue 18). Each request is timed here, so the IPC
 * round trip is in no figure. Losing the channel (the parent died) ends it.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { HelperFloor } from './helper-floor.js';
import { makeBundle, type RuncBundle } from './runc.js';
import { msSince } from './stats.js';
import type { SpawnerOptions, SpawnerReply, SpawnerRequest } from './spawner.js';

const options = JSON.parse(process.argv[2] ?? '{}') as SpawnerOptions;

async function timeSpawn(): Promise<number> {
  const start = process.hrtime.bigint();
  const child = spawn('/bin/true', { stdio: 'ignore' });
  await once(child, 'exit');
  return msSince(start);
}

const floor = await HelperFloor.create(options.group, options.limits, options.spec);
let made: RuncBundle | null = null;
let bundle: RuncBundle | null = null;
let runc = 'absent';
let runs = 0;
try {
  if (options.runcPath !== null) {
    made = await makeBundle(options.runcPath, options.limits);
    const code = await made.run(`bench-${String(process.pid)}-check`);
    runc = code === 0 ? 'ok' : `runc run of the bundle exited with ${String(code)}`;
    if (code === 0) bundle = made;
  }
} catch (err) {
  await made?.remove();
  await floor.close();
  throw err;
}

async function timeOne(variant: SpawnerRequest['variant']): Promise<number> {
  if (variant === 'spawn') return timeSpawn();
  if (variant === 'helper') return floor.timeOne();
  if (bundle === null) throw new Error('runc is not usable here');
  const start = process.hrtime.bigint();
  const code = await bundle.run(`bench-${String(process.pid)}-${String(runs++)}`);
  if (code !== 0) throw new Error(`runc run exited with ${String(code)}`);
  return msSince(start);
}

const send = (reply: SpawnerReply): void => {
  process.send?.(reply);
};
let closing = false;
const close = async (): Promise<void> => {
  if (closing) return;
  closing = true;
  await made?.remove();
  await floor.close();
  if (process.connected) process.disconnect();
};
process.on('message', (request: SpawnerRequest | { op: 'close' }) => {
  if (request.op === 'close') {
    void close();
    return;
  }
  timeOne(request.variant).then(
    (ms) => {
      send({ op: 'timed', ms });
    },
    (err: unknown) => {
      send({ op: 'failed', message: String(err) });
    },
  );
});
process.on('disconnect', () => void close());
send({ op: 'ready', runc });
