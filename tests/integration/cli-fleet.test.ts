/**
 * jobctl's contexts file and `run` on several contexts, end to end: three
 * real servers on loopback with one test PKI, a contexts file in a temp
 * directory, jobctl as a child process.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { JobStatus } from '../../src/job/index.js';
import { jobctl, spawnJobctl } from '../helpers/jobctl.js';
import { makeTestPki } from '../helpers/pki.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let root: string;
let certs: string;
let configFile: string;
const servers: Record<'a' | 'b' | 'c', TestServer> = {} as never;
/** A TCP listener that accepts and never answers: a host whose jobworkerd hangs. */
let silent: Server;
const silentSockets = new Set<Socket>();
/** A port nothing listens on. */
let closedPort: number;
let env: NodeJS.ProcessEnv;

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : 0);
    });
  });
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'jobctl-fleet-'));
  certs = join(root, 'certs');
  await makeTestPki(certs);
  for (const name of ['a', 'b', 'c'] as const) {
    servers[name] = await startTestServer({ certsDir: certs });
  }
  silent = createServer((socket) => {
    silentSockets.add(socket);
    socket.on('error', () => undefined);
  });
  const silentPort = await listen(silent);
  const probe = createServer();
  closedPort = await listen(probe);
  await new Promise((resolve) => probe.close(resolve));
  configFile = join(root, 'jobworker', 'config');
  env = { JOBCTL_CONFIG: configFile };
  // Written by jobctl itself, as a user would; relative paths are the file's.
  const set = async (name: string, server: string, labels: string[]) => {
    const r = await jobctl(
      [
        'config',
        'set-context',
        name,
        '--server',
        server,
        '--certs',
        certs,
        '--user',
        'alice',
        ...labels,
      ],
      { env },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), `Context "${name}" created.\n`);
  };
  await set('a', servers.a.address, ['-l', 'env=prod']);
  await set('b', servers.b.address, ['-l', 'env=prod', '-l', 'zone=2']);
  await set('c', servers.c.address, ['-l', 'env=dev']);
  await set('down', `localhost:${closedPort}`, []);
  await set('silent', `localhost:${silentPort}`, []);
});

after(async () => {
  for (const socket of silentSockets) socket.destroy();
  await new Promise((resolve) => silent.close(resolve));
  await Promise.all(Object.values(servers).map((s) => s.close()));
  await rm(root, { recursive: true, force: true });
});

/** alice's newest job on `server`. */
function newest(server: TestServer): JobStatus {
  const [job] = server.jobs.list({ owner: 'alice' });
  assert.ok(job !== undefined, 'a job was started');
  return job;
}

/** The summary's rows: context -> [job id, result]. */
function summaryRows(stderr: string): Map<string, [string, string]> {
  const lines = stderr.split('\n');
  const header = lines.findIndex((l) => /^CONTEXT\s+JOB\s+RESULT$/.test(l));
  assert.notEqual(header, -1, stderr);
  const rows = new Map<string, [string, string]>();
  for (const line of lines.slice(header + 1)) {
    const match = /^(\S+)\s+(\S+)\s+(.*)$/.exec(line);
    if (match !== null) rows.set(match[1] ?? '', [match[2] ?? '', match[3] ?? '']);
  }
  return rows;
}

