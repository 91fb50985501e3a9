// The configfs layer of the nvmet helper: small functions over /sys/kernel/config/nvmet, the tree
// the kernel's NVMe target (modules nvmet, nvmet-tcp) serves:
//
//   hosts/<host nqn>/                                   a host the subsystems may admit
//   subsystems/<nqn>/attr_allow_any_host                always 0 here (see README.md)
//   subsystems/<nqn>/allowed_hosts/<host nqn> -> hosts/<host nqn>        (symlink)
//   subsystems/<nqn>/namespaces/<nsid>/{device_path,device_uuid,device_nguid,enable,revalidate_size}
//   ports/<id>/{addr_trtype,addr_adrfam,addr_traddr,addr_trsvcid}
//   ports/<id>/subsystems/<nqn> -> subsystems/<nqn>                       (symlink)
//
// Kernel rules this layer keeps (CONTRACT-WAVE2 F4): a port's addr_* files refuse writes (EACCES)
// once any subsystem is linked, so they are written before the first link; a namespace's device
// attributes refuse writes (EBUSY) while it is enabled, so they are written with enable=0; rmdir of
// a subsystem comes after its namespaces, allowed-host links and port links are gone.
//
// Every call goes through the LIO layer's ConfigfsIo (node:fs by default) under a root path, so the
// layer runs unchanged against a temp directory standing in for configfs in unit tests.
import { isIPv6 } from 'node:net';
import { join } from 'node:path';
import { errno, mkdirIfMissing, nodeConfigfsIo, rmdirIfExists, type ConfigfsIo, type EntryKind } from '../lio/configfs.js';

export const NVMET_CONFIGFS_ROOT = '/sys/kernel/config/nvmet';

/**
 * Who a subsystem with attr_allow_any_host = 1 admits, as the audit lists admitted hosts: anyone
 * who reaches the port (cinder's own nvmet helper leaves its subsystems so).
 */
export const ANY_HOST = '(any host: attr_allow_any_host = 1)';

/** What a port listens on. trsvcid is the TCP port as configfs holds it (text). */
export interface PortAddress {
  trtype: 'tcp';
  adrfam: 'ipv4' | 'ipv6';
  traddr: string;
  trsvcid: string;
}

export interface NamespaceInfo {
  nsid: number;
  devicePath: string;
  /** lower-case dashed, as the kernel prints it ('' when unset) */
  deviceUuid: string;
  deviceNguid: string;
  enabled: boolean;
}

export interface SubsystemInfo {
  nqn: string;
  allowAnyHost: boolean;
  /** host NQNs linked in allowed_hosts */
  hosts: string[];
  namespaces: NamespaceInfo[];
}

export interface PortInfo {
  id: number;
  addr: PortAddress | null;
  /** subsystem NQNs linked to the port */
  subsystems: string[];
}

/** The namespace attributes we write. uuid and nguid as lower-case dashed UUIDs. */
export interface NamespaceSpec {
  devicePath: string;
  deviceUuid: string;
  deviceNguid: string;
}


/** The address of a port on `ip`:`port` over TCP (adrfam from the literal). */
export function tcpPortAddress(ip: string, port: number): PortAddress {
  return { trtype: 'tcp', adrfam: isIPv6(ip) ? 'ipv6' : 'ipv4', traddr: ip, trsvcid: String(port) };
}

/** The kernel prints an all-zero uuid/nguid for an unset one: that means "none". */
function normaliseId(text: string): string {
  const t = text.trim().toLowerCase();
  return /^[0-]*$/.test(t) ? '' : t;
}

export class NvmetConfigfs {
  constructor(
    readonly root: string = NVMET_CONFIGFS_ROOT,
    private readonly io: ConfigfsIo = nodeConfigfsIo,
  ) {}

  // ---- paths (pure) ------------------------------------------------------------------------
  hostPath(host: string): string {
    return join(this.root, 'hosts', host);
  }
  subsystemPath(nqn: string): string {
    return join(this.root, 'subsystems', nqn);
  }
  namespacePath(nqn: string, nsid: number): string {
    return join(this.subsystemPath(nqn), 'namespaces', String(nsid));
  }
  allowedHostPath(nqn: string, host: string): string {
    return join(this.subsystemPath(nqn), 'allowed_hosts', host);
  }
  portPath(id: number): string {
    return join(this.root, 'ports', String(id));
  }
  portLinkPath(id: number, nqn: string): string {
    return join(this.portPath(id), 'subsystems', nqn);
  }

