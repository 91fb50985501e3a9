// target_layout = per-host on nvmet (CONTRACT-WAVE2 F4, model B): one NVMe subsystem per compute
// host (nvmet-naming.ts hostSubsystemNqn), each volume attached to that host a namespace of it.
//
//   subsystems/nqn.<prefix>-cb-<host>-<hash>/attr_allow_any_host = 0
//     allowed_hosts/<host nqn>           exactly the host NQNs of the record (that host's connectors)
//     namespaces/<nsid>/                 nsid = the record's number, device_path = the LV,
//                                        device_uuid = device_nguid = the volume's name id, enable = 1
//   ports/<id>/subsystems/<nqn>          on every port of the backend (shared with the per-volume helper)
//
// Why a subsystem per host: revoking one volume from one host is then `rmdir` of one namespace,
// which the kernel takes from that host's connected controllers at once (AEN), while every other
// volume of the host keeps serving without a pause. With a subsystem per volume the only way to
// cut one of several hosts off is to drop every controller of the subsystem (see README.md).
//
// nsids come from the registry's allocator (monotonic, never handed to another volume within the
// generation it was released in; host-target-registry.ts), between nvmet_ns_id and 1024: the
// kernel target serves at most 1024 namespaces per subsystem and reports that number to hosts as
// the controller's namespace count, so larger ids are not offered. os-brick finds the device by
// `volume_nguid`, never by the number, so even a number reused after its generation cannot show
// a host another volume under an old device name.
//
// A host NQN taken off a subsystem keeps any controller it has connected (the kernel only refuses
// new connects), so when one goes while namespaces remain, the subsystem's ports are relinked:
// its controllers drop, the admitted NQNs reconnect by themselves (ctrl_loss_tmo), the other is
// refused. That only happens when a host changes its NQN; a detach removes a namespace instead.
//
// Nothing is persisted here: the registry is the record, and a configfs loss (reboot, modules
// reloaded) is rebuilt from it by the manager's restore with the same nsids.
import { KeyedMutex } from '../../../src/concurrency/keyed-mutex.js';
import { invalidInput } from '../../../src/errors.js';
import { log } from '../../../src/log.js';
import { admittedInitiators, type HostTargetRecord, type LunMapping, type LunRange } from '../host-target/host-target-registry.js';
import type { HostTargetHelper, LiveHostTarget } from '../host-target/host-target.js';
import { assertBackingPath, assertNqn } from '../validate.js';
import { ANY_HOST, type NamespaceSpec, type NvmetConfigfs, type SubsystemInfo } from './nvmet-configfs.js';
import { canonicalUuid, hostSubsystemNqnPrefix } from './nvmet-naming.js';
import type { NvmetTarget } from './nvmet-target.js';

/** The kernel target's namespaces per subsystem (NVMET_MAX_NAMESPACES), the highest nsid offered. */
export const HOST_SUBSYSTEM_MAX_NSID = 1024;

// one per process, like configfs: every host subsystem of every nvmet backend
const subsystemLocks = new KeyedMutex();

/** The namespace a mapping asks for: the LV, and the volume's name id as uuid and nguid. */
export function namespaceOf(m: LunMapping): NamespaceSpec {
  const id = canonicalUuid(m.serial);
  return { devicePath: m.backingPath, deviceUuid: id, deviceNguid: id };
}

export interface NvmetHostTargetOptions {
  targetPrefix: string;
  /** nvmet_ns_id: the lowest nsid handed out */
  nvmetNsId: number;
}

export class NvmetHostTarget implements HostTargetHelper {
  readonly lunRange: LunRange;
  private readonly fs: NvmetConfigfs;

  /** `nvmet`: the backend's per-volume helper, whose configfs, modules and ports this shares. */
  constructor(
    private readonly nvmet: NvmetTarget,
    private readonly o: NvmetHostTargetOptions,
  ) {
    if (o.nvmetNsId > HOST_SUBSYSTEM_MAX_NSID) {
      throw invalidInput(`target_layout = per-host with target_helper = nvmet gives namespaces ids from nvmet_ns_id to ${HOST_SUBSYSTEM_MAX_NSID} (the kernel target's limit); nvmet_ns_id = ${o.nvmetNsId} leaves none. Set nvmet_ns_id to 1..${HOST_SUBSYSTEM_MAX_NSID} (cinder's default is 10).`);
    }
    this.lunRange = { min: o.nvmetNsId, max: HOST_SUBSYSTEM_MAX_NSID };
    this.fs = nvmet.fs;
  }