describe('contexts file', { timeout: 120_000 }, () => {
  test('set-context writes the file with mode 0600; get-contexts lists it', async () => {
    assert.equal((await stat(configFile)).mode & 0o777, 0o600);
    const r = await jobctl(['config', 'get-contexts'], { env });
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.toString().trimEnd().split('\n');
    assert.match(lines[0] ?? '', /^CURRENT\s+NAME\s+SERVER\s+USER\s+LABELS$/);
    assert.match(
      lines[2] ?? '',
      new RegExp(`^\\s+b\\s+${servers.b.address}\\s+alice\\s+env=prod,zone=2$`),
    );
    const names = await jobctl(['config', 'get-contexts', '-o', 'name'], { env });
    assert.equal(names.stdout.toString(), 'a\nb\nc\ndown\nsilent\n');
  });

  test('use-context changes the current context, which commands then use', async () => {
    const use = await jobctl(['config', 'use-context', 'b'], { env });
    assert.equal(use.code, 0, use.stderr);
    assert.equal((await jobctl(['config', 'current-context'], { env })).stdout.toString(), 'b\n');
    const started = await jobctl(['start', '--', 'true'], { env });
    assert.equal(started.code, 0, started.stderr);
    assert.equal(newest(servers.b).id, started.stdout.toString().trim());
    // --context beats the current context, JOBCTL_SERVER beats only the current one.
    const onC = await jobctl(['--context', 'c', 'start', '--', 'true'], {
      env: { ...env, JOBCTL_SERVER: servers.a.address },
    });
    assert.equal(newest(servers.c).id, onC.stdout.toString().trim(), onC.stderr);
    const onA = await jobctl(['start', '--', 'true'], {
      env: { ...env, JOBCTL_SERVER: servers.a.address },
    });
    assert.equal(newest(servers.a).id, onA.stdout.toString().trim(), onA.stderr);
    // And a flag beats everything.
    const flagged = await jobctl(
      ['--context', 'c', '--server', servers.a.address, 'start', 'true'],
      { env },
    );
    assert.equal(newest(servers.a).id, flagged.stdout.toString().trim(), flagged.stderr);
    assert.equal((await jobctl(['config', 'use-context', 'nope'], { env })).code, 78);
  });

  test('a bad file is refused naming the file, the key and the reason', async () => {
    const bad = join(root, 'bad.toml');
    const cases: [string, RegExp][] = [
      ['[contexts.a]\nserver = "h:1"\nsever = "x"\n', /contexts\.a\.sever: unknown key/],
      ['[contexts.a]\nserver = "nohost"\n', /contexts\.a\.server: "nohost" is not HOST:PORT/],
      ['[contexts.a]\nserver = "h:1"\nuser = 7\n', /contexts\.a\.user: .*expected string/],
      [
        'current-context = "x"\n[contexts.a]\nserver = "h:1"\n',
        /current-context: names "x", which is not a context/,
      ],
      ['[contexts.a]\nserver = "h:1"\nlabels = { "-x" = "1" }\n', /contexts\.a\.labels key "-x"/],
      ['[contexts.a]\nserver = "h:1"\ncert = "a.crt"\n', /contexts\.a\.key: is missing/],
      ['[contexts.a\n', new RegExp(`${bad}:1:\\d+: `)],
    ];
    for (const [text, reason] of cases) {
      await writeFile(bad, text);
      const r = await jobctl(['--config', bad, 'list'], { env });
      assert.equal(r.code, 78, r.stderr);
      assert.ok(r.stderr.startsWith(`jobctl: ${bad}`), r.stderr);
      assert.match(r.stderr, reason);
    }
  });

  test('commands other than run take one context', async () => {
    const r = await jobctl(['list', '--context', 'a,b'], { env });
    assert.equal(r.code, 64, r.stderr);
    assert.match(r.stderr, /takes one context, and 2 were given \(a, b\); only run takes several/);
  });
});

