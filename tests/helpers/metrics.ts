/** The metrics endpoint in tests: requests to it, and reading its text format. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';

/** Each metric family of a text exposition: its type and the label names of its samples (`le` aside). */
export function families(text: string): Map<string, { type: string; labels: Set<string> }> {
  const out = new Map<string, { type: string; labels: Set<string> }>();
  for (const line of text.split('\n')) {
    const typed = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (typed?.[1] !== undefined && typed[2] !== undefined) {
      out.set(typed[1], { type: typed[2], labels: new Set() });
      continue;
    }
    const sample = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? /.exec(line);
    if (sample?.[1] === undefined) continue;
    const name = sample[1].replace(/_(bucket|sum|count)$/, '');
    const family = out.get(sample[1]) ?? out.get(name);
    for (const pair of (sample[2] ?? '').matchAll(/(\w+)="/g)) {
      if (pair[1] !== 'le' && pair[1] !== undefined) family?.labels.add(pair[1]);
    }
  }
  return out;
}

/** A sample's value in `text`, e.g. `value(text, 'x_total{reason="a"}')`. */
export function value(text: string, sample: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  assert.ok(line !== undefined, `no sample ${sample}`);
  return Number(line.slice(sample.length + 1));
}

/** One HTTP request to 127.0.0.1:`port`; resolves with the status, headers and body. */
export async function fetchFrom(
  port: number,
  path: string,
  options: { method?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  const req = request({ host: '127.0.0.1', port, path, agent: false, ...options });
  req.end();
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  let body = '';
  res.setEncoding('utf8');
  for await (const chunk of res) body += chunk as string;
  return { status: res.statusCode ?? 0, headers: res.headers, body };
}

/** Whether a TCP connection to 127.0.0.1:`port` is refused. */
export async function refused(port: number): Promise<boolean> {
  const socket = connect({ host: '127.0.0.1', port });
  // events.once('connect') would reject on 'error': one listener each instead.
  const outcome = await new Promise<boolean>((resolve) => {
    socket.once('connect', () => {
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      resolve(err.code === 'ECONNREFUSED');
    });
  });
  socket.destroy();
  return outcome;
}
