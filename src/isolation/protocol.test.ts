import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as protocol from './protocol.js';
import {
  directArgv,
  encodeControl,
  encodeEnv,
  encodeKill,
  encodeLaunch,
  type LaunchRequest,
  parseHelperLine,
  parseReply,
} from './protocol.js';

/** native/protocol.h's #defines (the include guard aside): name -> string or number. */
function headerDefines(): Map<string, string | number> {
  const path = fileURLToPath(new URL('../../../native/protocol.h', import.meta.url));
  const defines = new Map<string, string | number>();
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const match = /^#define (\w+)(?: (.*))?$/.exec(line);
    if (match?.[1] === undefined || match[1].endsWith('_H')) continue;
    const text = match[2] ?? '';
    const value = /^"([^"\\]*)"$/.exec(text)?.[1] ?? /^'([^'\\])'$/.exec(text)?.[1];
    if (value !== undefined) defines.set(match[1], value);
    else if (/^\d+$/.test(text)) defines.set(match[1], Number(text));
    else assert.fail(`protocol.h: ${match[1]} is not a plain literal: ${text}`);
  }
  return defines;
}

/** protocol.ts's groups, flattened as the header names them: FIELD.cgroup1Dir -> FIELD_CGROUP1_DIR. */
function moduleDefines(): Map<string, string | number> {
  const defines = new Map<string, string | number>();
  for (const [group, words] of Object.entries(protocol)) {
    if (!/^[A-Z]+$/.test(group)) continue;
    for (const [key, value] of Object.entries(words as Record<string, string | number>)) {
      defines.set(`${group}_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`, value);
    }
  }
  return defines;
}

test('native/protocol.h and protocol.ts define the same words and limits', () => {
  const header = headerDefines();
  const module = moduleDefines();
  assert.ok(header.size > 40, 'the header parsed');
  for (const [name, value] of header)
    assert.equal(module.get(name), value, `${name} in protocol.ts`);
  for (const [name, value] of module)
    assert.equal(header.get(name), value, `${name} in protocol.h`);
});

const request: LaunchRequest = {
  cgroup1Dirs: ['/a', '/b'],
  cgroup2Dir: '/u',
  privateDirs: ['/tmp', '/run/lock'],
  hostname: 'job',
  uid: 65534,
  gid: 65533,
  cwd: '/tmp',
  hostNetwork: true,
  stdin: false,
  tty: null,
  argv: ['--cwd', '/etc', '--'],
  env: ['A=1', 'B=x=y'],
};

/** A frame's length prefix and its strings. */
function unframe(frame: Buffer): [number, string[]] {
  const strings = frame.subarray(4).toString().split('\0');
  assert.equal(strings.pop(), '', 'the last string is terminated');
  return [frame.readUInt32LE(0), strings];
}

test('a launch frames its fields as pairs: options, then each arg, then each env entry', () => {
  const frame = encodeLaunch('ab'.repeat(16), request);
  assert.deepEqual(unframe(frame), [
    frame.length - 4,
    [
      ...['launch', 'ab'.repeat(16), 'cgroup1-dir', '/a', 'cgroup1-dir', '/b'],
      ...['cgroup2-dir', '/u', 'private-dir', '/tmp', 'private-dir', '/run/lock'],
      ...['hostname', 'job', 'uid', '65534', 'gid', '65533'],
      ...['cwd', '/tmp', 'host-network', '1', 'arg', '--cwd', 'arg', '/etc', 'arg', '--'],
      ...['env', 'A=1', 'env', 'B=x=y'],
    ],
  ]);
  const local = { ...request, cgroup2Dir: null, hostNetwork: false };
  const [, strings] = unframe(encodeLaunch('ab'.repeat(16), local));
  assert.ok(!strings.includes('cgroup2-dir') && !strings.includes('host-network'));
  assert.deepEqual(unframe(encodeKill('cd'.repeat(16), 9)), [
    42,
    ['kill', 'cd'.repeat(16), '9', '0'],
  ]);
  assert.deepEqual(unframe(encodeKill('cd'.repeat(16), 1, 'all'))[1], [
    'kill',
    'cd'.repeat(16),
    '1',
    '2',
  ]);
});

