// The configfs layer of the LIO helper: small functions over /sys/kernel/config/target, the same
// layout rtslib-fb (and so cinder-rtstool and targetcli) makes:
//
//   core/iblock_<n>/<name>/            backstore: control "udev_path=<dev>", udev_path, enable=1,
//                                      wwn/vpd_unit_serial
//   iscsi/<iqn>/tpgt_1/                TPG: attrib/{authentication,generate_node_acls,
//                                      demo_mode_write_protect}, enable
//   iscsi/<iqn>/tpgt_1/lun/lun_0/<alias> -> core/iblock_<n>/<name>       (symlink)
//   iscsi/<iqn>/tpgt_1/np/<ip>:<port>/   portal ([v6]:port for IPv6), iser
//   iscsi/<iqn>/tpgt_1/acls/<initiator>/auth/{userid,password}
//   iscsi/<iqn>/tpgt_1/acls/<initiator>/lun_0/<alias> -> ../../lun/lun_0  (symlink)
//
// Host targets (target_layout = per-host, lio-host-target.ts) use the same objects with many LUNs:
// `lun/lun_<n>` per mapped volume and, per initiator, `acls/<i>/lun_<n>` for exactly the LUNs
// that initiator attached (readHostTarget, createLun, mapLun ...).
//
// Every call goes through a ConfigfsIo (node:fs by default) under a root path, so the layer runs
// unchanged against a temp directory that stands in for configfs in unit tests. Real configfs
// creates the default groups (attrib/, auth/, param/ ...) itself on mkdir and removes them on
// rmdir; rmdir of an object fails (ENOTEMPTY/EBUSY) while user-made children or links remain, so
// removal goes bottom-up: mapped LUNs, ACLs, LUNs, portals, TPG, target, then the backstore.
import { randomUUID } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { isIPv6 } from 'node:net';
import { basename, join } from 'node:path';

export const DEFAULT_CONFIGFS_ROOT = '/sys/kernel/config/target';
export const TPG = 'tpgt_1';
export const LUN = 'lun_0';

/** The file operations the layer needs; node:fs/promises by default. */
export interface ConfigfsIo {
  mkdir(path: string): Promise<void>;
  rmdir(path: string): Promise<void>;
  writeFile(path: string, data: string): Promise<void>;
  readFile(path: string): Promise<string>;
  readdir(path: string): Promise<string[]>;
  symlink(target: string, path: string): Promise<void>;
  unlink(path: string): Promise<void>;
  readlink(path: string): Promise<string>;
  /** 'dir' | 'link' | 'file' | null when absent */
  kind(path: string): Promise<'dir' | 'link' | 'file' | null>;
}

export const nodeConfigfsIo: ConfigfsIo = {
  mkdir: async (p) => {
    await fsp.mkdir(p);
  },
  rmdir: (p) => fsp.rmdir(p),
  writeFile: (p, d) => fsp.writeFile(p, d),
  readFile: (p) => fsp.readFile(p, 'utf8'),
  readdir: (p) => fsp.readdir(p),
  symlink: (t, p) => fsp.symlink(t, p),
  unlink: (p) => fsp.unlink(p),
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

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | null)?.code;
}

/** `<ip>:<port>` as configfs names a portal, `[v6]:port` for IPv6. */
export function portalName(ip: string, port: number): string {
  const bare = ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip;
  return `${isIPv6(bare) ? `[${bare}]` : bare}:${port}`;
}

export interface BackstoreInfo {
  /** `iblock_<n>` */
  hba: string;
  name: string;
  path: string;
  udevPath: string;
  enabled: boolean;
}

export interface AclInfo {
  initiator: string;
  userid: string;
  password: string;
  /** acls/<i>/lun_0 holds a link */
  mappedLun0: boolean;
}

export interface TargetInfo {
  iqn: string;
  tpg: boolean;
  enabled: boolean;
  attribs: Record<string, string>;
  /** where tpgt_1/lun/lun_0's link points (absolute path), or null */
  lun0Backstore: string | null;
  portals: string[];
  acls: AclInfo[];
}

