/**
 * Figures of a benchmark run: samples summarised as median and tail
 * percentiles, the rows a scenario reports, and the goals it checks. A
 * benchmark never asserts: a missed goal is a figure in the report.
 */

/** A summary of samples (milliseconds, bytes, ... as the row's unit says). */
export interface Summary {
  readonly n: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
}

/** Nearest-rank percentile of sorted samples (`q` in 0..1). */
function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}

/** Median, p90 and p99 of `samples`. */
export function summarize(samples: readonly number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    n: sorted.length,
    p50: percentile(sorted, 0.5),
    p90: percentile(sorted, 0.9),
    p99: percentile(sorted, 0.99),
  };
}

/** One line of a scenario's table. */
export interface Row {
  /** What was measured, e.g. "StartJob -> finished (mTLS)". */
  readonly label: string;
  readonly unit: string;
  /** The figure (a median when there are samples). */
  readonly value: number;
  /** Tail percentiles, when the figure is a distribution. */
  readonly p90?: number;
  readonly p99?: number;
  /** Number of samples or operations behind the figure. */
  readonly n?: number;
  /** Label of the row this one is compared with (same scenario); the ratio is value / baseline. */
  readonly vs?: string;
  /** Marks a baseline row in the table. */
  readonly baseline?: boolean;
}

/** A goal of the issue and whether this run met it (null: not measured in this run). */
export interface Goal {
  readonly text: string;
  readonly met: boolean | null;
  /** The figure compared with the goal, in words, e.g. "p50 2.1x (b)". */
  readonly detail: string;
  /** The number compared and its bound, so that several runs can be summarised by its median. */
  readonly figure?: Figure;
}

/** A goal's number: `value` in `unit`, met when at most `atMost` or at least `atLeast`. */
export interface Figure {
  readonly value: number;
  readonly unit: string;
  readonly atMost?: number;
  readonly atLeast?: number;
}

/** A goal met by `figure` (null when the figure is not a number: not measured). */
export function goalOf(text: string, figure: Figure, detail: string): Goal {
  const { value, atMost, atLeast } = figure;
  const met = Number.isFinite(value)
    ? (atMost === undefined || value <= atMost) && (atLeast === undefined || value >= atLeast)
    : null;
  return { text, met, detail, figure };
}

/** Everything one scenario reports. */
export interface ScenarioResult {
  readonly id: number;
  readonly title: string;
  readonly rows: readonly Row[];
  readonly goals: readonly Goal[];
  /** Facts needed to read the figures: sizes used, what was skipped and why. */
  readonly notes: readonly string[];
}

/** A row of a distribution of `samples`. */
export function distributionRow(
  label: string,
  unit: string,
  samples: readonly number[],
  extra: Partial<Pick<Row, 'vs' | 'baseline'>> = {},
): Row {
  const s = summarize(samples);
  return { label, unit, value: s.p50, p90: s.p90, p99: s.p99, n: s.n, ...extra };
}

/** The ratio of a row to the row it names in `vs`, or null. */
export function ratioOf(row: Row, rows: readonly Row[]): number | null {
  if (row.vs === undefined) return null;
  const base = rows.find((r) => r.label === row.vs);
  if (base === undefined || base.value === 0) return null;
  return row.value / base.value;
}

/** A number with about three significant figures. */
export function fmt(value: number | undefined): string {
  if (value === undefined) return '';
  if (!Number.isFinite(value)) return 'n/a';
  const abs = Math.abs(value);
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

/** Milliseconds since `start` (a `process.hrtime.bigint()` value). */
export function msSince(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e6;
}

/** 1 MiB, for sizes. */
export const MiB = 1024 * 1024;
/** Throughput in MB/s (10^6 bytes per second, as the figures). */
export function mbPerSecond(bytes: number, ms: number): number {
  return bytes / 1e6 / (ms / 1000);
}
