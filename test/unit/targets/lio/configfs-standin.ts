// A STAND-IN for /sys/kernel/config/target: a temp directory plus a ConfigfsIo that imitates a
// few configfs behaviours the LIO layer depends on. It is not configfs. Modelled:
//  - mkdir of a known object creates its default groups/attributes (attrib/, auth/, np/, enable...)
//    like the kernel does, and rmdir removes them with the object;
//  - rmdir refuses (ENOTEMPTY) while user-made children (dirs, links) remain, so removal order
//    is checked;
//  - an operation log and failure injection per operation/path.
// NOT modelled: attribute value validation and side effects (enable=1 on a TPG without portals,
// udev_path checks, auth only taking effect at login), symlink semantics (configfs links are
// checked by the kernel: a LUN link must point at a storage object, a mapped-LUN link at a TPG
// LUN, and readlink returns a relative path; here they are plain symlinks), the refusal to
// remove a storage object still linked by a LUN (EBUSY), the session teardown on ACL removal,
// module auto-loading on mkdir iscsi/, and file writes creating files (configfs has fixed files).
import * as fsp from 'node:fs/promises';
import { join, relative } from 'node:path';
import { direntKind, type ConfigfsIo } from '../../../../drivers/targets/lio/configfs.js';

type Auto = { dirs: string[]; files: Record<string, string> };

function autoFor(rel: string): Auto | null {
  const p = rel.split('/');
  const n = p.length;
  if (n === 2 && p[0] === 'core' && /^iblock_\d+$/.test(p[1]!)) return { dirs: [], files: { hba_info: '', hba_mode: '0' } };
  if (n === 3 && p[0] === 'core') return { dirs: ['attrib', 'pr', 'statistics', 'wwn', 'alua'], files: { control: '', udev_path: '', enable: '0', info: '' } };
  if (n === 1 && p[0] === 'iscsi') return { dirs: ['discovery_auth'], files: { lio_version: 'stand-in' } };
  if (n === 2 && p[0] === 'iscsi') return { dirs: ['fabric_statistics'], files: {} };
  if (n === 3 && p[0] === 'iscsi' && /^tpgt_\d+$/.test(p[2]!)) {
    return { dirs: ['acls', 'attrib', 'auth', 'lun', 'np', 'param', 'fabric_statistics'], files: { enable: '0', 'attrib/authentication': '0', 'attrib/generate_node_acls': '0', 'attrib/demo_mode_write_protect': '1' } };
  }
  if (n === 5 && p[3] === 'lun') return { dirs: ['statistics'], files: { alua_tg_pt_gp: 'default_tg_pt_gp' } };
  if (n === 5 && p[3] === 'np') return { dirs: [], files: { iser: '0' } };
  if (n === 5 && p[3] === 'acls') return { dirs: ['attrib', 'auth', 'param', 'fabric_statistics'], files: { info: '', 'auth/userid': '', 'auth/password': '' } };
  if (n === 6 && p[3] === 'acls' && /^lun_\d+$/.test(p[5]!)) return { dirs: ['statistics'], files: { write_protect: '0' } };
  return null;
}

function err(code: string, path: string): NodeJS.ErrnoException {
  const e = new Error(`${code}: ${path}`) as NodeJS.ErrnoException;
  e.code = code;
  return e;
}

export type Op = 'mkdir' | 'rmdir' | 'writeFile' | 'symlink' | 'unlink';

export class ConfigfsStandIn {
  readonly log: string[] = [];
  /** return an errno code to fail that call (after logging it as `!op path`) */
  failOn: ((op: Op, rel: string) => string | null) | null = null;
  private readonly auto = new Map<string, Set<string>>();

  constructor(readonly root: string) {}

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

  readonly io: ConfigfsIo = {
    mkdir: async (p) => {
      this.check('mkdir', p);
      await fsp.mkdir(p);
      const a = autoFor(this.rel(p));
      const names = new Set<string>();
      if (a) {
        for (const d of a.dirs) {
          await fsp.mkdir(join(p, d));
          names.add(d);
        }
        for (const [f, v] of Object.entries(a.files)) {
          await fsp.writeFile(join(p, f), `${v}\n`);
          names.add(f.split('/')[0]!);
        }
      }
      this.auto.set(p, names);
    },
    rmdir: async (p) => {
      this.check('rmdir', p);
      const names = this.auto.get(p) ?? new Set<string>();
      const children = await fsp.readdir(p);
      const userMade: string[] = [];
      for (const c of children) {
        if (names.has(c)) {
          // a default group that holds a user-made object (e.g. a LUN under lun/) blocks removal
          const st = await fsp.lstat(join(p, c));
          if (st.isDirectory() && this.auto.has(join(p, c)) === false) {
            const inner = await fsp.readdir(join(p, c));
            if (inner.some((x) => this.auto.has(join(p, c, x)))) userMade.push(`${c}/…`);
          }
        } else userMade.push(c);
      }
      if (userMade.length > 0) throw err('ENOTEMPTY', `${p} (${userMade.join(',')})`);
      await fsp.rm(p, { recursive: true });
      this.auto.delete(p);
    },
    writeFile: async (p, d) => {
      this.check('writeFile', p);
      await fsp.writeFile(p, d);
    },
    readFile: (p) => fsp.readFile(p, 'utf8'),
    // configfs lists attribute files next to groups too; the layer filters by kind, as on the real thing
    readdir: (p) => fsp.readdir(p),
    entries: async (p) => (await fsp.readdir(p, { withFileTypes: true })).map((d) => ({ name: d.name, kind: direntKind(d) })),
    symlink: async (t, p) => {
      this.check('symlink', p);
      await fsp.symlink(t, p);
    },
    unlink: async (p) => {
      this.check('unlink', p);
      await fsp.unlink(p);
    },
    readlink: (p) => fsp.readlink(p),
    kind: async (p) => {
      try {
        const s = await fsp.lstat(p);
        return s.isSymbolicLink() ? 'link' : s.isDirectory() ? 'dir' : 'file';
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw e;
      }
    },
  };

  /** Every path under the root (links shown as `path -> target`), for before/after comparisons. */
  async snapshot(sub = ''): Promise<string[]> {
    const out: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      let entries: string[];
      try {
        entries = (await fsp.readdir(dir)).sort();
      } catch {
        return;
      }
      for (const e of entries) {
        const p = join(dir, e);
        const st = await fsp.lstat(p);
        if (st.isSymbolicLink()) out.push(`${this.rel(p)} -> ${this.rel(await fsp.readlink(p))}`);
        else if (st.isDirectory()) {
          out.push(`${this.rel(p)}/`);
          await walk(p);
        } else out.push(`${this.rel(p)} = ${(await fsp.readFile(p, 'utf8')).trim()}`);
      }
    };
    await walk(join(this.root, sub));
    return out;
  }
}

/** A fresh stand-in root with core/ (always present on real configfs). */
export async function makeStandIn(root: string): Promise<ConfigfsStandIn> {
  await fsp.mkdir(join(root, 'core'), { recursive: true });
  return new ConfigfsStandIn(root);
}
