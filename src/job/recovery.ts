/**
 * Start-up recovery of the state directory, before the manager accepts
 * requests:
 *
 * 1. Sweep leftover job cgroups (kills every process a previous run left, so
 *    that nothing of a lost job is still alive when it is reported lost).
 * 2. Load every record under `<stateDir>/jobs/`. Finished jobs are restored
 *    after a cheap check of their log length against the record. Jobs still
 *    marked running died with the server: their log is scanned (counts and
 *    digests rebuilt, a torn tail cut off) and they are finished as `lost`.
 * 3. Remove half-made job directories (a crash between creating the
 *    directory and writing the first record: no client ever saw the id).
 *
 * Damaged records or logs are reported and skipped, never fatal.
 * TODO(operations): damaged job directories stay where they are (for a
 * human to inspect), are reported at every start and do not count against
 * the disk budget; a quarantine directory with its own retention would
 * bound them. Stray `record.json.*.tmp` files of a crash mid-write are
 * removed with their job directory only.
 */
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Isolation } from '../isolation/index.js';
import type { JobRecord } from './job.js';
import { scanLog } from './log-scan.js';
import { LOG_FILE, scanJobsDir, writeFinalRecord } from './store.js';
import { StoredJob } from './stored-job.js';

/** What start-up recovery found; also logged. */
export interface RecoveryReport {
  /** Finished jobs restored as they were. */
  readonly restored: number;
  /** Jobs that were running when the previous server ended, now finished as lost. */
  readonly lost: number;
  /** Entries skipped because their record or log is damaged, with the reason. */
  readonly damaged: readonly { readonly id: string; readonly reason: string }[];
  /** Half-made job directories (no record) removed. */
  readonly halfMadeRemoved: number;
  /** Job cgroups a previous run left, killed and removed; null when the isolation has no sweep. */
  readonly leftoverCgroups: number | null;
}

/** How recovery reports what it finds. */
export type RecoveryLog = (
  level: 'info' | 'warn',
  message: string,
  fields?: Readonly<Record<string, unknown>>,
) => void;

/** Finishes the record of a job that was running when the server died, from its log. */
async function finishLost(
  dir: string,
  record: JobRecord,
  now: number,
  log: RecoveryLog,
): Promise<JobRecord & { logBytes: number }> {
  const logPath = join(dir, LOG_FILE);
  // A missing log (crash right after mkdir) is an empty one: create it so followers can open it.
  await (await open(logPath, 'a', 0o600)).close();
  const scan = await scanLog(logPath);
  if (scan.damage !== null) {
    log(
      'warn',
      `output log of lost job ${record.id} cut at its last whole record: ${scan.damage}`,
      {
        jobId: record.id,
        validBytes: scan.validLength,
        fileBytes: scan.fileLength,
      },
    );
    // The file then ends where its last whole record ends: committed length = file length.
    const handle = await open(logPath, 'r+');
    try {
      await handle.truncate(scan.validLength);
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
  const final = {
    ...record,
    state: 'finished' as const,
    endReason: 'lost' as const,
    exitCode: null,
    signal: null,
    finishedAtMs: Math.max(now, record.startedAtMs),
    usage: null,
    stdout: {
      ...scan.streams.stdout,
      droppedBytes: record.stdout.droppedBytes,
      incompleteAt: null,
    },
    stderr: {
      ...scan.streams.stderr,
      droppedBytes: record.stderr.droppedBytes,
      incompleteAt: null,
    },
    outputTruncated: scan.truncated,
    logBytes: scan.validLength,
    lastSyncAt: scan.lastSyncAt,
  };
  await writeFinalRecord(dir, final).catch((err: unknown) => {
    // Still listed now; after another restart it is recovered again.
    log('warn', `cannot persist lost job ${record.id}: ${String(err)}`, { jobId: record.id });
  });
  return final;
}

/** Runs start-up recovery of `jobsDir`; returns the restored jobs in start order. */
export async function recover(
  jobsDir: string,
  isolation: Isolation,
  now: number,
  log: RecoveryLog,
): Promise<{ jobs: StoredJob[]; report: RecoveryReport }> {
  let leftoverCgroups: number | null = null;
  if (isolation.sweepLeftovers !== undefined) {
    try {
      leftoverCgroups = await isolation.sweepLeftovers();
      if (leftoverCgroups > 0)
        log('warn', `killed and removed ${leftoverCgroups} job cgroups left by a previous run`, {
          leftoverCgroups,
        });
    } catch (err) {
      log('warn', `cannot sweep leftover job cgroups: ${String(err)}`);
    }
  }
  const jobs: StoredJob[] = [];
  const damaged: { id: string; reason: string }[] = [];
  let lost = 0;
  let halfMadeRemoved = 0;
  for (const entry of await scanJobsDir(jobsDir)) {
    switch (entry.kind) {
      case 'foreign':
        log('warn', `ignoring ${JSON.stringify(entry.name)} in ${jobsDir}: not a job directory`);
        break;
      case 'half-made':
        await rm(entry.dir, { recursive: true, force: true });
        halfMadeRemoved++;
        break;
      case 'damaged':
        damaged.push({ id: entry.id, reason: entry.reason });
        break;
      case 'record': {
        const { record, dir } = entry;
        const logPath = join(dir, LOG_FILE);
        if (record.state !== 'finished') {
          try {
            jobs.push(new StoredJob(await finishLost(dir, record, now, log), dir, logPath));
            lost++;
          } catch (err) {
            damaged.push({ id: entry.id, reason: `output log unreadable: ${String(err)}` });
          }
        } else if (record.logBytes === null || entry.logSize !== record.logBytes) {
          damaged.push({
            id: entry.id,
            reason: `output log is ${entry.logSize ?? 'missing'} bytes, the record says ${record.logBytes ?? '?'}`,
          });
        } else {
          jobs.push(new StoredJob({ ...record, logBytes: record.logBytes }, dir, logPath));
        }
        break;
      }
    }
  }
  for (const d of damaged)
    log('warn', `skipping damaged job ${d.id}: ${d.reason}`, { jobId: d.id });
  jobs.sort((a, b) => a.record.startedAtMs - b.record.startedAtMs);
  const report = { restored: jobs.length - lost, lost, damaged, halfMadeRemoved, leftoverCgroups };
  log('info', 'recovered the job state directory', { ...report, damaged: damaged.length });
  return { jobs, report };
}
