// The exports of a backend with target_layout = per-host: one target per compute host, each volume
// attached to that host a LUN of it, visible only to that host's initiators (CONTRACT-WAVE2 A5/A6).
// The same for NVMe/TCP (nvmet): a subsystem per host, each volume a namespace, admitting only the
// host's NQNs (CONTRACT-WAVE2 F4 model B). What differs by protocol (names, what a connector is
// admitted by, connection_info, CHAP) is the HostTargetProtocol's; the rest is here.
//
// The registry (targets/host-target/host-target-registry.ts) is the desired state: which volume is
// which LUN of which host's target, the host's CHAP, the LUN allocator. Each operation changes the
// record and then has the target tool make the daemon match it (HostTargetHelper.apply), holding
// the host target's lock: in-process, and the external lock file
// `cinder-cinderblock-host-target-<iqn>` in lock_path (oslo's naming), so a second agent process
// or an operator's tool excludes it too. Different hosts proceed side by side. The manager already
// holds the volume's connection lock and its in-process host lock around every call here, in that
// order; the host target lock comes after them, the registry lock last.
//
// terminate (cinder's rule, by host: CONTRACT-WAVE2 A6): while another attachment of the volume
// from the same host remains, the LUN stays; otherwise it goes from that host's target, and the
// target goes with its last LUN (sessions closed). connector None with force: the volume leaves
// every host target.
//
// A backend switched from per-volume keeps using a volume's per-volume target for as long as that
// target exists (its attachments keep working, a new attachment of the same volume joins them);
// once it is removed, the volume's next export is per host. Volumes exported per host carry
// provider_location `cinderblock:per-host` (the LUN and target depend on the host, so nothing
// else about the export belongs on the volume row) and no provider_auth (CHAP is the host's).
import type { DriverVolume, ModelUpdate, VolumeDriver } from './driver.js';
import { runSupervised, type BackendExport, type ExportInventory, type RevokeOptions, type TargetExports, type VolumeExports } from './exports.js';
import { volumeSerial } from './targets/host-target/host-target-name.js';
import type { HostTargetProtocol, ToldByConnectionInfo } from './targets/host-target/host-target-protocol.js';
import {
  admittedInitiators,
  allocateLun,
  emptyHostTarget,
  releaseLun,
  type HostTargetRecord,
  type LunMapping,
  type HostTargetRegistry,
  type HostTargetState,
} from './targets/host-target/host-target-registry.js';
import type { HostTargetHelper } from './targets/host-target/host-target.js';
import type { TargetSupervisor } from './targets/target-supervisor.js';
import type { ConnectionInfo, Connector } from './targets/target.js';
import { KeyedMutex } from '../src/concurrency/keyed-mutex.js';
import { generateChapCredentials } from '../src/iscsi/index.js';
import { log } from '../src/log.js';
import { acquireExternalLock } from '../src/native/lock.js';

/** provider_location of a volume exported per host. */
export const PER_HOST_LOCATION = 'cinderblock:per-host';

export interface HostTargetExportsOptions {
  /** names, admission and connection_info of the protocol the host targets speak */
  protocol: HostTargetProtocol;
  helper: HostTargetHelper;
  registry: HostTargetRegistry;
  supervisor: TargetSupervisor | null;
  /** [oslo_concurrency] lock_path; null: in-process locks only */
  lockPath: string | null;
  driver: Pick<VolumeDriver, 'exportPath' | 'prepareExport'>;
  /** the same backend's per-volume exports, for volumes exported before the switch */
  perVolume: TargetExports;
}

/** The host a connector stands for on a host target: nova's `host`, else the name it is admitted by. */
export function connectorHost(connector: Connector, protocol: HostTargetProtocol): string {
  if (typeof connector.host === 'string' && connector.host !== '') return connector.host;
  return protocol.admittedName(connector);
}

