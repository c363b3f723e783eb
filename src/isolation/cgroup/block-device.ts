/**
 * The block device whose bandwidth the IO limit throttles: the whole disk
 * behind the state directory's file system (the job's writable storage; the
 * rest of the host is read-only to uid 65534 by permissions). blkio/io.max
 * take a whole disk; a partition is mapped to its disk through
 * /sys/dev/block/MAJ:MIN/../dev. File systems without a block device (tmpfs,
 * overlay) yield null, and IO limits are then refused rather than ignored.
 */
import { readFile, stat, access } from 'node:fs/promises';

/** "MAJ:MIN" of the disk backing `path`, or null. */
export async function blockDeviceOf(path: string): Promise<string | null> {
  const { dev } = await stat(path);
  // glibc's major()/minor() encoding of dev_t.
  const major = Number((BigInt(dev) >> 8n) & 0xfffn) | Number((BigInt(dev) >> 32n) & ~0xfffn);
  const minor = Number(BigInt(dev) & 0xffn) | Number((BigInt(dev) >> 12n) & 0xfff00n);
  if (major === 0) return null;
  const sys = `/sys/dev/block/${major}:${minor}`;
  try {
    await access(sys);
  } catch {
    return null;
  }
  try {
    await access(`${sys}/partition`);
    return (await readFile(`${sys}/../dev`, 'utf8')).trim();
  } catch {
    return `${major}:${minor}`;
  }
}
