/**
 * The fork server (`jobexec --serve`) and its helper socket, as root on the
 * real kernel: who may connect, what a bad connection gets, and what happens
 * when the fork server dies under running jobs.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import {
  chmod,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rm,
  stat,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { nodeCgroupFs } from '../../src/isolation/cgroup/fs.js';
import { DEFAULT_HELPER_PATH } from '../../src/isolation/helper-check.js';
import { createIsolation } from '../../src/isolation/index.js';
import {
  encodeLaunch,
  HANDSHAKE,
  type LaunchRequest,
  LIMIT,
  parseReply,
} from '../../src/isolation/protocol.js';
import { requiresRoot } from '../helpers/guards.js';
import {
  type IsolationFixture,
  collect,
  isolationFixture,
  launch,
  run,
  specFor,
} from '../helpers/isolation-fixture.js';
import { jobScratchDir } from '../helpers/scratch.js';

const skip = requiresRoot();
const FORK_SERVER_MODULE = new URL('../../src/isolation/fork-server.js', import.meta.url).href;

/** A launch request without cgroups, as the job's user, for the fork server by hand. */
function specRequest(argv: string[]): LaunchRequest {
  return {
    cgroup1Dirs: [],
    cgroup2Dir: null,
    privateDirs: [],
    hostname: 'x',
    uid: 65534,
    gid: 65534,
    cwd: '/',
    hostNetwork: false,
    stdin: false,
    tty: null,
    argv,
    env: ['PATH=/usr/bin:/bin'],
  };
}

/** Pids of this process's children running `jobexec --serve`. */
async function forkServers(): Promise<number[]> {
  const found: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    const cmdline = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '');
    if (ppid === process.pid && cmdline.split('\0')[1] === '--serve') found.push(Number(name));
  }
  return found;
}

/** The helper socket directories below `stateDir`. */
async function socketDirs(stateDir: string): Promise<string[]> {
  return (await readdir(stateDir)).filter((n) => n.startsWith('.jobexec-'));
}

/** Pids of the helpers our fork servers have forked and not yet reaped. */
/** The pids of a process's children (its main thread's). */
async function childrenOf(pid: number | string): Promise<number[]> {
  const children = await readFile(`/proc/${String(pid)}/task/${String(pid)}/children`, 'utf8');
  return children.split(' ').filter(Boolean).map(Number);
}

async function helpers(): Promise<number[]> {
  const pids: number[] = [];
  for (const server of await forkServers()) pids.push(...(await childrenOf(server)));
  return pids;
}

