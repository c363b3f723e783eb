/**
 * `--name` and `-l/--label K=V` of `start` and `run`, turned into a
 * JobMetadata. Only the shape is checked here; the server applies the
 * naming rules and names the label it refuses.
 */
import type { JobMetadata } from '../gen/jobworker/v1/job_service.js';
import { UsageError } from './failures.js';

/** parseArgs options of the job's metadata. */
export const metadataOptions = {
  name: { type: 'string' },
  label: { type: 'string', short: 'l', multiple: true },
} as const;

/** The request's `metadata` field: absent when neither flag was given. */
export function metadataOf(values: { name?: string | undefined; label?: string[] | undefined }): {
  metadata?: JobMetadata;
} {
  if (values.name === undefined && values.label === undefined) return {};
  const labels: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const pair of values.label ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--label ${JSON.stringify(pair)} is not KEY=VALUE`);
    const key = pair.slice(0, eq);
    if (Object.hasOwn(labels, key))
      throw new UsageError(`--label ${JSON.stringify(key)} is given twice`);
    labels[key] = pair.slice(eq + 1);
  }
  return { metadata: { name: values.name ?? '', labels: { ...labels } } };
}