describe('run on several contexts', { timeout: 120_000 }, () => {
  test('each line comes whole, prefixed with its context; a summary; exit 0', async () => {
    const script =
      "echo one; printf 'par'; sleep 0.1; echo tial; printf '\\033[2Jesc\\n'; echo err >&2; printf last";
    const r = await jobctl(['run', '--context', 'a,b,c', '--', 'sh', '-c', script], { env });
    assert.equal(r.code, 0, r.stderr);
    const out = r.stdout
      .toString()
      .split('\n')
      .filter((l) => l !== '');
    for (const name of ['a', 'b', 'c']) {
      const mine = out.filter((l) => l.startsWith(`${name}: `));
      // A host's own lines keep their order; the last one, unfinished, is ended.
      assert.deepEqual(mine, [
        `${name}: one`,
        `${name}: partial`,
        `${name}: \\x1b[2Jesc`,
        `${name}: last`,
      ]);
      assert.match(r.stderr, new RegExp(`^${name}: err$`, 'm'));
    }
    assert.equal(out.length, 12, r.stdout.toString());
    const rows = summaryRows(r.stderr);
    for (const name of ['a', 'b', 'c'] as const) {
      const job = newest(servers[name]);
      assert.deepEqual(rows.get(name), [job.id, 'exited with code 0']);
    }
  });

  test('--no-prefix prints the lines alone; a selector picks contexts by label', async () => {
    const r = await jobctl(
      ['run', '--no-prefix', '--context-selector', 'env=prod', '--', 'echo', 'hi'],
      { env },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'hi\nhi\n');
    assert.deepEqual([...summaryRows(r.stderr).keys()], ['a', 'b']);
    const none = await jobctl(['run', '--context-selector', 'env=qa', '--', 'true'], { env });
    assert.equal(none.code, 78);
    assert.match(none.stderr, /matches no context/);
  });

  test("the exit status is the first failing context's", async () => {
    const r = await jobctl(['run', '--context', 'c,a', '--', 'sh', '-c', 'exit 3'], { env });
    assert.equal(r.code, 3, r.stderr);
    const rows = summaryRows(r.stderr);
    assert.equal(rows.get('a')?.[1], 'exited with code 3');
    assert.equal(rows.get('c')?.[1], 'exited with code 3');
  });

  test('a host that is down or silent is reported; the others run; exit non-zero', async () => {
    const r = await jobctl(['run', '--context', 'a,silent,down,b', '--', 'echo', 'ran'], { env });
    // The first failure in the order given: silent (no answer: unavailable, 69).
    assert.equal(r.code, 69, r.stderr);
    assert.equal(r.stdout.toString().split('\n').sort().join('\n'), '\na: ran\nb: ran');
    const rows = summaryRows(r.stderr);
    assert.equal(rows.get('a')?.[1], 'exited with code 0');
    assert.equal(rows.get('b')?.[1], 'exited with code 0');
    assert.deepEqual(rows.get('down'), [
      '-',
      `cannot reach jobworkerd at localhost:${closedPort}: connection refused; is it running?`,
    ]);
    assert.equal(rows.get('silent')?.[0], '-');
    assert.match(
      rows.get('silent')?.[1] ?? '',
      /^cannot connect to jobworkerd at localhost:\d+ within 10s/,
    );
  });

  test('Ctrl-C stops the job on every host', async () => {
    const run = spawnJobctl(
      ['run', '--context', 'a,b,c', '--', 'sh', '-c', 'echo ready; exec sleep 600'],
      { env },
    );
    for (const name of ['a', 'b', 'c']) await run.waitForOutput(`${name}: ready\n`);
    run.child.kill('SIGINT');
    const r = await run.result;
    // sleep dies of the SIGTERM that StopJob sends: 128 + 15.
    assert.equal(r.code, 143, r.stderr);
    assert.match(
      r.stderr,
      /^jobctl: stopping the jobs on 3 contexts; press Ctrl-C again to detach$/m,
    );
    const rows = summaryRows(r.stderr);
    for (const name of ['a', 'b', 'c'] as const) {
      const job = newest(servers[name]);
      assert.equal(job.state, 'finished');
      assert.equal(job.endReason, 'stopped');
      assert.equal(job.stoppedBy, 'alice');
      assert.equal(rows.get(name)?.[0], job.id);
    }
    const text = await readFile(configFile, 'utf8');
    assert.match(text, /\[contexts\.a\]/, 'the file is untouched by run');
  });
});