export interface HostLunInfo {
  lun: number;
  /** the storage object the LUN links (absolute path), or null */
  backstore: string | null;
  /** its udev_path and unit serial ('' when unknown) */
  udevPath: string;
  serial: string;
}

export interface HostAclInfo {
  initiator: string;
  userid: string;
  password: string;
  /** mapped LUN number (what the initiator sees) -> the TPG LUN it links, null when unlinked */
  mapped: Record<number, number | null>;
  /** the initiator's session as acls/<i>/info tells it; null when none */
  session: { state: string; address: string | null } | null;
}

export interface HostTargetInfo {
  iqn: string;
  tpg: boolean;
  enabled: boolean;
  attribs: Record<string, string>;
  luns: HostLunInfo[];
  portals: string[];
  acls: HostAclInfo[];
}

/** `lun_<n>` -> n */
export function lunNumber(name: string): number | null {
  const m = /^lun_(\d+)$/.exec(name);
  return m ? Number(m[1]) : null;
}

/** wwn/vpd_unit_serial reads `T10 VPD Unit Serial Number: <serial>`; a bare value is taken as is. */
export function parseUnitSerial(text: string): string {
  const m = /Serial Number:\s*(\S*)/.exec(text);
  return (m ? m[1]! : text).trim();
}

/**
 * acls/<i>/info: `No active iSCSI Session for Initiator Endpoint: <i>` or, while logged in, lines
 * with `Session State: TARG_SESS_STATE_LOGGED_IN` and the connection's `Address <ip> TCP`.
 */
export function parseAclSession(text: string): { state: string; address: string | null } | null {
  if (text === '' || /No active iSCSI Session/i.test(text)) return null;
  const state = /Session State:\s*(\S+)/.exec(text)?.[1];
  if (!state) return null;
  return { state, address: /Address\s+(\S+)/.exec(text)?.[1] ?? null };
}

export const TPG_ATTRIBS: ReadonlyArray<readonly [string, string]> = [
  ['authentication', '1'],
  ['generate_node_acls', '0'],
  ['demo_mode_write_protect', '0'],
];

export class Configfs {
  constructor(
    readonly root: string = DEFAULT_CONFIGFS_ROOT,
    private readonly io: ConfigfsIo = nodeConfigfsIo,
  ) {}

  // ---- paths ------------------------------------------------------------------------------
  targetPath(iqn: string): string {
    return join(this.root, 'iscsi', iqn);
  }
  tpgPath(iqn: string): string {
    return join(this.targetPath(iqn), TPG);
  }
  lunPath(iqn: string): string {
    return join(this.tpgPath(iqn), 'lun', LUN);
  }
  aclPath(iqn: string, initiator: string): string {
    return join(this.tpgPath(iqn), 'acls', initiator);
  }

  // ---- small helpers ----------------------------------------------------------------------
  private async mkdirIne(p: string): Promise<boolean> {
    try {
      await this.io.mkdir(p);
      return true;
    } catch (e) {
      if (errno(e) === 'EEXIST') return false;
      throw e;
    }
  }

  private async rmdirIfExists(p: string): Promise<void> {
    try {
      await this.io.rmdir(p);
    } catch (e) {
      if (errno(e) !== 'ENOENT') throw e;
    }
  }

  private async list(p: string): Promise<string[]> {
    try {
      return await this.io.readdir(p);
    } catch (e) {
      if (errno(e) === 'ENOENT') return [];
      throw e;
    }
  }

  private async read(p: string): Promise<string> {
    try {
      return (await this.io.readFile(p)).trim();
    } catch (e) {
      if (errno(e) === 'ENOENT') return '';
      throw e;
    }
  }

  private async unlinkLinksIn(dir: string): Promise<void> {
    for (const name of await this.list(dir)) {
      const p = join(dir, name);
      if ((await this.io.kind(p)) === 'link') await this.io.unlink(p);
    }
  }