  isHostTargetIqn(name: string): boolean {
    return name.startsWith(hostSubsystemNqnPrefix(this.o.targetPrefix));
  }

  private check(t: HostTargetRecord): void {
    assertNqn(t.iqn, 'host subsystem NQN');
    if (!this.isHostTargetIqn(t.iqn)) throw invalidInput(`${t.iqn} is not one of this backend's host subsystems (nqn.<target_prefix>-cb-…)`);
    for (const m of t.luns) {
      assertBackingPath(m.backingPath);
      if (m.lun < this.lunRange.min || m.lun > this.lunRange.max) throw invalidInput(`nsid ${m.lun} of host subsystem ${t.iqn} is outside ${this.lunRange.min}..${this.lunRange.max}`);
      for (const h of m.initiators) assertNqn(h, 'host NQN');
    }
  }

  async apply(t: HostTargetRecord): Promise<void> {
    this.check(t);
    await subsystemLocks.run(t.iqn, async () => {
      if (t.luns.length === 0) {
        if (await this.fs.readSubsystem(t.iqn)) {
          await this.destroy(t.iqn);
          log().info({ nqn: t.iqn }, 'host subsystem deleted: its last namespace went');
        }
        return;
      }
      await this.nvmet.ensureModules();
      const made = await this.fs.createSubsystem(t.iqn);
      try {
        await this.reconcile(t, (await this.fs.readSubsystem(t.iqn)) as SubsystemInfo);
        await this.verify(t);
      } catch (e) {
        // a subsystem made here and left half-built could admit a host to too little or too much
        if (made) await this.destroy(t.iqn).catch((err: unknown) => log().error({ nqn: t.iqn, err }, 'could not delete a half-built host subsystem; `cinderblock audit --fix` removes it'));
        throw e;
      }
      log().info({ nqn: t.iqn, namespaces: t.luns.length, created: made }, 'host subsystem applied');
    });
  }

  /**
   * Order, for safety: allow_any_host off (createSubsystem); then what must go, narrowest first:
   * namespaces no mapping names (or naming another device: removed, then made again), host NQNs
   * no mapping names; then the admitted hosts, the namespaces (written disabled, then enabled),
   * the port links; a removed host's controllers dropped last.
   */
  private async reconcile(t: HostTargetRecord, now: SubsystemInfo): Promise<void> {
    const nqn = t.iqn;
    for (const ns of now.namespaces) {
      const m = t.luns.find((x) => x.lun === ns.nsid);
      const want = m ? namespaceOf(m) : null;
      if (!want || ns.devicePath !== want.devicePath || ns.deviceNguid !== want.deviceNguid || ns.deviceUuid !== want.deviceUuid) {
        await this.fs.removeNamespace(nqn, ns.nsid);
        log().info({ nqn, nsid: ns.nsid, volume_id: m?.volumeId ?? null }, m ? 'namespace of host subsystem rebuilt' : 'namespace removed from host subsystem');
      }
    }
    const hosts = admittedInitiators(t);
    const extra = now.hosts.filter((h) => !hosts.includes(h));
    for (const h of extra) await this.fs.disallowHost(nqn, h);
    for (const h of hosts) await this.fs.allowHost(nqn, h);
    for (const m of t.luns) {
      await this.fs.ensureNamespace(nqn, m.lun, namespaceOf(m));
      const ns = await this.fs.readNamespace(nqn, m.lun);
      if (!ns?.enabled) await this.fs.setNamespaceEnabled(nqn, m.lun, true);
    }
    await this.nvmet.linkPorts(nqn);
    if (extra.length > 0) {
      await this.nvmet.kickControllers(nqn);
      for (const h of extra) await this.fs.removeHostIfUnused(h).catch(() => false);
      log().info({ nqn, removed: extra }, 'host NQNs taken off host subsystem; its controllers dropped so only admitted NQNs reconnect');
    }
  }