  // ---- small helpers ----------------------------------------------------------------------
  private mkdirIne(p: string): Promise<boolean> {
    return mkdirIfMissing(this.io, p);
  }

  private rmdirIfExists(p: string): Promise<void> {
    return rmdirIfExists(this.io, p);
  }

  private async unlinkIfExists(p: string): Promise<void> {
    try {
      await this.io.unlink(p);
    } catch (e) {
      if (errno(e) !== 'ENOENT') throw e;
    }
  }

  private async entries(p: string): Promise<Array<{ name: string; kind: EntryKind }>> {
    try {
      return await this.io.entries(p);
    } catch (e) {
      if (errno(e) === 'ENOENT') return [];
      throw e;
    }
  }

  private async names(p: string, kind: EntryKind): Promise<string[]> {
    return (await this.entries(p)).filter((e) => e.kind === kind).map((e) => e.name);
  }

  private async read(p: string): Promise<string> {
    try {
      return (await this.io.readFile(p)).trim();
    } catch (e) {
      if (errno(e) === 'ENOENT') return '';
      throw e;
    }
  }

  /** True when the nvmet tree is there (configfs mounted and module nvmet loaded). */
  async available(): Promise<boolean> {
    return (await this.io.kind(this.root)) === 'dir';
  }

  // ---- hosts --------------------------------------------------------------------------------
  async ensureHost(host: string): Promise<void> {
    await this.mkdirIne(this.hostPath(host));
  }

  /**
   * hosts/<nqn> once no subsystem admits it any more. The kernel refuses to remove a host an
   * allowed_hosts link still points at (another owner's subsystem): that refusal is the answer.
   */
  async removeHostIfUnused(host: string): Promise<boolean> {
    for (const nqn of await this.listSubsystems()) {
      if ((await this.io.kind(this.allowedHostPath(nqn, host))) === 'link') return false;
    }
    try {
      await this.rmdirIfExists(this.hostPath(host));
      return true;
    } catch (e) {
      if (errno(e) === 'EBUSY' || errno(e) === 'ENOTEMPTY') return false;
      throw e;
    }
  }

  // ---- subsystems -----------------------------------------------------------------------------
  async listSubsystems(): Promise<string[]> {
    return this.names(join(this.root, 'subsystems'), 'dir');
  }

  /** mkdir subsystems/<nqn> with attr_allow_any_host written 0 (explicitly). Returns whether new. */
  async createSubsystem(nqn: string): Promise<boolean> {
    const made = await this.mkdirIne(this.subsystemPath(nqn));
    await this.setAllowAnyHostOff(nqn);
    return made;
  }

  /**
   * attr_allow_any_host = 0. Always allowed by the kernel; it closes a subsystem cinder's nvmet
   * helper left open to everyone (it sets 1) before any host link is added.
   */
  async setAllowAnyHostOff(nqn: string): Promise<void> {
    const p = join(this.subsystemPath(nqn), 'attr_allow_any_host');
    if ((await this.read(p)) !== '0') await this.io.writeFile(p, '0');
  }

  async readSubsystem(nqn: string): Promise<SubsystemInfo | null> {
    const p = this.subsystemPath(nqn);
    if ((await this.io.kind(p)) !== 'dir') return null;
    const [allow, hosts, nsNames] = await Promise.all([
      this.read(join(p, 'attr_allow_any_host')),
      this.names(join(p, 'allowed_hosts'), 'link'),
      this.names(join(p, 'namespaces'), 'dir'),
    ]);
    const ids = nsNames.map(Number).filter((n) => Number.isSafeInteger(n) && n > 0);
    const namespaces = await Promise.all(ids.map((nsid) => this.readNamespace(nqn, nsid)));
    return {
      nqn,
      allowAnyHost: allow === '1',
      hosts: hosts.sort(),
      namespaces: namespaces.filter((n): n is NamespaceInfo => n !== null).sort((a, b) => a.nsid - b.nsid),
    };
  }