// one per process: every backend's host targets, keyed by IQN (IQNs include the backend)
const hostTargetLocks = new KeyedMutex();
// IQN -> operations holding or waiting for its lock, and how many began or ended so far: the loss
// probe leaves alone a host target that was busy at any moment of its look
const hostTargetsBusy = new Map<string, number>();
const hostTargetsEpoch = new Map<string, number>();
const touch = (iqn: string): void => {
  hostTargetsEpoch.set(iqn, (hostTargetsEpoch.get(iqn) ?? 0) + 1);
};

export class HostTargetExports implements VolumeExports {
  readonly sharedTargets: boolean | null;

  constructor(private readonly o: HostTargetExportsOptions) {
    this.sharedTargets = o.protocol.sharedTargets;
  }

  private hostOf(connector: Connector): string {
    return connectorHost(connector, this.o.protocol);
  }

  private isLegacy(volume: DriverVolume): boolean {
    return volume.providerLocation !== null && volume.providerLocation !== PER_HOST_LOCATION;
  }

  private iqnFor(host: string): string {
    return this.o.protocol.targetName(host);
  }

  private same(a: string, b: string): boolean {
    return this.o.protocol.sameName(a, b);
  }

  /** Holds the host target's lock (in-process, then the external file) around fn. */
  private async withHostTarget<T>(iqn: string, fn: () => Promise<T>): Promise<T> {
    hostTargetsBusy.set(iqn, (hostTargetsBusy.get(iqn) ?? 0) + 1);
    touch(iqn);
    try {
      return await hostTargetLocks.run(iqn, async () => {
        const release = this.o.lockPath ? await acquireExternalLock(this.o.lockPath, `cinderblock-host-target-${iqn}`) : null;
        try {
          return await fn();
        } finally {
          await release?.();
        }
      });
    } finally {
      touch(iqn);
      const n = (hostTargetsBusy.get(iqn) ?? 1) - 1;
      if (n === 0) hostTargetsBusy.delete(iqn);
      else hostTargetsBusy.set(iqn, n);
    }
  }

  private async apply(record: HostTargetRecord): Promise<void> {
    await runSupervised(this.o.supervisor, () => this.o.helper.apply(record));
  }

  validateConnector(connector: Connector): void {
    this.o.protocol.admittedName(connector);
  }

  async createExport(volume: DriverVolume): Promise<ModelUpdate | null> {
    if (this.isLegacy(volume) && (await this.o.perVolume.isExported(this.o.protocol.perVolumeTargetName(volume)))) {
      return this.o.perVolume.createExport(volume);
    }
    await this.o.driver.prepareExport(volume);
    if (volume.providerLocation === PER_HOST_LOCATION && volume.providerAuth === null) return null;
    return { provider_location: PER_HOST_LOCATION, provider_auth: null };
  }

  async initializeConnection(volume: DriverVolume, connector: Connector): Promise<ConnectionInfo> {
    if (this.isLegacy(volume)) return this.o.perVolume.initializeConnection(volume, connector);
    const initiator = this.o.protocol.admittedName(connector);
    const host = this.hostOf(connector);
    const iqn = this.iqnFor(host);
    const backingPath = this.o.driver.exportPath(volume);
    return this.withHostTarget(iqn, async () => {
      let added: 'lun' | 'initiator' | null = null;
      const record = await this.o.registry.update((state) => {
        refuseSharedName(this.o.protocol, state, host, initiator);
        let t = state.targets.find((x) => x.host === host);
        if (!t) {
          t = emptyHostTarget(host, iqn, this.o.protocol.usesChap ? generateChapCredentials() : null);
          state.targets.push(t);
        }
        const m = t.luns.find((x) => x.volumeId === volume.id);
        if (m) {
          if (!m.initiators.some((i) => this.same(i, initiator))) {
            m.initiators.push(initiator);
            added = 'initiator';
          }
          m.backingPath = backingPath;
        } else {
          const lun = allocateLun(t, this.o.helper.lunRange);
          t.luns.push({ lun, volumeId: volume.id, volumeName: volume.name, backingPath, serial: volumeSerial(volume), initiators: [initiator] });
          added = 'lun';
        }
        return structuredClone(t);
      });
      try {
        await this.apply(record);
      } catch (err) {
        await this.undoMap(iqn, host, volume.id, initiator, added);
        throw this.o.protocol.attachFailed(volume.id, err);
      }
      const mapping = record.luns.find((x) => x.volumeId === volume.id) as LunMapping;
      log().info({ volume_id: volume.id, iqn, lun: mapping.lun, initiator }, 'volume mapped into host target');
      return this.o.protocol.connectionInfo(record, mapping, connector);
    });
  }

