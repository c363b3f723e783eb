/**
 * Disk bandwidth on the block device backing the state directory (found by
 * {@link ../block-device.ts}); 0 means no limit. v1:
 * blkio.throttle.read_bps_device / write_bps_device "MAJ:MIN BYTES" and
 * blkio.throttle.io_service_bytes (cgroup-v1/blkio-controller.rst; v1 throttles
 * direct IO only: buffered writeback is not attributed to the job). v2: io.max
 * "MAJ:MIN rbps=N wbps=N" and io.stat rbytes/wbytes (cgroup-v2.rst "IO").
 */
import { ErrorCode, JobworkerError } from '../../errors.js';
import type { Limits } from '../types.js';
import type { Controller, ControllerContext } from './controller.js';
import { writeControl } from './fs.js';

function deviceFor(limits: Limits, ctx: ControllerContext): string | null {
  if (limits.ioReadBps === 0 && limits.ioWriteBps === 0) return null;
  if (ctx.ioDevice === null) {
    throw new JobworkerError(
      ErrorCode.InvalidArgument,
      'ioReadBps/ioWriteBps: the state directory is not on a block device, so IO cannot be limited',
    );
  }
  return ctx.ioDevice;
}

/** v1 "blkio" hierarchy. */
export const blkioV1: Controller = {
  name: 'blkio',
  async apply(fs, dir, limits, ctx) {
    const device = deviceFor(limits, ctx);
    if (device === null) return;
    if (limits.ioReadBps > 0) {
      await writeControl(
        fs,
        `${dir}/blkio.throttle.read_bps_device`,
        `${device} ${limits.ioReadBps}`,
      );
    }
    if (limits.ioWriteBps > 0) {
      await writeControl(
        fs,
        `${dir}/blkio.throttle.write_bps_device`,
        `${device} ${limits.ioWriteBps}`,
      );
    }
  },
  async readLimits(fs, dir) {
    const first = async (file: string) =>
      Number((await fs.read(`${dir}/${file}`)).trim().split(/\s+/)[1] ?? 0);
    return {
      ioReadBps: await first('blkio.throttle.read_bps_device'),
      ioWriteBps: await first('blkio.throttle.write_bps_device'),
    };
  },
  async usage(fs, dir) {
    let ioReadBytes = 0;
    let ioWriteBytes = 0;
    for (const line of (await fs.read(`${dir}/blkio.throttle.io_service_bytes`)).split('\n')) {
      const [device, op, value] = line.trim().split(/\s+/);
      if (device === undefined || !device.includes(':') || value === undefined) continue;
      if (op === 'Read') ioReadBytes += Number(value);
      if (op === 'Write') ioWriteBytes += Number(value);
    }
    return { ioReadBytes, ioWriteBytes };
  },
};

/** v2 "io" controller. */
export const ioV2: Controller = {
  name: 'io',
  async apply(fs, dir, limits, ctx) {
    const device = deviceFor(limits, ctx);
    if (device === null) return;
    const bps = (n: number) => (n > 0 ? String(n) : 'max');
    await writeControl(
      fs,
      `${dir}/io.max`,
      `${device} rbps=${bps(limits.ioReadBps)} wbps=${bps(limits.ioWriteBps)}`,
    );
  },
  async readLimits(fs, dir) {
    const line = (await fs.read(`${dir}/io.max`)).trim().split('\n')[0] ?? '';
    const field = (key: string) => {
      const value = new RegExp(`(?:^|\\s)${key}=(\\S+)`).exec(line)?.[1];
      return value === undefined || value === 'max' ? 0 : Number(value);
    };
    return { ioReadBps: field('rbps'), ioWriteBps: field('wbps') };
  },
  async usage(fs, dir) {
    let ioReadBytes = 0;
    let ioWriteBytes = 0;
    for (const line of (await fs.read(`${dir}/io.stat`)).split('\n')) {
      ioReadBytes += Number(/\brbytes=(\d+)/.exec(line)?.[1] ?? 0);
      ioWriteBytes += Number(/\bwbytes=(\d+)/.exec(line)?.[1] ?? 0);
    }
    return { ioReadBytes, ioWriteBytes };
  },
};