  async readNamespace(nqn: string, nsid: number): Promise<NamespaceInfo | null> {
    const p = this.namespacePath(nqn, nsid);
    if ((await this.io.kind(p)) !== 'dir') return null;
    const [devicePath, uuid, nguid, enable] = await Promise.all([
      this.read(join(p, 'device_path')),
      this.read(join(p, 'device_uuid')),
      this.read(join(p, 'device_nguid')),
      this.read(join(p, 'enable')),
    ]);
    return { nsid, devicePath, deviceUuid: normaliseId(uuid), deviceNguid: normaliseId(nguid), enabled: enable === '1' };
  }

  /** One stat: whether namespaces/<nsid> is there (the watch's cheap look). */
  async namespaceExists(nqn: string, nsid: number): Promise<boolean> {
    return (await this.io.kind(this.namespacePath(nqn, nsid))) === 'dir';
  }

  /**
   * namespaces/<nsid> serving `spec`, left disabled when it had to be (re)written: the kernel takes
   * device attributes only while the namespace is disabled. An enabled namespace that already
   * matches is left as it is (connected hosts keep it). Returns whether anything was written.
   */
  async ensureNamespace(nqn: string, nsid: number, spec: NamespaceSpec): Promise<boolean> {
    const p = this.namespacePath(nqn, nsid);
    await this.mkdirIne(p);
    const now = await this.readNamespace(nqn, nsid);
    const same = now !== null && now.devicePath === spec.devicePath && now.deviceUuid === spec.deviceUuid && now.deviceNguid === spec.deviceNguid;
    if (same) return false;
    if (now?.enabled) await this.io.writeFile(join(p, 'enable'), '0');
    if (now?.devicePath !== spec.devicePath) await this.io.writeFile(join(p, 'device_path'), spec.devicePath);
    if (now?.deviceUuid !== spec.deviceUuid) await this.io.writeFile(join(p, 'device_uuid'), spec.deviceUuid);
    if (now?.deviceNguid !== spec.deviceNguid) await this.io.writeFile(join(p, 'device_nguid'), spec.deviceNguid);
    return true;
  }

  /** enable=1 opens the backing device (fails when it is missing); enable=0 takes the namespace from every host. */
  async setNamespaceEnabled(nqn: string, nsid: number, on: boolean): Promise<void> {
    await this.io.writeFile(join(this.namespacePath(nqn, nsid), 'enable'), on ? '1' : '0');
  }

  /**
   * Makes a grown device's size visible: `revalidate_size` where the kernel has it (hosts get an
   * AEN and see the size at once); false when it does not, so the caller decides.
   */
  async revalidateSize(nqn: string, nsid: number): Promise<boolean> {
    const p = join(this.namespacePath(nqn, nsid), 'revalidate_size');
    if ((await this.io.kind(p)) !== 'file') return false;
    await this.io.writeFile(p, '1');
    return true;
  }

  async removeNamespace(nqn: string, nsid: number): Promise<void> {
    const p = this.namespacePath(nqn, nsid);
    if ((await this.io.kind(p)) !== 'dir') return;
    await this.io.writeFile(join(p, 'enable'), '0');
    await this.rmdirIfExists(p);
  }

  /** Link hosts/<host> into allowed_hosts (hosts/<host> made first). No-op when linked. */
  async allowHost(nqn: string, host: string): Promise<void> {
    await this.ensureHost(host);
    const link = this.allowedHostPath(nqn, host);
    if ((await this.io.kind(link)) === 'link') return;
    await this.io.symlink(this.hostPath(host), link);
  }

  /** New connections of that host are refused; its connected controllers are NOT stopped by this. */
  async disallowHost(nqn: string, host: string): Promise<void> {
    await this.unlinkIfExists(this.allowedHostPath(nqn, host));
  }