  /** A failed map is taken back: the registry as before, the daemon made to match it again. */
  private async undoMap(iqn: string, host: string, volumeId: string, initiator: string, added: 'lun' | 'initiator' | null): Promise<void> {
    if (added === null) return;
    try {
      const record = await this.o.registry.update((state) => {
        const t = state.targets.find((x) => x.host === host);
        if (!t) return null;
        const m = t.luns.find((x) => x.volumeId === volumeId);
        if (!m) return structuredClone(t);
        if (added === 'lun') releaseLun(t, m.lun);
        else m.initiators = m.initiators.filter((i) => !this.same(i, initiator));
        return structuredClone(t);
      });
      if (record) await this.apply(record);
    } catch (err) {
      log().error({ err, iqn, volume_id: volumeId }, `Could not take back a failed mapping on host target ${iqn}; run \`cinderblock audit --fix\` to remove what is left`);
    }
  }

  async terminateConnection(volume: DriverVolume, connector: Connector | null, opts: RevokeOptions): Promise<void> {
    if (this.isLegacy(volume)) return this.o.perVolume.terminateConnection(volume, connector, opts);
    const remaining = opts.remaining ?? [];
    let host: string | null = null;
    if (connector) {
      try {
        host = this.hostOf(connector);
      } catch {
        host = null;
      }
    }
    if (host === null) {
      if (opts.force) await this.unmapEverywhere(volume, 'force detach without a connector');
      else log().warn({ volume_id: volume.id }, 'terminate_connection without a host or initiator and without force: nothing to unmap');
      return;
    }
    const sameHost = remaining.filter((c) => {
      try {
        return this.hostOf(c) === host;
      } catch {
        return false;
      }
    });
    const namesOf = (cs: readonly Connector[]): string[] =>
      cs.flatMap((c) => {
        try {
          return [this.o.protocol.admittedName(c)];
        } catch {
          return [];
        }
      });
    const iqn = this.iqnFor(host);
    await this.withHostTarget(iqn, async () => {
      const record = await this.o.registry.update((state) => {
        const t = state.targets.find((x) => x.host === host);
        const m = t?.luns.find((x) => x.volumeId === volume.id);
        if (!t || !m) return null;
        if (sameHost.length > 0) {
          // cinder's same-connector rule, by host: the LUN stays for the other attachment; only
          // initiators no remaining attachment uses are dropped
          const staying = namesOf(sameHost);
          m.initiators = m.initiators.filter((i) => staying.some((n) => this.same(n, i)));
          if (m.initiators.length === 0) m.initiators = staying;
        } else {
          releaseLun(t, m.lun);
        }
        return structuredClone(t);
      });
      if (!record) {
        log().info({ volume_id: volume.id, iqn }, 'terminate_connection: the volume is not mapped into this host target');
        return;
      }
      try {
        await this.apply(record);
      } catch (err) {
        throw this.o.protocol.detachFailed(volume.id, err);
      }
      log().info({ volume_id: volume.id, iqn, kept: sameHost.length > 0 }, sameHost.length > 0 ? 'another attachment from this host remains; LUN kept' : 'volume unmapped from host target');
    });
  }

  /** Take the volume out of every host target (force detach, remove_export, delete). */
  private async unmapEverywhere(volume: DriverVolume, why: string): Promise<void> {
    const state = await this.o.registry.read();
    for (const t of state.targets.filter((x) => x.luns.some((m) => m.volumeId === volume.id))) {
      await this.withHostTarget(t.iqn, async () => {
        const record = await this.o.registry.update((s) => {
          const r = s.targets.find((x) => x.iqn === t.iqn);
          const m = r?.luns.find((x) => x.volumeId === volume.id);
          if (!r || !m) return null;
          releaseLun(r, m.lun);
          return structuredClone(r);
        });
        if (record) {
          await this.apply(record);
          log().info({ volume_id: volume.id, iqn: t.iqn }, `volume unmapped from host target (${why})`);
        }
      });
    }
  }

