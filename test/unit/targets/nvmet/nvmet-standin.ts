// A STAND-IN for /sys/kernel/config/nvmet: a temp directory plus a ConfigfsIo imitating the nvmet
// rules the helper depends on. It is not configfs. Modelled:
//  - mkdir of a subsystem, namespace or port creates its default groups and attribute files;
//    a new subsystem starts with attr_allow_any_host = 1 here (the worst case), so a helper that
//    does not write 0 is caught;
//  - EINVAL linking a host into allowed_hosts while attr_allow_any_host = 1;
//  - EBUSY writing device_path/device_uuid/device_nguid while the namespace is enabled;
//  - EACCES writing a port's addr_* while a subsystem is linked to it;
//  - rmdir refused (ENOTEMPTY) while user-made children or links remain;
//  - an operation log and failure injection.
// NOT modelled: controllers and connections (what unlinking a host or a port does to them), value
// parsing, enable opening the device, module loading.
import * as fsp from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { direntKind, type ConfigfsIo } from '../../../../drivers/targets/lio/configfs.js';

const ZERO = '00000000-0000-0000-0000-000000000000';

function autoFor(rel: string): { dirs: string[]; files: Record<string, string> } | null {
  const p = rel.split('/');
  if (p.length === 2 && p[0] === 'subsystems') return { dirs: ['allowed_hosts', 'namespaces'], files: { attr_allow_any_host: '1', attr_serial: 'abc', attr_version: '1.3' } };
  if (p.length === 4 && p[0] === 'subsystems' && p[2] === 'namespaces') {
    return { dirs: [], files: { device_path: '', device_uuid: ZERO, device_nguid: ZERO, enable: '0', revalidate_size: '', buffered_io: '0', ana_grpid: '1' } };
  }
  if (p.length === 2 && p[0] === 'ports') return { dirs: ['subsystems', 'referrals', 'ana_groups'], files: { addr_trtype: '', addr_adrfam: '', addr_traddr: '', addr_trsvcid: '', addr_treq: 'not specified' } };
  if (p.length === 2 && p[0] === 'hosts') return { dirs: [], files: {} };
  return null;
}

function err(code: string, path: string): NodeJS.ErrnoException {
  const e = new Error(`${code}: ${path}`) as NodeJS.ErrnoException;
  e.code = code;
  return e;
}

export type Op = 'mkdir' | 'rmdir' | 'writeFile' | 'symlink' | 'unlink';

export class NvmetStandIn {
  readonly log: string[] = [];
  failOn: ((op: Op, rel: string) => string | null) | null = null;
  private readonly auto = new Map<string, Set<string>>();

  constructor(readonly root: string) {}

  static async make(root: string): Promise<NvmetStandIn> {
    for (const d of ['hosts', 'ports', 'subsystems']) await fsp.mkdir(join(root, d), { recursive: true });
    return new NvmetStandIn(root);
  }

  rel(p: string): string {
    return relative(this.root, p);
  }

  private check(op: Op, p: string): void {
    const code = this.failOn?.(op, this.rel(p)) ?? null;
    if (code) {
      this.log.push(`!${op} ${this.rel(p)}`);
      throw err(code, p);
    }
    this.log.push(`${op} ${this.rel(p)}`);
  }

  private async text(p: string): Promise<string> {
    return (await fsp.readFile(p, 'utf8')).trim();
  }

  readonly io: ConfigfsIo = {
    mkdir: async (p) => {
      this.check('mkdir', p);
      await fsp.mkdir(p);
      const a = autoFor(this.rel(p));
      const names = new Set<string>();
      for (const d of a?.dirs ?? []) {
        await fsp.mkdir(join(p, d));
        names.add(d);
      }
      for (const [f, v] of Object.entries(a?.files ?? {})) {
        await fsp.writeFile(join(p, f), `${v}\n`);
        names.add(f);
      }
      this.auto.set(p, names);
    },
    rmdir: async (p) => {
      this.check('rmdir', p);
      const names = this.auto.get(p) ?? new Set<string>();
      const blocking: string[] = [];
      for (const c of await fsp.readdir(p)) {
        if (!names.has(c)) blocking.push(c);
        else if ((await fsp.lstat(join(p, c))).isDirectory() && (await fsp.readdir(join(p, c))).length > 0) blocking.push(`${c}/…`);
      }
      if (blocking.length > 0) throw err('ENOTEMPTY', `${p} (${blocking.join(',')})`);
      await fsp.rm(p, { recursive: true });
      this.auto.delete(p);
    },
    writeFile: async (p, d) => {
      this.check('writeFile', p);
      const rel = this.rel(p).split('/');
      const file = basename(p);
      if (rel[0] === 'subsystems' && rel[2] === 'namespaces' && /^device_/.test(file) && (await this.text(join(dirname(p), 'enable'))) === '1') throw err('EBUSY', p);
      if (rel[0] === 'ports' && /^addr_/.test(file) && (await fsp.readdir(join(dirname(p), 'subsystems'))).length > 0) throw err('EACCES', p);
      if (rel[0] === 'subsystems' && file === 'attr_allow_any_host' && d.trim() === '1' && (await fsp.readdir(join(dirname(p), 'allowed_hosts'))).length > 0) throw err('EINVAL', p);
      await fsp.writeFile(p, d);
    },
    readFile: (p) => fsp.readFile(p, 'utf8'),
    readdir: (p) => fsp.readdir(p),
    entries: async (p) => (await fsp.readdir(p, { withFileTypes: true })).map((d) => ({ name: d.name, kind: direntKind(d) })),
    symlink: async (t, p) => {
      this.check('symlink', p);
      const rel = this.rel(p).split('/');
      if (rel[0] === 'subsystems' && rel[2] === 'allowed_hosts' && (await this.text(join(this.root, 'subsystems', rel[1]!, 'attr_allow_any_host'))) === '1') throw err('EINVAL', p);
      await fsp.symlink(t, p);
    },
    unlink: async (p) => {
      this.check('unlink', p);
      await fsp.unlink(p);
    },
    readlink: (p) => fsp.readlink(p),
    kind: async (p) => {
      try {
        return direntKind(await fsp.lstat(p));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw e;
      }
    },
  };

  async read(rel: string): Promise<string> {
    return this.text(join(this.root, rel));
  }

  async exists(rel: string): Promise<boolean> {
    return (await this.io.kind(join(this.root, rel))) !== null;
  }

  /** Wipes the tree as a reboot would (keeps the top-level groups). */
  async clear(): Promise<void> {
    for (const d of ['hosts', 'ports', 'subsystems']) {
      await fsp.rm(join(this.root, d), { recursive: true, force: true });
      await fsp.mkdir(join(this.root, d));
    }
    this.auto.clear();
  }
}