  /** Read back: exactly the record, or an error (ENOENT-coded when the subsystem is gone, for the watch). */
  private async verify(t: HostTargetRecord): Promise<void> {
    const s = await this.fs.readSubsystem(t.iqn);
    if (!s) throw Object.assign(new Error(`host subsystem ${t.iqn} vanished while it was written (configfs cleared?)`), { code: 'ENOENT' });
    const wrong: string[] = [];
    if (s.allowAnyHost) wrong.push('attr_allow_any_host is 1');
    const hosts = [...admittedInitiators(t)].sort();
    if (hosts.join('\n') !== [...s.hosts].sort().join('\n')) wrong.push(`allowed hosts ${s.hosts.join(', ') || 'none'}`);
    const nsids = t.luns.map((m) => m.lun).sort((a, b) => a - b);
    if (nsids.join(',') !== s.namespaces.map((n) => n.nsid).join(',')) wrong.push(`namespaces ${s.namespaces.map((n) => n.nsid).join(',') || 'none'}`);
    for (const m of t.luns) {
      const ns = s.namespaces.find((n) => n.nsid === m.lun);
      if (ns && (!ns.enabled || ns.devicePath !== m.backingPath || ns.deviceNguid !== namespaceOf(m).deviceNguid)) wrong.push(`namespace ${m.lun}`);
    }
    if (!(await this.nvmet.linkedOnEveryPort()).has(t.iqn)) wrong.push('not linked on every port');
    if (wrong.length > 0) throw new Error(`host subsystem ${t.iqn} does not read back as its record: ${wrong.join('; ')}`);
  }

  /** Port links first (the kernel drops the controllers), namespaces, host links, the subsystem, unused hosts. */
  private async destroy(nqn: string): Promise<void> {
    const before = await this.fs.readSubsystem(nqn);
    await this.fs.removeSubsystem(nqn);
    for (const h of before?.hosts ?? []) await this.fs.removeHostIfUnused(h).catch(() => false);
  }

  async remove(name: string): Promise<void> {
    if (!this.isHostTargetIqn(name)) throw invalidInput(`${name} is not one of this backend's host subsystems; it is left alone`);
    await subsystemLocks.run(name, () => this.destroy(name));
    log().info({ nqn: name }, 'host subsystem removed');
  }

  /** revalidate_size where the kernel has it (hosts get an AEN); else the namespace goes off and on. */
  async extend(t: HostTargetRecord, lun: number): Promise<void> {
    await subsystemLocks.run(t.iqn, async () => {
      const ns = await this.fs.readNamespace(t.iqn, lun);
      if (!ns) return;
      if (await this.fs.revalidateSize(t.iqn, lun)) return;
      if (!ns.enabled) return;
      await this.fs.setNamespaceEnabled(t.iqn, lun, false);
      await this.fs.setNamespaceEnabled(t.iqn, lun, true);
    });
  }

  private async ours(): Promise<string[]> {
    if (!(await this.fs.available())) return [];
    return (await this.fs.listSubsystems()).filter((n) => this.isHostTargetIqn(n));
  }

  /** Our host subsystems as configfs has them. nvmet lists no controllers in configfs: sessions are unknown (empty). */
  async list(): Promise<LiveHostTarget[]> {
    const out: LiveHostTarget[] = [];
    for (const nqn of await this.ours()) {
      const s = await this.fs.readSubsystem(nqn);
      if (!s) continue;
      out.push({
        iqn: nqn,
        luns: s.namespaces.map((n) => ({ lun: n.nsid, backingPath: n.devicePath || null, serial: n.deviceNguid || null })),
        initiators: s.allowAnyHost ? [ANY_HOST, ...s.hosts] : s.hosts,
        sessions: [],
        chapUsers: [],
      });
    }
    return out;
  }

  /** The record's namespaces absent from its subsystem: one stat each (the watch's probe). */
  async missingLuns(t: HostTargetRecord): Promise<number[]> {
    const out: number[] = [];
    for (const m of t.luns) if (!(await this.fs.namespaceExists(t.iqn, m.lun))) out.push(m.lun);
    return out;
  }

  /** The host subsystems served: present and linked on every port (a lost link is a loss too). */
  async liveIqns(): Promise<string[]> {
    const linked = await this.nvmet.linkedOnEveryPort();
    return (await this.ours()).filter((n) => linked.has(n));
  }
}