  async removeExport(volume: DriverVolume): Promise<void> {
    if (this.isLegacy(volume)) return this.o.perVolume.removeExport(volume);
    await this.unmapEverywhere(volume, 'remove_export');
  }

  /**
   * Restore (start-up, a lost daemon): the volume is a LUN of exactly the host targets of its
   * attached connectors, with the numbers the registry holds; a mapping for a host no longer
   * attached goes. A host the registry has no LUN for gets a new one (the registry was lost or
   * moved away): its connection_info in nova names the old number, so the host must reattach,
   * which is logged.
   */
  async ensureExport(volume: DriverVolume, initiators?: readonly string[], connectors?: readonly Connector[], given?: ReadonlyArray<Record<string, unknown> | null>): Promise<void> {
    if (this.isLegacy(volume)) return this.o.perVolume.ensureExport(volume, initiators);
    await this.o.driver.prepareExport(volume);
    const attached = new Map<string, string[]>();
    const told = new Map<string, ToldByConnectionInfo>();
    for (const [i, c] of (connectors ?? []).entries()) {
      let host: string;
      let initiator: string;
      try {
        initiator = this.o.protocol.admittedName(c);
        host = this.hostOf(c);
      } catch {
        continue;
      }
      const list = attached.get(host) ?? [];
      if (!list.some((x) => this.same(x, initiator))) list.push(initiator);
      attached.set(host, list);
      const t = this.o.protocol.told(given?.[i] ?? null, this.iqnFor(host), this.o.helper.lunRange);
      if (t && !told.has(host)) told.set(host, t);
    }
    const state = await this.o.registry.read();
    const hosts = new Set([...attached.keys(), ...state.targets.filter((t) => t.luns.some((m) => m.volumeId === volume.id)).map((t) => t.host)]);
    const backingPath = this.o.driver.exportPath(volume);
    for (const host of hosts) {
      const iqn = this.iqnFor(host);
      await this.withHostTarget(iqn, async () => {
        const record = await this.o.registry.update((s) => {
          let t = s.targets.find((x) => x.host === host);
          const want = attached.get(host);
          if (!want) {
            const m = t?.luns.find((x) => x.volumeId === volume.id);
            if (t && m) releaseLun(t, m.lun);
            return t ? structuredClone(t) : null;
          }
          const was = told.get(host);
          if (!t) {
            // no record of this host (the registry was lost): its CHAP as the host was told it
            t = emptyHostTarget(host, iqn, this.o.protocol.usesChap ? (was?.chap ?? generateChapCredentials()) : null);
            s.targets.push(t);
            log().warn({ iqn, host, chap_from_attachment: Boolean(was?.chap) }, `host target of ${host} had no record; rebuilt from the database`);
          }
          const m = t.luns.find((x) => x.volumeId === volume.id);
          if (m) {
            m.initiators = [...want];
            m.backingPath = backingPath;
          } else {
            // the number the host was told for this very volume, when no other volume holds it and it
            // was not released in this generation (a device of another instance on that host may still
            // point at it); else a new one
            const keep = was?.lun !== undefined && !t.luns.some((x) => x.lun === was.lun) && t.released[String(was.lun)] !== t.generation ? was.lun : null;
            const lun = keep ?? allocateLun(t, this.o.helper.lunRange);
            if (keep !== null) {
              t.nextLun = Math.max(t.nextLun, keep + 1);
              log().warn({ volume_id: volume.id, iqn, lun }, `volume ${volume.id} had no LUN in the host target registry; mapped again as LUN ${lun}, the number its attachment's connection_info gave host ${host}`);
            } else {
              log().warn({ volume_id: volume.id, iqn, lun }, `volume ${volume.id} is attached to host ${host} but the host target registry had no LUN for it; mapped as LUN ${lun}: the host must detach and attach it again`);
            }
            t.luns.push({ lun, volumeId: volume.id, volumeName: volume.name, backingPath, serial: volumeSerial(volume), initiators: [...want] });
          }
          return structuredClone(t);
        });
        if (record) await this.apply(record);
      });
    }
  }

