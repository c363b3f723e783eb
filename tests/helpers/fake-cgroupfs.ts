/**
 * A fake cgroup v2 file system in a temp directory, for the v2 code path on
 * hosts without v2 controllers. It refuses what the kernel refuses
 * (Documentation/admin-guide/cgroup-v2.rst):
 * - a controller file of a controller not enabled in the parent's
 *   cgroup.subtree_control does not exist (ENOENT);
 * - enabling a controller not listed in cgroup.controllers: ENOENT;
 * - "no internal processes": enabling controllers in a non-root cgroup that
 *   has processes, or adding a process to a non-root cgroup with controllers
 *   enabled in its subtree_control: EBUSY;
 * - rmdir of a cgroup with processes or child cgroups: EBUSY;
 * - malformed values: EINVAL; writing a read-only file: EACCES.
 * Files are real files, so fs.watch on cgroup.events sees `populated` change.
 */
import { mkdtemp, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type { CgroupFs } from '../../src/isolation/cgroup/fs.js';

/** Files each controller adds to a cgroup, with their initial content. */
const CONTROLLER_FILES: Record<string, Record<string, string>> = {
  cpu: { 'cpu.max': 'max 100000\n', 'cpu.weight': '100\n' },
  memory: {
    'memory.max': 'max\n',
    'memory.swap.max': 'max\n',
    'memory.oom.group': '0\n',
    'memory.events': 'low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n',
    'memory.peak': '0\n',
    'memory.current': '0\n',
  },
  io: { 'io.max': '', 'io.stat': '' },
  pids: { 'pids.max': 'max\n', 'pids.current': '0\n' },
};

const READ_ONLY = new Set([
  'cgroup.controllers',
  'cgroup.events',
  'cpu.stat',
  'memory.events',
  'memory.peak',
  'memory.current',
  'io.stat',
  'pids.current',
]);

const VALID: Record<string, RegExp> = {
  'cpu.max': /^(max|\d+)( \d+)?$/,
  'cpu.weight': /^\d+$/,
  'memory.max': /^(max|\d+)$/,
  'memory.swap.max': /^(max|\d+)$/,
  'memory.oom.group': /^[01]$/,
  'pids.max': /^(max|\d+)$/,
  'io.max': /^\d+:\d+( (rbps|wbps|riops|wiops)=(\d+|max))+$/,
  'cgroup.kill': /^1$/,
  'cgroup.procs': /^\d+$/,
  'cgroup.subtree_control': /^([+-][a-z]+( [+-][a-z]+)*)?$/,
};

function errno(code: string, syscall: string, path: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`${code}: ${syscall} '${path}'`);
  err.code = code;
  err.syscall = syscall;
  err.path = path;
  return err;
}

const words = (text: string) => text.split(/\s+/).filter((w) => w !== '');

/** The fake: `root` is the cgroup2 mount point. */
export class FakeCgroupFs implements CgroupFs {
  readonly root: string;

  private constructor(root: string) {
    this.root = root;
  }

  /**
   * A mount whose root has `controllers` available and enabled for its
   * children, and a cgroup `own` (relative) holding the processes `pids`.
   */
  static async create(options: {
    controllers?: readonly string[];
    own?: string;
    pids?: readonly number[];
  }): Promise<FakeCgroupFs> {
    const fake = new FakeCgroupFs(await mkdtemp(join(tmpdir(), 'fake-cgroupfs-')));
    const controllers = options.controllers ?? ['cpu', 'io', 'memory', 'pids'];
    await fake.populate(fake.root, controllers);
    await writeFile(join(fake.root, 'cgroup.subtree_control'), `${controllers.join(' ')}\n`);
    if (options.own !== undefined) {
      let dir = fake.root;
      for (const part of options.own.split('/').filter((p) => p !== '')) {
        const parent = dir;
        dir = join(dir, part);
        await fake.mkdir(dir);
        if (dir !== join(fake.root, options.own)) {
          await fake.write(
            join(parent, part, 'cgroup.subtree_control'),
            controllers.map((c) => `+${c}`).join(' '),
          );
        }
      }
      for (const pid of options.pids ?? [])
        await fake.write(join(dir, 'cgroup.procs'), String(pid));
    }
    return fake;
  }

  /** Removes the temp directory. */
  async destroy(): Promise<void> {
    await rm(this.root, { recursive: true, force: true });
  }

