// A STAND-IN for /sys/kernel/config/target (mechanics shared with nvmet in ../configfs-standin-base.ts):
// a temp directory plus a ConfigfsIo that imitates a
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
import { join } from 'node:path';
import { ConfigfsStandInBase, type DefaultGroups } from '../configfs-standin-base.js';

export type { Op } from '../configfs-standin-base.js';

function autoFor(rel: string): DefaultGroups | null {
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

export class ConfigfsStandIn extends ConfigfsStandInBase {
  protected defaultsFor(rel: string): DefaultGroups | null {
    return autoFor(rel);
  }

  /** a default group that holds a user-made object (a LUN under lun/, say) blocks removal */
  protected async defaultGroupBlocks(dir: string): Promise<boolean> {
    if (this.auto.has(dir)) return false;
    return (await fsp.readdir(dir)).some((x) => this.auto.has(join(dir, x)));
  }

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