  /** Bottom-up: port links, namespaces, allowed hosts, then the subsystem. Missing pieces are fine. */
  async removeSubsystem(nqn: string): Promise<void> {
    for (const id of await this.listPorts()) await this.unlinkIfExists(this.portLinkPath(id, nqn));
    const p = this.subsystemPath(nqn);
    if ((await this.io.kind(p)) !== 'dir') return;
    for (const ns of await this.names(join(p, 'namespaces'), 'dir')) {
      const nsid = Number(ns);
      if (Number.isSafeInteger(nsid)) await this.removeNamespace(nqn, nsid);
    }
    for (const host of await this.names(join(p, 'allowed_hosts'), 'link')) await this.disallowHost(nqn, host);
    await this.rmdirIfExists(p);
  }

  // ---- ports --------------------------------------------------------------------------------
  async listPorts(): Promise<number[]> {
    return (await this.names(join(this.root, 'ports'), 'dir'))
      .map(Number)
      .filter((n) => Number.isSafeInteger(n))
      .sort((a, b) => a - b);
  }

  async readPort(id: number): Promise<PortInfo | null> {
    const p = this.portPath(id);
    if ((await this.io.kind(p)) !== 'dir') return null;
    const [trtype, adrfam, traddr, trsvcid, subsystems] = await Promise.all([
      this.read(join(p, 'addr_trtype')),
      this.read(join(p, 'addr_adrfam')),
      this.read(join(p, 'addr_traddr')),
      this.read(join(p, 'addr_trsvcid')),
      this.names(join(p, 'subsystems'), 'link'),
    ]);
    const addr = trtype === 'tcp' && (adrfam === 'ipv4' || adrfam === 'ipv6') && traddr && trsvcid ? { trtype, adrfam, traddr, trsvcid } as PortAddress : null;
    return { id, addr, subsystems: subsystems.sort() };
  }

  /**
   * ports/<id> listening on `addr`. The address can only be written while no subsystem is linked
   * (EACCES otherwise): a port that already serves subsystems on another address is refused with
   * a message naming it, never relinked (that would cut every host off that port).
   */
  async ensurePort(id: number, addr: PortAddress): Promise<void> {
    await this.mkdirIne(this.portPath(id));
    const now = await this.readPort(id);
    if (now?.addr && samePortAddress(now.addr, addr)) return;
    if (now && now.subsystems.length > 0) {
      const was = now.addr ? `${now.addr.trtype} ${now.addr.traddr}:${now.addr.trsvcid}` : 'another address';
      throw new Error(`nvmet port ${id} serves ${now.subsystems.length} subsystem(s) on ${was}, not ${addr.trtype} ${addr.traddr}:${addr.trsvcid}; choose another nvmet_port_id`);
    }
    const p = this.portPath(id);
    // trtype first: the kernel checks the family against it
    await this.io.writeFile(join(p, 'addr_trtype'), addr.trtype);
    await this.io.writeFile(join(p, 'addr_adrfam'), addr.adrfam);
    await this.io.writeFile(join(p, 'addr_traddr'), addr.traddr);
    await this.io.writeFile(join(p, 'addr_trsvcid'), addr.trsvcid);
  }

  /** The first link of a port enables it (the transport binds the address). No-op when linked. */
  async linkPort(id: number, nqn: string): Promise<void> {
    const link = this.portLinkPath(id, nqn);
    if ((await this.io.kind(link)) === 'link') return;
    await this.io.symlink(this.subsystemPath(nqn), link);
  }

  /** The kernel tears down the subsystem's controllers on that port when the link goes. */
  async unlinkPort(id: number, nqn: string): Promise<void> {
    await this.unlinkIfExists(this.portLinkPath(id, nqn));
  }

  /** The subsystems linked to a port (none when the port is absent). */
  async linkedSubsystems(id: number): Promise<string[]> {
    return this.names(join(this.portPath(id), 'subsystems'), 'link');
  }

  /** The ports that link the subsystem now. */
  async portsOf(nqn: string): Promise<number[]> {
    const out: number[] = [];
    for (const id of await this.listPorts()) if ((await this.io.kind(this.portLinkPath(id, nqn))) === 'link') out.push(id);
    return out;
  }
}

export function samePortAddress(a: PortAddress, b: PortAddress): boolean {
  return a.trtype === b.trtype && a.adrfam === b.adrfam && a.traddr === b.traddr && a.trsvcid === b.trsvcid;
}