test('a launch refuses what would shift or overflow the request', () => {
  const refused = (change: Partial<LaunchRequest>, message: RegExp) => {
    assert.throws(() => encodeLaunch('ab'.repeat(16), { ...request, ...change }), {
      code: 'internal',
      message,
    });
  };
  refused({ argv: ['a\0b'] }, /a NUL byte/);
  refused({ cgroup1Dirs: Array.from({ length: 17 }, () => '/c') }, /17 cgroup v1 directories/);
  refused({ privateDirs: Array.from({ length: 65 }, () => '/p') }, /65 private directories/);
  refused({ env: [`A=${'x'.repeat(4 << 20)}`] }, /4194\d+ bytes/);
  assert.throws(() => encodeEnv([`A=${'x'.repeat(1 << 20)}`]), /an environment of/);
});

test('the direct mode takes the same fields as options, then -- and the job argv verbatim', () => {
  assert.deepEqual(directArgv(request, 42), [
    ...['--cgroup1-dir', '/a', '--cgroup1-dir', '/b', '--cgroup2-dir', '/u'],
    ...['--private-dir', '/tmp', '--private-dir', '/run/lock'],
    ...['--hostname', 'job', '--uid', '65534', '--gid', '65533', '--cwd', '/tmp'],
    ...['--host-network', '--parent-pid', '42', '--', '--cwd', '/etc', '--'],
  ]);
  assert.deepEqual(encodeEnv(['A=1', 'B=x=y', 'C=']), Buffer.from('A=1\0B=x=y\0C=\0'));
});

test('stdin is a flag, a terminal its two sizes; a terminal without stdin is refused', () => {
  const interactive = { ...request, hostNetwork: false, stdin: true, tty: { rows: 24, cols: 80 } };
  const [, strings] = unframe(encodeLaunch('ab'.repeat(16), interactive));
  const at = strings.indexOf('stdin');
  assert.deepEqual(strings.slice(at, at + 7), [
    ...['stdin', '1', 'tty-rows', '24', 'tty-cols', '80', 'arg'],
  ]);
  const argv = directArgv(interactive, 7);
  const flag = argv.indexOf('--stdin');
  assert.deepEqual(argv.slice(flag - 1, flag + 7), [
    ...['/tmp', '--stdin', '--tty-rows', '24', '--tty-cols', '80', '--parent-pid', '7'],
  ]);
  assert.throws(() => encodeLaunch('ab'.repeat(16), { ...interactive, stdin: false }), {
    code: 'internal',
    message: /a terminal without stdin/,
  });
  assert.equal(encodeControl({ resize: { rows: 50, cols: 132 } }), 'resize 50 132\n');
  assert.equal(encodeControl('interrupt'), 'interrupt\n');
});

test('status lines parse; anything else is ignored', () => {
  assert.deepEqual(parseHelperLine('started 123'), { type: 'started', pid: 123 });
  assert.deepEqual(parseHelperLine('exit 125'), { type: 'exit', code: 125 });
  assert.deepEqual(parseHelperLine('signal 9'), { type: 'signal', signal: 9 });
  assert.deepEqual(parseHelperLine('error cgroup write 28'), {
    type: 'error',
    stage: 'cgroup',
    syscall: 'write',
    errno: 28,
  });
  for (const junk of ['', 'exit', 'exit -1', 'started x', 'error a b', 'hello 1']) {
    assert.equal(parseHelperLine(junk), null, junk);
  }
});

test('fork server replies parse; anything else is ignored', () => {
  const token = 'ab'.repeat(16);
  assert.deepEqual(parseReply(`forked ${token} 12`), { type: 'forked', token, pid: 12 });
  assert.deepEqual(parseReply(`failed ${token} fork 11`), {
    type: 'failed',
    token,
    stage: 'fork',
    errno: 11,
  });
  assert.deepEqual(parseReply(`ended ${token} exit 125`), {
    type: 'ended',
    token,
    how: 'exit',
    value: 125,
  });
  assert.deepEqual(parseReply(`ended ${token} signal 9`), {
    type: 'ended',
    token,
    how: 'signal',
    value: 9,
  });
  for (const junk of ['', `forked ${token}`, `ended ${token} stopped 1`, `failed ${token} x`]) {
    assert.equal(parseReply(junk), null, junk);
  }
});