  private async firstLink(dir: string): Promise<string | null> {
    for (const name of await this.list(dir)) {
      const p = join(dir, name);
      if ((await this.io.kind(p)) === 'link') return p;
    }
    return null;
  }

  /** True when the root exists (configfs mounted and target_core_mod loaded). */
  async available(): Promise<boolean> {
    return (await this.io.kind(this.root)) === 'dir';
  }

  // ---- backstores ---------------------------------------------------------------------------
  async listBackstores(): Promise<BackstoreInfo[]> {
    const out: BackstoreInfo[] = [];
    for (const hba of await this.list(join(this.root, 'core'))) {
      if (!/^iblock_\d+$/.test(hba)) continue;
      for (const name of await this.list(join(this.root, 'core', hba))) {
        const p = join(this.root, 'core', hba, name);
        if ((await this.io.kind(p)) !== 'dir' || name === 'hba_info' || name === 'hba_mode') continue;
        out.push({ hba, name, path: p, udevPath: await this.read(join(p, 'udev_path')), enabled: (await this.read(join(p, 'enable'))) === '1' });
      }
    }
    return out;
  }

  /**
   * Looks by name first and reads attributes of the match only: a restart's reconcile asks once
   * per export, and reading every backstore's attributes each time made 100 exports quadratic
   * (2.3 s an export in the lab).
   */
  async findBackstore(name: string): Promise<BackstoreInfo | null> {
    if (name === 'hba_info' || name === 'hba_mode') return null;
    for (const hba of await this.list(join(this.root, 'core'))) {
      if (!/^iblock_\d+$/.test(hba)) continue;
      if (!(await this.list(join(this.root, 'core', hba))).includes(name)) continue;
      const p = join(this.root, 'core', hba, name);
      if ((await this.io.kind(p)) !== 'dir') continue;
      return { hba, name, path: p, udevPath: await this.read(join(p, 'udev_path')), enabled: (await this.read(join(p, 'enable'))) === '1' };
    }
    return null;
  }

  /** The lowest `iblock_<n>` without a storage object (callers hold the global lock). */
  async freeIblockHba(): Promise<string> {
    const used = new Set<number>();
    for (const hba of await this.list(join(this.root, 'core'))) {
      const m = /^iblock_(\d+)$/.exec(hba);
      if (m) {
        const objects = (await this.list(join(this.root, 'core', hba))).filter((n) => n !== 'hba_info' && n !== 'hba_mode');
        if (objects.length > 0) used.add(Number(m[1]));
      }
    }
    let n = 0;
    while (used.has(n)) n++;
    return `iblock_${n}`;
  }

  /**
   * mkdir core/<hba>/<name>, control udev_path, udev_path, enable, unit serial; undone on failure.
   * `serial` is the volume's (host-target-name.ts volumeSerial), not a random one: LIO derives the
   * NAA designator of VPD page 0x83 from it too, so multipath never merges two volumes and an
   * initiator can tell whose device it holds. The kernel takes the serial only while no LUN links
   * the object, hence here, before any LUN exists.
   */
  async createIblockBackstore(hba: string, name: string, dev: string, serial: string): Promise<BackstoreInfo> {
    const hbaPath = join(this.root, 'core', hba);
    const madeHba = await this.mkdirIne(hbaPath);
    const p = join(hbaPath, name);
    await this.io.mkdir(p);
    try {
      await this.io.writeFile(join(p, 'control'), `udev_path=${dev}`);
      await this.io.writeFile(join(p, 'udev_path'), dev);
      await this.io.writeFile(join(p, 'enable'), '1\n');
      await this.io.writeFile(join(p, 'wwn', 'vpd_unit_serial'), `${serial}\n`);
    } catch (e) {
      await this.rmdirIfExists(p).catch(() => undefined);
      if (madeHba) await this.rmdirIfExists(hbaPath).catch(() => undefined);
      throw e;
    }
    return { hba, name, path: p, udevPath: dev, enabled: true };
  }

