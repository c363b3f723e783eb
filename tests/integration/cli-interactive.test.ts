/**
 * jobctl run -i / -it and attach, as a user runs them: `-i` through pipes,
 * `-it` inside a real pseudo-terminal (a private tmux server), typing into
 * a shell on the job's terminal, resizing the window, detaching with
 * Ctrl-P Ctrl-Q and attaching again.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { jobctl, jobctlPath } from '../helpers/jobctl.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const run = promisify(execFile);

let server: TestServer;
let base: string[];
/** A tmux server of this file's own (-L), so nothing of the user's is touched. */
const socket = `jobworker-test-${randomBytes(4).toString('hex')}`;
const tmux = (...args: string[]) => run('tmux', ['-L', socket, '-f', '/dev/null', ...args]);

before(async () => {
  server = await startTestServer();
  base = ['--server', server.address, '--certs', server.certsDir, '--user', 'alice'];
});
after(async () => {
  await tmux('kill-server').catch(() => undefined);
  await server.close();
});

/** The shell command that runs jobctl with `args` in the pane, then reports how it exited and the terminal's mode. */
function paneCommand(args: string[]): string {
  const quoted = [process.execPath, jobctlPath, ...base, ...args].map((a) => `'${a}'`).join(' ');
  // jobctl passes its own TERM on: one the pane does not have shows that it is the one used.
  return `TERM=vt220 ${quoted}; echo "jobctl-exit-$?"; stty -a | grep -o -- '-\\?icanon'; exec sleep 600`;
}

/** The pane's text (the terminal's screen and its history). */
async function screen(pane: string): Promise<string> {
  return (await tmux('capture-pane', '-p', '-J', '-S', '-200', '-t', pane)).stdout;
}

/**
 * Waits until the pane shows `pattern`. tmux has no notification for a
 * pane's content: this polls capture-pane (100 ms apart, up to 60 s).
 */
async function waitForScreen(pane: string, pattern: RegExp): Promise<RegExpMatchArray> {
  for (let i = 0; i < 600; i++) {
    const match = pattern.exec(await screen(pane));
    if (match !== null) return match;
    await sleep(100);
  }
  throw new Error(`pane never showed ${String(pattern)}:\n${await screen(pane)}`);
}

async function newPane(name: string, args: string[]): Promise<string> {
  await tmux('new-session', '-d', '-s', name, '-x', '100', '-y', '30', paneCommand(args));
  await tmux('set-option', '-t', name, 'status', 'off');
  return name;
}

describe('jobctl interactive', { timeout: 120_000 }, () => {
  test('run -i: stdin reaches the job and its end closes the job stdin', async () => {
    const child = spawn(process.execPath, [jobctlPath, ...base, 'run', '-i', '--', 'sort'], {
      env: { PATH: process.env['PATH'], HOME: process.env['HOME'] },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stdin.end('b\na\nc\n');
    const [code] = (await once(child, 'close')) as [number | null];
    assert.equal(code, 0);
    assert.equal(Buffer.concat(out).toString(), 'a\nb\nc\n');
  });

  test('run without -i: stdin is /dev/null, and the help says how to give input', async () => {
    const r = await jobctl([...base, 'run', '--', 'cat']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.length, 0);
    const help = await jobctl(['run', '--help']);
    assert.match(help.stdout.toString(), /without -i the job's stdin is \/dev\/null/);
    assert.match(help.stdout.toString(), /echo hello \| jobctl run -i -- cat/);
  });

  test('run -it without a terminal is refused', async () => {
    const r = await jobctl([...base, 'run', '-it', '--', 'sh']);
    assert.equal(r.code, 64);
    assert.match(r.stderr, /-it needs a terminal as stdin/);
  });

  test('run -it -- sh in a real terminal: typing, resize, exit code, terminal restored', async () => {
    const pane = await newPane('typing', ['run', '-it', '--', 'sh']);
    await tmux(
      'send-keys',
      '-t',
      pane,
      'tty; stty size; echo typed-$((6*7)); echo "TERM=$TERM"',
      'Enter',
    );
    await waitForScreen(pane, /typed-42/);
    const text = await screen(pane);
    assert.match(text, /^\/dev\/pts\/\d+$/m);
    assert.match(text, /^30 100$/m);
    assert.match(text, /^TERM=vt220$/m);
    await tmux('resize-window', '-t', pane, '-x', '120', '-y', '40');
    await tmux('send-keys', '-t', pane, 'stty size; echo resized-$((1+1))', 'Enter');
    await waitForScreen(pane, /resized-2/);
    assert.match(await screen(pane), /^40 120$/m);
    await tmux('send-keys', '-t', pane, 'exit 5', 'Enter');
    await waitForScreen(pane, /jobctl-exit-5/);
    // Raw mode is off again: canonical input, as before jobctl ran.
    assert.equal((await waitForScreen(pane, /^-?icanon$/m))[0], 'icanon');
  });

  test('Ctrl-P Ctrl-Q detaches; the job runs on and attach comes back to it', async () => {
    const pane = await newPane('detach', ['run', '-it', '--name', 'detachable', '--', 'sh']);
    await tmux('send-keys', '-t', pane, 'echo before-$((2*4))', 'Enter');
    await waitForScreen(pane, /before-8/);
    await tmux('send-keys', '-t', pane, 'C-p', 'C-q');
    const [, id] = (await waitForScreen(pane, /detached from job ([a-z2-7]{26})/)) as [
      string,
      string,
    ];
    await waitForScreen(pane, /jobctl-exit-0/);
    assert.equal((await waitForScreen(pane, /^-?icanon$/m))[0], 'icanon');
    assert.equal(server.jobs.get(id).state, 'running');
    const again = await newPane('again', ['attach', 'detachable']);
    await tmux('send-keys', '-t', again, 'echo again-$((3*3)); exit 3', 'Enter');
    await waitForScreen(again, /again-9/);
    await waitForScreen(again, /jobctl-exit-3/);
    assert.equal(server.jobs.get(id).exitCode, 3);
  });
});
