/**
 * Human units on the command line: sizes (`256M`, `1.5G`), durations
 * (`500ms`, `1m30s`) and CPU (`0.5` cores, `500m`), parsed strictly with a
 * message naming the flag and the value, and formatted back for reports.
 */
import { readCpu, readDuration } from '../quantities.js';
import { readSize } from '../sizes.js';
import { UsageError } from './failures.js';

/**
 * Parses a size such as `1024B`, `512K`, `256M`, `1.5G` (binary multiples;
 * a trailing `/s` is allowed for bandwidths) into a positive whole number of
 * bytes; the unit is required (src/sizes.ts). Throws a {@link UsageError}
 * naming `flag` and `value`.
 */
export function parseSize(flag: string, value: string): number {
  return orUsage(flag, value, readSize(value));
}

/** The value a shared reader returned, or a {@link UsageError} naming `flag`, `value` and what is wrong. */
function orUsage(flag: string, value: string, read: number | string): number {
  if (typeof read === 'string') throw new UsageError(`${flag} ${quote(value)} ${read}`);
  return read;
}

/**
 * Parses a duration such as `500ms`, `10s`, `1m30s`, `1.5h` into whole
 * milliseconds (`0` alone is allowed; src/quantities.ts).
 */
export function parseDuration(flag: string, value: string): number {
  return orUsage(flag, value, readDuration(value));
}

/** Milliseconds as a protobuf Duration. */
export function durationOf(ms: number): { seconds: number; nanos: number } {
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
}

/** A protobuf Duration in milliseconds. */
export function durationMs(d: { readonly seconds: number; readonly nanos: number }): number {
  return d.seconds * 1000 + d.nanos / 1e6;
}

/**
 * Parses CPU as cores (`0.5`, `2`) or millicores (`500m`, as kubectl) into
 * thousandths of a core, the unit of ResourceLimits.cpu_millis.
 */
export function parseCpu(flag: string, value: string): number {
  return orUsage(flag, value, readCpu(value));
}

/** Parses a positive whole number no larger than `max` (uint32 by default). */
export function parseCount(flag: string, value: string, max = 0xffff_ffff): number {
  const n = /^\d+$/.test(value.trim()) ? Number(value) : Number.NaN;
  if (!(n >= 1 && n <= max)) {
    throw new UsageError(`${flag} ${quote(value)} must be a whole number from 1 to ${max}`);
  }
  return n;
}

/** Formats bytes with binary units: `0 B`, `512 B`, `1.5 KiB`, `256 MiB`. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes / 1024;
  let i = 0;
  while (value >= 1024 && i < units.length - 1) {
    value /= 1024;
    i++;
  }
  // Three significant digits at most, without a trailing ".0".
  const text = value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
  return `${text.replace(/\.?0+$/, '')} ${units[i] ?? ''}`;
}

/** Formats milliseconds for people: `0s`, `750ms`, `1.2s`, `2m05s`, `3h10m`, `2d4h`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${trimZero((ms / 1000).toFixed(ms < 10_000 ? 2 : 1))}s`;
  const s = Math.floor(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m${pad2(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${pad2(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86_400)}d${Math.floor(s / 3600) % 24}h`;
}

/** Formats an age as `docker ps` does, coarsely: `5s`, `3m`, `2h`, `4d`. */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}

function trimZero(text: string): string {
  return text.includes('.') ? text.replace(/\.?0+$/, '') : text;
}

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

function quote(value: string): string {
  return JSON.stringify(value);
}