  /** The unit serial of a storage object; the kernel prints `T10 VPD Unit Serial Number: <s>`. */
  async readUnitSerial(backstorePath: string): Promise<string> {
    return parseUnitSerial(await this.read(join(backstorePath, 'wwn', 'vpd_unit_serial')));
  }

  async removeBackstore(b: Pick<BackstoreInfo, 'path' | 'hba'>): Promise<void> {
    await this.rmdirIfExists(b.path);
    // an empty iblock_<n> HBA is left: rtslib leaves them too, and another owner may be using n
  }

  // ---- targets ------------------------------------------------------------------------------
  async listTargets(): Promise<string[]> {
    const out: string[] = [];
    for (const name of await this.list(join(this.root, 'iscsi'))) {
      if (name === 'discovery_auth' || name === 'lio_version') continue;
      if ((await this.io.kind(join(this.root, 'iscsi', name))) === 'dir') out.push(name);
    }
    return out;
  }

  /** mkdir iscsi (loads iscsi_target_mod), iscsi/<iqn>, tpgt_1. Returns whether the target was new. */
  async createTarget(iqn: string): Promise<boolean> {
    await this.mkdirIne(join(this.root, 'iscsi'));
    const made = await this.mkdirIne(this.targetPath(iqn));
    await this.mkdirIne(this.tpgPath(iqn));
    return made;
  }

  async setTpgAttribs(iqn: string): Promise<void> {
    for (const [k, v] of TPG_ATTRIBS) await this.io.writeFile(join(this.tpgPath(iqn), 'attrib', k), `${v}\n`);
  }

  async tpgEnabled(iqn: string): Promise<boolean> {
    return (await this.read(join(this.tpgPath(iqn), 'enable'))) === '1';
  }

  async setTpgEnabled(iqn: string, on: boolean): Promise<void> {
    await this.io.writeFile(join(this.tpgPath(iqn), 'enable'), on ? '1\n' : '0\n');
  }

  /** lun/lun_0 with a link to the backstore (no-op when a link is there). */
  async createLun0(iqn: string, backstorePath: string): Promise<void> {
    const dir = this.lunPath(iqn);
    await this.mkdirIne(dir);
    if (await this.firstLink(dir)) return;
    await this.io.symlink(backstorePath, join(dir, randomUUID().slice(-10)));
  }

  async removeLun0(iqn: string): Promise<void> {
    const dir = this.lunPath(iqn);
    await this.unlinkLinksIn(dir);
    await this.rmdirIfExists(dir);
  }

  async addPortal(iqn: string, ip: string, port: number, iser: boolean): Promise<void> {
    const p = join(this.tpgPath(iqn), 'np', portalName(ip, port));
    await this.mkdirIne(p);
    if (iser) await this.io.writeFile(join(p, 'iser'), '1\n');
  }

  async removePortal(iqn: string, name: string): Promise<void> {
    await this.rmdirIfExists(join(this.tpgPath(iqn), 'np', name));
  }

  /** acls/<initiator> with CHAP and mapped LUN 0. Returns whether the ACL was new. */
  async addAcl(iqn: string, initiator: string, userid: string, password: string): Promise<boolean> {
    const p = this.aclPath(iqn, initiator);
    const made = await this.mkdirIne(p);
    try {
      await this.io.writeFile(join(p, 'auth', 'userid'), userid);
      await this.io.writeFile(join(p, 'auth', 'password'), password);
      const mlun = join(p, LUN);
      await this.mkdirIne(mlun);
      if (!(await this.firstLink(mlun))) await this.io.symlink(this.lunPath(iqn), join(mlun, randomUUID().slice(-10)));
    } catch (e) {
      if (made) await this.removeAcl(iqn, initiator).catch(() => undefined);
      throw e;
    }
    return made;
  }

  /** Mapped LUNs, then the ACL itself: LIO closes that initiator's sessions. Missing ACL is fine. */
  async removeAcl(iqn: string, initiator: string): Promise<void> {
    const p = this.aclPath(iqn, initiator);
    for (const name of await this.list(p)) {
      if (!/^lun_\d+$/.test(name)) continue;
      await this.unlinkLinksIn(join(p, name));
      await this.rmdirIfExists(join(p, name));
    }
    await this.rmdirIfExists(p);
  }