describe('isolation fork server', { skip }, () => {
  let fx: IsolationFixture;
  let stateDir: string;
  /** The job cgroups below this isolation's group directories. */
  const jobCgroups = async (): Promise<string[]> =>
    (await Promise.all(fx.iso.cgroupGroupDirs.map((dir) => nodeCgroupFs.children(dir)))).flat();
  /** Fork servers replaced (what the metrics count). */
  let restarts = 0;
  before(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'jobworker-fork-'));
    fx = await isolationFixture({
      stateDir,
      onForkServerRestart: () => {
        restarts++;
      },
    });
  });
  after(async () => {
    await fx.dispose();
    assert.deepEqual(await socketDirs(stateDir), [], 'close() removes the socket directory');
    await rm(stateDir, { recursive: true, force: true });
    assert.deepEqual(fx.warnings, []);
  });

  test('starts at the first launch, with its socket in a directory only root can enter', async () => {
    const { report } = await run(fx.iso, ['true']);
    assert.equal(report.exitCode, 0);
    const [dir, ...more] = await socketDirs(stateDir);
    assert.ok(dir !== undefined && more.length === 0, 'one socket directory');
    assert.equal((await stat(join(stateDir, dir))).mode & 0o777, 0o700);
    assert.equal((await forkServers()).length, 1);
  });

  test('a connection with an unknown token is closed, and launches go on', async () => {
    const [dir] = await socketDirs(stateDir);
    assert.ok(dir !== undefined);
    const socket = connect(join(stateDir, dir, 's'));
    socket.on('error', () => undefined);
    socket.end(`${'0'.repeat(32)}o`);
    socket.resume();
    await once(socket, 'close');
    const { report, stdout } = await run(fx.iso, ['echo', 'still fine']);
    assert.deepEqual([report.exitCode, stdout], [0, 'still fine\n']);
  });

  test('a fork server killed under a running job ends it as killed; the next launch starts a new one', async () => {
    const sandbox = await launch(fx.iso, specFor(fx.iso, ['sleep', '1000']));
    const results = collect(sandbox);
    const [pid, ...more] = await forkServers();
    assert.ok(pid !== undefined && more.length === 0);
    process.kill(pid, 'SIGKILL');
    const { report } = await results;
    // The helper died with the fork server (death signal), init with it, the job with init.
    assert.deepEqual([report.exitCode, report.signal], [null, 9]);
    const warning = fx.warnings.splice(0).map((w) => w.message);
    assert.ok(
      warning.some((m) => m.includes('ended without the job')),
      `warned: ${JSON.stringify(warning)}`,
    );
    assert.equal(restarts, 0);
    const again = await run(fx.iso, ['echo', 'restarted']);
    assert.deepEqual([again.report.exitCode, again.stdout], [0, 'restarted\n']);
    assert.equal(restarts, 1, 'the replacement is reported');
    const [restarted] = await forkServers();
    assert.ok(restarted !== undefined && restarted !== pid);
    assert.equal((await socketDirs(stateDir)).length, 1, 'the dead one left no directory');
  });

  test('a launch waiting on a fork server that has closed its replies keeps the process alive until its exit', async () => {
    // A stand-in that closes its reply pipe and exits later: in between, the pending launch
    // is all that is left, as after a SIGKILL whose exit libuv delivers after the pipe's EOF.
    const dir = await mkdtemp(join(stateDir, 'stand-in-'));
    const standIn = join(dir, 'serve');
    await writeFile(standIn, '#!/bin/sh\nexec >&-\nexec sleep 0.2\n', { mode: 0o755 });
    const code = `
      import { ForkServer } from ${JSON.stringify(FORK_SERVER_MODULE)};
      const server = await ForkServer.start(process.argv[1], process.argv[2]);
      const request = ${JSON.stringify(specRequest(['true']))};
      console.log(await server.launch(request).then(() => 'launched', (err) => err.message));
      await server.close();`;
    try {
      const child = spawn(process.execPath, ['--input-type=module', '-e', code, standIn, dir], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      const [exitCode] = (await once(child, 'exit')) as [number | null];
      assert.deepEqual(
        [exitCode, out],
        [0, 'sandbox helper did not start: the sandbox fork server ended\n'],
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  /**
   * Speaks the fork server's protocol (native/protocol.h) with a listener of its
   * own; `dropStdout` closes every stdout connection, as libuv does with a
   * connection it cannot accept (EMFILE). Returns the helper's end and whether
   * the job wrote its marker file.
   */
  async function launchByHand(dropStdout: boolean): Promise<{ ended: string; ran: boolean }> {
    const dir = await mkdtemp(join(stateDir, 'proto-'));
    const scratch = await jobScratchDir('fork-');
    await chmod(scratch, 0o1777); // the job (uid 65534) could write here, if it ran
    const marker = join(scratch, 'ran');
    const held: Socket[] = [];
    const listener = createServer((socket) => {
      held.push(socket);
      socket.on('error', () => undefined);
      socket.once('readable', () => {
        const hello = socket.read(LIMIT.tokenHex + 1) as Buffer | null;
        const kind = hello?.toString('latin1').at(-1);
        if (kind === HANDSHAKE.stdout && dropStdout) socket.destroy();
        if (kind === HANDSHAKE.status) status = socket;
        if (held.length === 3 && !dropStdout) status?.write(HANDSHAKE.held + HANDSHAKE.go);
      });
    });
    let status: Socket | undefined;
    listener.listen(join(dir, 's'));
    await once(listener, 'listening');
    const server = spawn(
      DEFAULT_HELPER_PATH,
      ['--serve', join(dir, 's'), '--parent-pid', String(process.pid)],
      { env: {}, stdio: ['pipe', 'pipe', 'inherit'] },
    );
    try {
      const token = 'ab'.repeat(16);
      server.stdin.write(
        encodeLaunch(token, specRequest(['/bin/sh', '-c', `echo ran > ${marker}`])),
      );
      let replies = '';
      let ended = '';
      for await (const chunk of server.stdout) {
        replies += String(chunk);
        const end = replies
          .split('\n')
          .map(parseReply)
          .find((reply) => reply?.type === 'ended' && reply.token === token);
        if (end?.type === 'ended') {
          ended = `${end.how} ${end.value}`;
          break;
        }
      }
      const ran = await stat(marker).then(
        () => true,
        () => false,
      );
      return { ended, ran };
    } finally {
      server.kill('SIGKILL');
      for (const socket of held) socket.destroy();
      listener.close();
      await rm(dir, { recursive: true, force: true });
      await rm(scratch, { recursive: true, force: true });
    }
  }

  test('a helper runs its job only once the server holds all three connections', async () => {
    assert.deepEqual(await launchByHand(false), { ended: 'exit 0', ran: true });
    assert.deepEqual(await launchByHand(true), { ended: 'exit 125', ran: false });
  });

  test('a launch request the fork server cannot fill a helper from forks nothing', async () => {
    const server = spawn(
      DEFAULT_HELPER_PATH,
      ['--serve', join(stateDir, 'no-socket'), '--parent-pid', String(process.pid)],
      { env: {}, stdio: ['pipe', 'pipe', 'inherit'] },
    );
    try {
      const launch = (token: string, ...fields: string[]) => {
        const body = Buffer.from(['launch', token, ...fields].map((s) => `${s}\0`).join(''));
        const head = Buffer.alloc(LIMIT.lengthBytes);
        head.writeUInt32LE(body.length);
        server.stdin.write(Buffer.concat([head, body]));
      };
      const tokens = ['a1', 'a2', 'a3', 'a4'].map((t) => t.repeat(16));
      launch(tokens[0] ?? '', 'frob', 'x', 'arg', 'true'); // an unknown field
      launch(tokens[1] ?? '', 'uid', 'nobody', 'arg', 'true'); // a bad number
      launch(tokens[2] ?? '', 'hostname', 'x'); // no command
      launch(tokens[3] ?? '', 'arg'); // a field without its value
      let replies = '';
      for await (const chunk of server.stdout) {
        replies += String(chunk);
        if (replies.split('\n').length > tokens.length) break;
      }
      assert.deepEqual(
        replies.trim().split('\n').map(parseReply),
        tokens.map((token) => ({ type: 'failed', token, stage: 'request', errno: 22 })),
      );
    } finally {
      server.kill('SIGKILL');
    }
  });

  test('nothing of the job runs before start(); cancel() leaves no process or cgroup', async () => {
    const scratch = await jobScratchDir('ready-');
    try {
      await chmod(scratch, 0o1777); // the job (uid 65534) could write here, if it ran
      const argv = (name: string) => ['sh', '-c', `echo ran > ${join(scratch, name)}`];
      const ran = (name: string) =>
        stat(join(scratch, name)).then(
          () => true,
          () => false,
        );
      const prepared = await fx.iso.prepare(specFor(fx.iso, argv('late')));
      assert.equal((await jobCgroups()).length, fx.iso.cgroupGroupDirs.length, 'cgroups made');
      const [helper] = await helpers();
      assert.ok(helper !== undefined, 'helper forked');
      // The namespaces are built before start() (overlapping the server's start record):
      // the helper's init already runs in a PID namespace of its own; only the command waits.
      let init: number | undefined;
      for (let waited = 0; init === undefined && waited < 5000; waited += 10) {
        init = (await childrenOf(helper))[0];
        if (init === undefined) await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assert.ok(init !== undefined, 'init cloned before start()');
      assert.notEqual(
        await readlink(`/proc/${String(init)}/ns/pid`),
        await readlink('/proc/self/ns/pid'),
      );
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(await ran('late'), false, 'ran before start()');
      const { report } = await collect(await prepared.start());
      assert.deepEqual([report.exitCode, await ran('late')], [0, true]);
      await prepared.cancel(); // after a start: only waits for it

      const never = await fx.iso.prepare(specFor(fx.iso, argv('never')));
      await Promise.all([never.cancel(), never.cancel()]);
      await never.cancel();
      await assert.rejects(never.start(), { code: 'cancelled' });
      assert.equal(await ran('never'), false);
      assert.deepEqual([await jobCgroups(), await helpers()], [[], []]);

      // A terminating signal to the helper before the go (systemd stopping the server's
      // cgroup, say): the helper ends, and the command never runs.
      const signalled = await fx.iso.prepare(specFor(fx.iso, argv('signalled')));
      const [signalledHelper] = await helpers();
      assert.ok(signalledHelper !== undefined);
      process.kill(signalledHelper, 'SIGTERM');
      await assert.rejects(signalled.start(), { code: 'internal' });
      assert.equal(await ran('signalled'), false);
      assert.deepEqual([await jobCgroups(), await helpers()], [[], []]);

      // An abort between prepare and start: start() refuses and undoes.
      const controller = new AbortController();
      const aborted = await fx.iso.prepare(specFor(fx.iso, argv('aborted')), controller.signal);
      controller.abort();
      await assert.rejects(aborted.start(), { code: 'cancelled' });
      await aborted.cancel();
      assert.equal(await ran('aborted'), false);
      assert.deepEqual([await jobCgroups(), await helpers()], [[], []]);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  });

  test('sweepLeftovers removes the socket directories of dead servers and keeps live ones', async () => {
    await run(fx.iso, ['true']); // this isolation's fork server and socket are up
    const [live] = await socketDirs(stateDir);
    const dead = join(stateDir, '.jobexec-dead01');
    await mkdir(dead, { mode: 0o700 });
    await writeFile(join(dead, 's'), ''); // not a socket: connecting is refused
    const empty = join(stateDir, '.jobexec-dead02');
    await mkdir(empty, { mode: 0o700 });
    const longAgo = new Date(Date.now() - 120_000);
    await utimes(empty, longAgo, longAgo); // no socket for two minutes: dead
    // No socket yet, but just made: maybe a server about to listen; kept.
    const starting = join(stateDir, '.jobexec-start1');
    await mkdir(starting, { mode: 0o700 });
    await fx.iso.sweepLeftovers();
    assert.deepEqual((await socketDirs(stateDir)).sort(), [live, '.jobexec-start1'].sort());
    await rm(starting, { recursive: true });
    const { report } = await run(fx.iso, ['true']);
    assert.equal(report.exitCode, 0);
  });

  test('a state directory too long to hold the socket is refused up front', async () => {
    await assert.rejects(createIsolation({ stateDir: `/${'d'.repeat(100)}` }), {
      code: 'invalid_argument',
      message: /stateDir: \/d+ is too long/,
    });
  });

  test('concurrent launches each get their own output', async () => {
    const results = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        run(fx.iso, ['sh', '-c', `echo out${i}; echo err${i} >&2`]),
      ),
    );
    results.forEach(({ report, stdout, stderr }, i) => {
      assert.deepEqual([report.exitCode, stdout, stderr], [0, `out${i}\n`, `err${i}\n`]);
    });
  });
});
