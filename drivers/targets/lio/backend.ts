// Two ways to change LIO, one interface: straight configfs writes (the default), or targetcli
// through the one process runner (src/exec) for a host where the agent cannot write configfs (read-only mount, or not root
// and targetcli runs under sudo). Reading is always done from configfs, which is world-readable
// where it exists; targetcli itself needs configfs, so without it neither backend works.
import { log } from '../../../src/log.js';
import { CommandError, type CommandRunner } from '../../../src/exec/run-command.js';
import { Configfs, LUN, portalName, TPG_ATTRIBS, undo, type BackstoreInfo, type TargetInfo } from './configfs.js';

export interface LioBackend {
  readonly kind: 'configfs' | 'targetcli';
  readonly fs: Configfs;
  findBackstore(name: string): Promise<BackstoreInfo | null>;
  /** caller holds the global lock (iblock index allocation); `serial` = the volume's (volumeSerial) */
  createBackstore(name: string, dev: string, serial: string): Promise<BackstoreInfo>;
  removeBackstore(b: BackstoreInfo): Promise<void>;
  listTargets(): Promise<string[]>;
  readTarget(iqn: string): Promise<TargetInfo | null>;
  createTarget(iqn: string): Promise<boolean>;
  setTpgAttribs(iqn: string): Promise<void>;
  setTpgEnabled(iqn: string, on: boolean): Promise<void>;
  createLun0(iqn: string, b: BackstoreInfo): Promise<void>;
  addPortal(iqn: string, ip: string, port: number, iser: boolean): Promise<void>;
  removePortal(iqn: string, name: string): Promise<void>;
  addAcl(iqn: string, initiator: string, userid: string, password: string): Promise<boolean>;
  removeAcl(iqn: string, initiator: string): Promise<void>;
  removeTarget(iqn: string): Promise<void>;
}

export class ConfigfsBackend implements LioBackend {
  readonly kind = 'configfs' as const;
  constructor(readonly fs: Configfs) {}
  findBackstore(name: string) {
    return this.fs.findBackstore(name);
  }
  async createBackstore(name: string, dev: string, serial: string) {
    return this.fs.createIblockBackstore(await this.fs.freeIblockHba(), name, dev, serial);
  }
  removeBackstore(b: BackstoreInfo) {
    return this.fs.removeBackstore(b);
  }
  listTargets() {
    return this.fs.listTargets();
  }
  readTarget(iqn: string) {
    return this.fs.readTarget(iqn);
  }
  createTarget(iqn: string) {
    return this.fs.createTarget(iqn);
  }
  setTpgAttribs(iqn: string) {
    return this.fs.setTpgAttribs(iqn);
  }
  setTpgEnabled(iqn: string, on: boolean) {
    return this.fs.setTpgEnabled(iqn, on);
  }
  createLun0(iqn: string, b: BackstoreInfo) {
    return this.fs.createLun0(iqn, b.path);
  }
  addPortal(iqn: string, ip: string, port: number, iser: boolean) {
    return this.fs.addPortal(iqn, ip, port, iser);
  }
  removePortal(iqn: string, name: string) {
    return this.fs.removePortal(iqn, name);
  }
  addAcl(iqn: string, initiator: string, userid: string, password: string) {
    return this.fs.addAcl(iqn, initiator, userid, password);
  }
  removeAcl(iqn: string, initiator: string) {
    return this.fs.removeAcl(iqn, initiator);
  }
  removeTarget(iqn: string) {
    return this.fs.removeTarget(iqn);
  }
}

// ---- targetcli argv (one argv array per change; never a shell) -----------------------------

const tpg = (iqn: string) => `/iscsi/${iqn}/tpg1`;

export const targetcliArgv = {
  /** wwn= sets the unit serial (rtslib writes it to wwn/vpd_unit_serial before any LUN exists) */
  createBackstore: (name: string, dev: string, serial: string) => ['targetcli', '/backstores/block', 'create', `name=${name}`, `dev=${dev}`, `wwn=${serial}`],
  deleteBackstore: (name: string) => ['targetcli', '/backstores/block', 'delete', name],
  createTarget: (iqn: string) => ['targetcli', '/iscsi', 'create', iqn],
  deleteTarget: (iqn: string) => ['targetcli', '/iscsi', 'delete', iqn],
  setTpgAttribs: (iqn: string) => ['targetcli', tpg(iqn), 'set', 'attribute', ...TPG_ATTRIBS.map(([k, v]) => `${k}=${v}`)],
  enableTpg: (iqn: string, on: boolean) => ['targetcli', tpg(iqn), on ? 'enable' : 'disable'],
  createLun0: (iqn: string, name: string) => ['targetcli', `${tpg(iqn)}/luns`, 'create', `/backstores/block/${name}`, 'lun=0', 'add_mapped_luns=false'],
  createPortal: (iqn: string, ip: string, port: number) => ['targetcli', `${tpg(iqn)}/portals`, 'create', ip, String(port)],
  /** `name` as configfs lists it: `ip:port` or `[v6]:port` */
  deletePortal: (iqn: string, name: string) => {
    const i = name.lastIndexOf(':');
    const ip = name.slice(0, i).replace(/^\[(.*)\]$/, '$1');
    return ['targetcli', `${tpg(iqn)}/portals`, 'delete', ip, name.slice(i + 1)];
  },
  enableIser: (iqn: string, ip: string, port: number) => ['targetcli', `${tpg(iqn)}/portals/${portalName(ip, port)}`, 'enable_iser', 'true'],
  createAcl: (iqn: string, initiator: string) => ['targetcli', `${tpg(iqn)}/acls`, 'create', initiator, 'add_mapped_luns=false'],
  setAclAuth: (iqn: string, initiator: string, userid: string, password: string) => ['targetcli', `${tpg(iqn)}/acls/${initiator}`, 'set', 'auth', `userid=${userid}`, `password=${password}`],
  createMappedLun0: (iqn: string, initiator: string) => ['targetcli', `${tpg(iqn)}/acls/${initiator}`, 'create', 'mapped_lun=0', 'tpg_lun_or_backstore=0'],
  deleteAcl: (iqn: string, initiator: string) => ['targetcli', `${tpg(iqn)}/acls`, 'delete', initiator],
};