  async readTarget(iqn: string): Promise<TargetInfo | null> {
    if ((await this.io.kind(this.targetPath(iqn))) !== 'dir') return null;
    const tpgPath = this.tpgPath(iqn);
    const tpg = (await this.io.kind(tpgPath)) === 'dir';
    const info: TargetInfo = { iqn, tpg, enabled: false, attribs: {}, lun0Backstore: null, portals: [], acls: [] };
    if (!tpg) return info;
    info.enabled = (await this.read(join(tpgPath, 'enable'))) === '1';
    for (const [k] of TPG_ATTRIBS) info.attribs[k] = await this.read(join(tpgPath, 'attrib', k));
    const link = await this.firstLink(this.lunPath(iqn));
    if (link) {
      const t = await this.io.readlink(link);
      info.lun0Backstore = t.startsWith('/') ? t : join(this.lunPath(iqn), t);
    }
    info.portals = await this.list(join(tpgPath, 'np'));
    for (const initiator of await this.list(join(tpgPath, 'acls'))) {
      const p = join(tpgPath, 'acls', initiator);
      if ((await this.io.kind(p)) !== 'dir') continue;
      info.acls.push({
        initiator,
        userid: await this.read(join(p, 'auth', 'userid')),
        password: await this.read(join(p, 'auth', 'password')),
        mappedLun0: (await this.firstLink(join(p, LUN))) !== null,
      });
    }
    return info;
  }

  // ---- many LUNs per target (host targets) -------------------------------------------------------
  tpgLunPath(iqn: string, lun: number): string {
    return join(this.tpgPath(iqn), 'lun', `lun_${lun}`);
  }

  /** lun/lun_<n> linked to the backstore (no-op when a link is there). */
  async createLun(iqn: string, lun: number, backstorePath: string): Promise<void> {
    const dir = this.tpgLunPath(iqn, lun);
    await this.mkdirIne(dir);
    if (await this.firstLink(dir)) return;
    await this.io.symlink(backstorePath, join(dir, randomUUID().slice(-10)));
  }

  /** Unlinks and removes lun/lun_<n>; every ACL's mapping of it must be gone first. */
  async removeLun(iqn: string, lun: number): Promise<void> {
    const dir = this.tpgLunPath(iqn, lun);
    await this.unlinkLinksIn(dir);
    await this.rmdirIfExists(dir);
  }

  /**
   * acls/<initiator> with the CHAP credentials written into its auth files (never on a command
   * line). Rewrites them only when they differ. Returns whether the ACL was new.
   */
  async ensureAcl(iqn: string, initiator: string, userid: string, password: string): Promise<boolean> {
    const p = this.aclPath(iqn, initiator);
    const made = await this.mkdirIne(p);
    try {
      if ((await this.read(join(p, 'auth', 'userid'))) !== userid) await this.io.writeFile(join(p, 'auth', 'userid'), userid);
      if ((await this.read(join(p, 'auth', 'password'))) !== password) await this.io.writeFile(join(p, 'auth', 'password'), password);
    } catch (e) {
      if (made) await this.removeAcl(iqn, initiator).catch(() => undefined);
      throw e;
    }
    return made;
  }

  /** acls/<initiator>/lun_<mapped> linked to the TPG's lun_<tpgLun>: the initiator sees that LUN. */
  async mapLun(iqn: string, initiator: string, mapped: number, tpgLun: number): Promise<void> {
    const dir = join(this.aclPath(iqn, initiator), `lun_${mapped}`);
    await this.mkdirIne(dir);
    if (await this.firstLink(dir)) return;
    await this.io.symlink(this.tpgLunPath(iqn, tpgLun), join(dir, randomUUID().slice(-10)));
  }

  /** Takes one LUN out of an initiator's view; its session and other LUNs stay. */
  async unmapLun(iqn: string, initiator: string, mapped: number): Promise<void> {
    const dir = join(this.aclPath(iqn, initiator), `lun_${mapped}`);
    await this.unlinkLinksIn(dir);
    await this.rmdirIfExists(dir);
  }

