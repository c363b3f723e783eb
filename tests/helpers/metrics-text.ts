/** Reading Prometheus's text exposition format in tests. */
import assert from 'node:assert/strict';

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