/**
 * Changes through targetcli (`targetcli <path> <command> <args>`), reads from configfs. Note:
 * targetcli's one-shot commands save rtslib's saveconfig.json (/etc/target/, /etc/rtslib-fb-target/
 * on Debian) when `auto_save_on_exit` is set; that file then holds the whole live configuration,
 * others' objects included.
 */
export class TargetcliBackend implements LioBackend {
  readonly kind = 'targetcli' as const;
  constructor(
    readonly fs: Configfs,
    private readonly runner: CommandRunner,
  ) {}

  private async run(argv: string[]): Promise<void> {
    const r = await this.runner(argv);
    if (r.exitCode !== 0) {
      // targetcli prints its errors on stdout as often as on stderr: the last lines of both
      const text = `${r.stderr}\n${r.stdout}`.trim().split('\n').slice(-3).join(' | ');
      throw new CommandError(argv, r, text);
    }
  }

  findBackstore(name: string) {
    return this.fs.findBackstore(name);
  }
  async createBackstore(name: string, dev: string, serial: string) {
    await this.run(targetcliArgv.createBackstore(name, dev, serial));
    const b = await this.fs.findBackstore(name);
    if (!b) throw new Error(`targetcli created backstore ${name} but it is not in configfs`);
    return b;
  }
  async removeBackstore(b: BackstoreInfo) {
    if (await this.fs.findBackstore(b.name)) await this.run(targetcliArgv.deleteBackstore(b.name));
  }
  listTargets() {
    return this.fs.listTargets();
  }
  readTarget(iqn: string) {
    return this.fs.readTarget(iqn);
  }
  async createTarget(iqn: string) {
    if (await this.fs.readTarget(iqn)) return false;
    await this.run(targetcliArgv.createTarget(iqn));
    // targetcli may add the default portal 0.0.0.0:3260 (auto_add_default_portal): not ours
    const t = await this.fs.readTarget(iqn);
    for (const np of t?.portals ?? []) {
      if (np === '0.0.0.0:3260') await this.run(targetcliArgv.deletePortal(iqn, np)).catch((e) => log().warn({ iqn, err: e }, 'could not remove default portal'));
    }
    return true;
  }
  setTpgAttribs(iqn: string) {
    return this.run(targetcliArgv.setTpgAttribs(iqn));
  }
  setTpgEnabled(iqn: string, on: boolean) {
    return this.run(targetcliArgv.enableTpg(iqn, on));
  }
  async createLun0(iqn: string, b: BackstoreInfo) {
    if ((await this.fs.readTarget(iqn))?.lun0Backstore) return;
    await this.run(targetcliArgv.createLun0(iqn, b.name));
  }
  async addPortal(iqn: string, ip: string, port: number, iser: boolean) {
    if (!(await this.fs.readTarget(iqn))?.portals.includes(portalName(ip, port))) await this.run(targetcliArgv.createPortal(iqn, ip, port));
    if (iser) await this.run(targetcliArgv.enableIser(iqn, ip, port));
  }
  removePortal(iqn: string, name: string) {
    return this.run(targetcliArgv.deletePortal(iqn, name));
  }
  async addAcl(iqn: string, initiator: string, userid: string, password: string) {
    const t = await this.fs.readTarget(iqn);
    const have = t?.acls.find((a) => a.initiator === initiator);
    if (!have) await this.run(targetcliArgv.createAcl(iqn, initiator));
    try {
      await this.run(targetcliArgv.setAclAuth(iqn, initiator, userid, password));
      if (!have?.mappedLun0) await this.run(targetcliArgv.createMappedLun0(iqn, initiator));
    } catch (e) {
      if (!have) await undo('ACL', `${iqn} ${initiator}`, () => this.run(targetcliArgv.deleteAcl(iqn, initiator)));
      throw e;
    }
    return !have;
  }
  async removeAcl(iqn: string, initiator: string) {
    const t = await this.fs.readTarget(iqn);
    if (t?.acls.some((a) => a.initiator === initiator)) await this.run(targetcliArgv.deleteAcl(iqn, initiator));
  }
  async removeTarget(iqn: string) {
    if (await this.fs.readTarget(iqn)) await this.run(targetcliArgv.deleteTarget(iqn));
  }
}

export { LUN };