  private async linkTarget(dir: string): Promise<string | null> {
    const link = await this.firstLink(dir);
    if (!link) return null;
    const t = await this.io.readlink(link);
    // the kernel answers relative to the link's directory
    return t.startsWith('/') ? t : join(dir, t);
  }

  /** A target with any number of LUNs, as it is in configfs now; null when absent. */
  async readHostTarget(iqn: string): Promise<HostTargetInfo | null> {
    if ((await this.io.kind(this.targetPath(iqn))) !== 'dir') return null;
    const tpgPath = this.tpgPath(iqn);
    const info: HostTargetInfo = { iqn, tpg: false, enabled: false, attribs: {}, luns: [], portals: [], acls: [] };
    if ((await this.io.kind(tpgPath)) !== 'dir') return info;
    info.tpg = true;
    info.enabled = (await this.read(join(tpgPath, 'enable'))) === '1';
    for (const [k] of TPG_ATTRIBS) info.attribs[k] = await this.read(join(tpgPath, 'attrib', k));
    for (const name of await this.list(join(tpgPath, 'lun'))) {
      const n = lunNumber(name);
      if (n === null) continue;
      const backstore = await this.linkTarget(join(tpgPath, 'lun', name));
      info.luns.push({
        lun: n,
        backstore,
        udevPath: backstore ? await this.read(join(backstore, 'udev_path')) : '',
        serial: backstore ? await this.readUnitSerial(backstore) : '',
      });
    }
    info.luns.sort((a, b) => a.lun - b.lun);
    info.portals = await this.list(join(tpgPath, 'np'));
    for (const initiator of await this.list(join(tpgPath, 'acls'))) {
      const p = join(tpgPath, 'acls', initiator);
      if ((await this.io.kind(p)) !== 'dir') continue;
      const mapped: Record<number, number | null> = {};
      for (const name of await this.list(p)) {
        const m = lunNumber(name);
        if (m === null) continue;
        const to = await this.linkTarget(join(p, name));
        mapped[m] = to ? lunNumber(basename(to)) : null;
      }
      info.acls.push({
        initiator,
        userid: await this.read(join(p, 'auth', 'userid')),
        password: await this.read(join(p, 'auth', 'password')),
        mapped,
        session: parseAclSession(await this.read(join(p, 'info'))),
      });
    }
    return info;
  }

  /** Paths of the storage objects linked from any LUN of the given targets. */
  async linkedBackstores(iqns: readonly string[]): Promise<Set<string>> {
    const out = new Set<string>();
    for (const iqn of iqns) {
      for (const name of await this.list(join(this.tpgPath(iqn), 'lun'))) {
        const to = await this.linkTarget(join(this.tpgPath(iqn), 'lun', name));
        if (to) out.add(to);
      }
    }
    return out;
  }

  /** Bottom-up: mapped LUNs + ACLs, LUNs, portals, TPG, target. Missing pieces are fine. */
  async removeTarget(iqn: string): Promise<void> {
    const tpgPath = this.tpgPath(iqn);
    if ((await this.io.kind(this.targetPath(iqn))) !== 'dir') return;
    if ((await this.io.kind(tpgPath)) === 'dir') {
      // disable first: no new logins while it is torn down
      await this.setTpgEnabled(iqn, false).catch(() => undefined);
      for (const a of await this.list(join(tpgPath, 'acls'))) await this.removeAcl(iqn, a);
      for (const l of await this.list(join(tpgPath, 'lun'))) {
        await this.unlinkLinksIn(join(tpgPath, 'lun', l));
        await this.rmdirIfExists(join(tpgPath, 'lun', l));
      }
      for (const np of await this.list(join(tpgPath, 'np'))) await this.removePortal(iqn, np);
      await this.rmdirIfExists(tpgPath);
    }
    await this.rmdirIfExists(this.targetPath(iqn));
  }
}