  private async populate(dir: string, controllers: readonly string[]): Promise<void> {
    const files: Record<string, string> = {
      'cgroup.procs': '',
      'cgroup.events': 'populated 0\nfrozen 0\n',
      'cgroup.kill': '',
      'cgroup.controllers': `${controllers.join(' ')}\n`,
      'cgroup.subtree_control': '\n',
      'cpu.stat': 'usage_usec 0\nuser_usec 0\nsystem_usec 0\n',
    };
    for (const c of controllers) Object.assign(files, CONTROLLER_FILES[c] ?? {});
    for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content);
  }

  private isRoot(dir: string): boolean {
    return dir === this.root;
  }

  private async isCgroup(dir: string): Promise<boolean> {
    return stat(join(dir, 'cgroup.procs')).then(
      () => true,
      () => false,
    );
  }

  private async procs(dir: string): Promise<string[]> {
    return words(await readFile(join(dir, 'cgroup.procs'), 'utf8'));
  }

  async mkdir(dir: string): Promise<void> {
    if (!(await this.isCgroup(dirname(dir)))) throw errno('ENOENT', 'mkdir', dir);
    try {
      await mkdir(dir);
    } catch (err) {
      throw errno((err as NodeJS.ErrnoException).code ?? 'EIO', 'mkdir', dir);
    }
    const enabled = words(await readFile(join(dirname(dir), 'cgroup.subtree_control'), 'utf8'));
    await this.populate(dir, enabled);
  }

  async rmdir(dir: string): Promise<void> {
    if (!(await this.isCgroup(dir))) throw errno('ENOENT', 'rmdir', dir);
    if ((await this.procs(dir)).length > 0 || (await this.children(dir)).length > 0) {
      throw errno('EBUSY', 'rmdir', dir);
    }
    await rm(dir, { recursive: true });
  }

  async children(dir: string): Promise<string[]> {
    const entries = await readdir(dir, { withFileTypes: true });
    return entries.filter((e) => e.isDirectory()).map((e) => e.name);
  }

  async read(file: string): Promise<string> {
    try {
      return await readFile(file, 'utf8');
    } catch (err) {
      throw errno((err as NodeJS.ErrnoException).code ?? 'EIO', 'open', file);
    }
  }

  async write(file: string, value: string): Promise<void> {
    const dir = dirname(file);
    const name = basename(file);
    const exists = await stat(file).then(
      () => true,
      () => false,
    );
    if (!exists) throw errno('ENOENT', 'open', file);
    if (READ_ONLY.has(name)) throw errno('EACCES', 'open', file);
    const text = value.trim();
    if (!(VALID[name]?.test(text) ?? false)) throw errno('EINVAL', 'write', file);
    switch (name) {
      case 'cgroup.subtree_control':
        return this.writeSubtreeControl(dir, text);
      case 'cgroup.procs':
        return this.moveProcess(dir, text);
      case 'cgroup.kill':
        return this.killAll(dir);
      case 'cpu.max': {
        const [quota, period] = text.split(' ');
        if (quota !== 'max' && Number(quota) < 1000) throw errno('EINVAL', 'write', file);
        const current = words(await readFile(file, 'utf8'));
        await writeFile(file, `${quota ?? 'max'} ${period ?? current[1] ?? '100000'}\n`);
        return;
      }
      case 'io.max': {
        // The kernel keeps one line per device with every key spelt out.
        const [device, ...pairs] = text.split(' ');
        const keys: Record<string, string> = {
          rbps: 'max',
          wbps: 'max',
          riops: 'max',
          wiops: 'max',
        };
        for (const pair of pairs) {
          const [k, v] = pair.split('=');
          if (k !== undefined && v !== undefined) keys[k] = v;
        }
        const line = `${device ?? ''} ${Object.entries(keys)
          .map(([k, v]) => `${k}=${v}`)
          .join(' ')}`;
        await writeFile(file, `${line}\n`);
        return;
      }
      default:
        await writeFile(file, `${text}\n`);
    }
  }

  private async writeSubtreeControl(dir: string, text: string): Promise<void> {
    const available = words(await readFile(join(dir, 'cgroup.controllers'), 'utf8'));
    const enabled = new Set(words(await readFile(join(dir, 'cgroup.subtree_control'), 'utf8')));
    const file = join(dir, 'cgroup.subtree_control');
    for (const token of words(text)) {
      const controller = token.slice(1);
      if (!available.includes(controller)) throw errno('ENOENT', 'write', file);
      if (token.startsWith('+')) {
        if (!this.isRoot(dir) && (await this.procs(dir)).length > 0) {
          throw errno('EBUSY', 'write', file);
        }
        enabled.add(controller);
      } else {
        enabled.delete(controller);
      }
    }
    await writeFile(file, `${[...enabled].join(' ')}\n`);
    for (const child of await this.children(dir)) {
      await writeFile(join(dir, child, 'cgroup.controllers'), `${[...enabled].join(' ')}\n`);
      for (const c of enabled) {
        for (const [name, content] of Object.entries(CONTROLLER_FILES[c] ?? {})) {
          const path = join(dir, child, name);
          if (
            !(await stat(path).then(
              () => true,
              () => false,
            ))
          )
            await writeFile(path, content);
        }
      }
    }
  }

  private async moveProcess(dir: string, pid: string): Promise<void> {
    const subtree = words(await readFile(join(dir, 'cgroup.subtree_control'), 'utf8'));
    if (!this.isRoot(dir) && subtree.length > 0)
      throw errno('EBUSY', 'write', join(dir, 'cgroup.procs'));
    await this.forEachCgroup(this.root, async (cg) => {
      const procs = await this.procs(cg);
      if (procs.includes(pid))
        await this.setProcs(
          cg,
          procs.filter((p) => p !== pid),
        );
    });
    await this.setProcs(dir, [...(await this.procs(dir)), pid]);
  }

  private async killAll(dir: string): Promise<void> {
    await this.forEachCgroup(dir, (cg) => this.setProcs(cg, []));
  }

  private async setProcs(dir: string, procs: readonly string[]): Promise<void> {
    await writeFile(join(dir, 'cgroup.procs'), procs.map((p) => `${p}\n`).join(''));
    await writeFile(
      join(dir, 'cgroup.events'),
      `populated ${procs.length > 0 ? 1 : 0}\nfrozen 0\n`,
    );
  }

  private async forEachCgroup(dir: string, fn: (dir: string) => Promise<void>): Promise<void> {
    await fn(dir);
    for (const child of await this.children(dir)) await this.forEachCgroup(join(dir, child), fn);
  }

  /** Test hook: puts a (pretend) process into a cgroup, as a running job would be. */
  addProcess(dir: string, pid: number): Promise<void> {
    return this.moveProcess(dir, String(pid));
  }

  /** Test hook: sets a read-only kernel file (a usage counter). */
  async setKernelFile(file: string, content: string): Promise<void> {
    await writeFile(file, content);
  }

  /** Whether `dir` still exists. */
  exists(dir: string): Promise<boolean> {
    return stat(dir).then(
      () => true,
      () => false,
    );
  }
}
