/**
 * The server's place in the OOM killer's order (proc(5), oom_score_adj):
 * after jobs (1000) and the host's ordinary processes (0), before its fork
 * server and helpers (-900, native/oom.h), which a job's start and output
 * need. Lowering it takes CAP_SYS_RESOURCE, which root lacks in some
 * containers.
 */
import { writeFile } from 'node:fs/promises';

/** The server's oom_score_adj. */
export const SERVER_OOM_SCORE_ADJ = -500;

/**
 * Sets the calling process's oom_score_adj to {@link SERVER_OOM_SCORE_ADJ};
 * resolves false, changing nothing, without CAP_SYS_RESOURCE (EACCES).
 */
export async function protectServerFromOom(): Promise<boolean> {
  try {
    await writeFile('/proc/self/oom_score_adj', String(SERVER_OOM_SCORE_ADJ));
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EACCES') return false;
    throw err;
  }
}