  async extendTarget(volume: DriverVolume): Promise<void> {
    if (this.isLegacy(volume)) return this.o.perVolume.extendTarget(volume);
    const state = await this.o.registry.read();
    for (const t of state.targets) {
      const m = t.luns.find((x) => x.volumeId === volume.id);
      if (m) await this.withHostTarget(t.iqn, () => runSupervised(this.o.supervisor, () => this.o.helper.extend(t, m.lun)));
    }
  }

  async findExports(): Promise<BackendExport[]> {
    return this.o.perVolume.findExports();
  }

  async removeOrphanAccounts(): Promise<number> {
    return this.o.perVolume.removeOrphanAccounts();
  }

  async inventory(): Promise<ExportInventory> {
    const [state, live, perVolume] = await Promise.all([this.o.registry.read(), this.o.helper.list(), this.o.perVolume.findExports()]);
    return { hostTargets: { records: state.targets, live }, perVolume };
  }

  /**
   * Host targets the registry maps LUNs into that the daemon does not serve now (configfs cleared,
   * modules reloaded): for the target supervisor's probe. A host target with an operation in flight
   * is left out: the registry is written before the daemon is changed, so a difference then is no
   * loss, and that operation makes the daemon match anyway. Never waits for a host target's lock:
   * the supervisor may probe from inside an operation that holds one (its first ready()).
   */
  async missingHostTargets(): Promise<string[]> {
    const epochs = new Map(hostTargetsEpoch);
    const state = await this.o.registry.read();
    const live = new Set(this.o.helper.liveIqns ? await this.o.helper.liveIqns() : (await this.o.helper.list()).map((t) => t.iqn));
    const quiet = (iqn: string): boolean => !hostTargetsBusy.has(iqn) && hostTargetsEpoch.get(iqn) === epochs.get(iqn);
    const missing: string[] = [];
    for (const t of state.targets.filter((x) => x.luns.length > 0)) {
      // served, but a LUN of the record gone (removed by hand): as lost as the whole target
      const lost = !live.has(t.iqn) || (this.o.helper.missingLuns ? (await this.o.helper.missingLuns(t)).length > 0 : false);
      if (lost && quiet(t.iqn)) missing.push(t.iqn);
    }
    return missing;
  }

  /** Make one host target match its record again (the audit's fix of a drift), under its lock. */
  async reapplyHostTarget(iqn: string): Promise<void> {
    await this.withHostTarget(iqn, async () => {
      const t = (await this.o.registry.read()).targets.find((x) => x.iqn === iqn);
      if (t) await this.apply(t);
      else await runSupervised(this.o.supervisor, () => this.o.helper.remove(iqn));
    });
  }

  /** Drop a mapping the database no longer backs (audit --fix), under the host target's lock. */
  async unmapFromHostTarget(iqn: string, volumeId: string): Promise<void> {
    await this.withHostTarget(iqn, async () => {
      const record = await this.o.registry.update((s) => {
        const t = s.targets.find((x) => x.iqn === iqn);
        const m = t?.luns.find((x) => x.volumeId === volumeId);
        if (!t || !m) return null;
        releaseLun(t, m.lun);
        return structuredClone(t);
      });
      if (record) await this.apply(record);
    });
  }

  get helper(): HostTargetHelper {
    return this.o.helper;
  }
}

/**
 * Two compute hosts presenting one admitted name (a cloned image that kept
 * /etc/iscsi/initiatorname.iscsi or /etc/nvme/hostnqn) would each be admitted to the other's
 * target. Refused.
 */
function refuseSharedName(protocol: HostTargetProtocol, state: HostTargetState, host: string, name: string): void {
  for (const t of state.targets) {
    if (t.host === host) continue;
    if (admittedInitiators(t).some((i) => protocol.sameName(i, name))) throw protocol.sharedNameError(name, t.host, host);
  }
}
