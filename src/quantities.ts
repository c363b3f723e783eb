/**
 * The grammar of durations (`500ms`, `1m30s`) and CPU amounts (`0.5` cores,
 * `500m`), shared by jobctl's flags and jobworkerd's configuration as
 * src/sizes.ts is for sizes. Each reader returns the value or what is wrong
 * with it, to follow the name and the quoted value in the caller's message.
 */

const durationUnits: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Reads a duration such as `500ms`, `10s`, `1m30s`, `1.5h` as whole
 * milliseconds (`0` alone is allowed). A unit is required, as in Go's
 * time.ParseDuration, because a bare `10` is ambiguous.
 */
export function readDuration(value: string): number | string {
  const text = value.trim();
  if (text === '0') return 0;
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let ms = 0;
  let end = 0;
  for (let m = part.exec(text); m !== null; m = part.exec(text)) {
    ms += Number(m[1]) * (durationUnits[m[2] ?? ''] ?? Number.NaN);
    end = part.lastIndex;
  }
  if (end === 0 || end !== text.length || !Number.isFinite(ms)) {
    return 'is not a duration; use e.g. 500ms, 10s, 1m30s';
  }
  const rounded = Math.round(ms);
  return Number.isSafeInteger(rounded) ? rounded : 'is too long';
}

/**
 * Reads CPU as cores (`0.5`, `2`) or millicores (`500m`, as kubectl) as
 * thousandths of a core, the unit of ResourceLimits.cpu_millis.
 */
export function readCpu(value: string): number | string {
  const text = value.trim();
  const cores = /^\d+(?:\.\d+)?$/.test(text) ? Number(text) * 1000 : Number.NaN;
  const millis = /^\d+m$/.test(text) ? Number(text.slice(0, -1)) : Math.round(cores);
  if (!Number.isFinite(millis)) {
    return 'is not a CPU amount; use cores (0.5, 2) or millicores (500m)';
  }
  if (millis < 1) return 'must be at least 0.001 cores';
  if (millis > 0xffff_ffff) return 'is too large';
  return millis;
}
