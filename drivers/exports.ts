// A backend's export side, the second of the two things the manager holds of a backend (the
// first is its VolumeDriver, the data side). Every block backend exports the same way (cinder's
// LVM driver delegates to self.target_driver): the target helper serves the device or file the
// driver names, after the driver's activation hook. So this is built once per backend, in the
// composition root, from the driver's exportPath/prepareExport and the target helper, and it owns
// what surrounds every helper call:
//  - the target daemon first: an operation waits until the supervisor has the daemon ready, and
//    one that finds the daemon gone midway has it probed (restarted where the agent may) at once
//    and runs again; every helper operation is idempotent, so a new attach that meets a
//    just-killed tgtd succeeds once tgtd is back instead of failing. The start-up sweep's reads
//    (findExports, removeOrphanAccounts) never start a daemon: a backend that never exports never
//    touches tgtd.
//  - the revocation policy: the manager says which connectors stay attached once this one goes;
//    the initiator keeps its ACL exactly when one of them is its own (cinder's lvm.py multiattach
//    check), otherwise it is refused and its sessions closed.
//  - never exported (no provider_location): nothing to revoke or remove, as cinder's tgt driver.
import { notImplementedError } from '../src/errors.js';
import { samePath } from '../src/fs/same-path.js';
import type { DriverVolume, ModelUpdate, VolumeDriver } from './driver.js';
import { validateIscsiConnector } from './targets/iscsi-common.js';
import type { ConnectionInfo, Connector, ExportedVolume, TargetHelper } from './targets/target.js';
import type { TargetSupervisor } from './targets/target-supervisor.js';
import type { HostTargetRecord } from './targets/host-target/host-target-registry.js';
import type { LiveHostTarget } from './targets/host-target/host-target.js';

export type { ConnectionInfo, Connector } from './targets/target.js';

/** An export of one of this backend's volumes, as findExports reports it. */
export interface BackendExport {
  /** the volume name the export was made for (`volume-<uuid>`) */
  volumeName: string;
  iqn: string;
  /** the target exists on the daemon now (otherwise only the helper's record names it) */
  live: boolean;
  /** live: whom it admits by name (FoundExport.admitted); the audit checks each against the attachments */
  admitted?: string[];
}

export interface RevokeOptions {
  /** force detach (cinder's force=True): with no connector, every initiator is cut off. */
  force?: boolean;
  /**
   * The connectors of the volume's attachments that stay once this one goes (attached or
   * attaching, with a connector). The leaving initiator keeps its ACL when it is among them.
   */
  remaining?: readonly Connector[];
}

/** What the manager asks of a backend's exports (cinder's driver.create_export and the rest). */
export interface VolumeExports {
  /**
   * What cinder's _driver_shares_targets() makes of this backend: true when a compute host's
   * volumes share its iSCSI target (target_layout = per-host), null when they share its NVMe
   * subsystem (consumers always lock), false for a target per volume. Written to every volume
   * this backend creates; reported in the capabilities (null as true: the targets are shared).
   */
  readonly sharedTargets: boolean | null;
  /** Throws cinder's InvalidConnectorException when the connector lacks what the target needs. */
  validateConnector(connector: Connector): void;
  /** Create the export (idempotent); returns provider_location/provider_auth to store. */
  createExport(volume: DriverVolume): Promise<ModelUpdate | null>;
  /**
   * Recreate a missing or partial export (restart, daemon loss). `initiators`, the database's
   * attached initiators, replaces the helper's own record of who may log in.
   */
  ensureExport(volume: DriverVolume, initiators?: readonly string[], connectors?: readonly Connector[], given?: ReadonlyArray<Record<string, unknown> | null>): Promise<void>;
  /** Remove the target, its account and its record. Idempotent. */
  removeExport(volume: DriverVolume): Promise<void>;
  /** Admit the connector's initiator and return the target part of connection_info. */
  initializeConnection(volume: DriverVolume, connector: Connector): Promise<ConnectionInfo>;
  /** Revoke the connector's initiator unless a remaining attachment is its own (RevokeOptions). */
  terminateConnection(volume: DriverVolume, connector: Connector | null, opts: RevokeOptions): Promise<void>;
  /** Make a grown volume's new size visible through its export. */
  extendTarget(volume: DriverVolume): Promise<void>;
  /**
   * The start-up sweep of what a crash left: exports the helper finds (live or in its record)
   * that serve one of this backend's volumes, told by their backing device. Never starts a daemon.
   */
  findExports(): Promise<BackendExport[]>;
  /** Delete the CHAP accounts the helper created that no target uses; returns how many. */
  removeOrphanAccounts(): Promise<number>;
  /** What the audit compares with the database (src/manager/audit.ts). Never starts a daemon. */
  inventory(): Promise<ExportInventory>;
  /** audit --fix, per-host layout: take a volume out of one host target. */
  unmapFromHostTarget?(iqn: string, volumeId: string): Promise<void>;
  /** audit --fix, per-host layout: make a host target match its record again (removed when it has none). */
  reapplyHostTarget?(iqn: string): Promise<void>;
}

/** The exports as recorded and as live, for the audit. */
export interface ExportInventory {
  /** per-host layout: the registry's records and the host targets live on the daemon; null per volume */
  hostTargets: { records: HostTargetRecord[]; live: LiveHostTarget[] } | null;
  /** per-volume targets of this backend's volumes (live or recorded) */
  perVolume: BackendExport[];
}

export interface TargetExportsOptions {
  /** The backend's target helper; null when none is configured (target_helper = fake). */
  target: TargetHelper | null;
  /** Watches the helper's daemon; null: the helper is used as it is (tests). */
  supervisor: TargetSupervisor | null;
  /** The data side's part in an export. */
  driver: Pick<VolumeDriver, 'exportPath' | 'prepareExport'>;
}

/** Runs a helper operation once the daemon is ready, and once more if the daemon died under it. */
export async function runSupervised<T>(supervisor: TargetSupervisor | null, op: () => Promise<T>): Promise<T> {
  if (!supervisor) return op();
  await supervisor.ready();
  try {
    return await op();
  } catch (err) {
    if (!supervisor.watch.isDaemonGone(err)) throw err;
    await supervisor.troubleNoticed();
    await supervisor.ready();
    return op();
  }
}

/**
 * Whether the leaving connector's initiator stays admitted for another attachment of its own. A
 * connector with no iSCSI initiator (an NVMe-only compute host) is that host by its `nqn`, which
 * is what the nvmet helper admits.
 */
export function keepsAcl(connector: Connector | null, remaining: readonly Connector[]): boolean {
  const initiator = connector?.initiator;
  if (typeof initiator === 'string') return remaining.some((c) => c.initiator === initiator);
  const nqn = connector?.nqn;
  return typeof nqn === 'string' && nqn !== '' && remaining.some((c) => c.nqn === nqn);
}

/** VolumeExports through one target helper (tgt or LIO), supervised. */
export class TargetExports implements VolumeExports {
  readonly sharedTargets = false;

  constructor(private readonly opts: TargetExportsOptions) {}

  /** Whether a per-volume target of this name is on the daemon now (a backend switched to per-host keeps using it until it is gone). */
  async isExported(targetName: string): Promise<boolean> {
    const helper = this.opts.target;
    if (!helper) return false;
    return this.supervised(async () => (await helper.listExports()).includes(targetName));
  }

  private helper(): TargetHelper {
    if (!this.opts.target) throw notImplementedError('Exporting volumes is not implemented by this backend: no target helper is configured.');
    return this.opts.target;
  }

  private async supervised<T>(op: () => Promise<T>): Promise<T> {
    return runSupervised(this.opts.supervisor, op);
  }

  private exported(volume: DriverVolume): ExportedVolume {
    return {
      id: volume.id,
      name: volume.name,
      providerLocation: volume.providerLocation,
      providerAuth: volume.providerAuth,
      backingPath: this.opts.driver.exportPath(volume),
      multiattach: volume.multiattach,
    };
  }

  validateConnector(connector: Connector): void {
    // Without a target helper the connector is still checked as cinder's iSCSI targets check it.
    if (this.opts.target) this.opts.target.validateConnector(connector);
    else validateIscsiConnector(connector);
  }

  async createExport(volume: DriverVolume): Promise<ModelUpdate | null> {
    const helper = this.helper();
    await this.opts.driver.prepareExport(volume);
    return this.supervised(() => helper.createExport(this.exported(volume)));
  }

  async ensureExport(volume: DriverVolume, initiators?: readonly string[], connectors?: readonly Connector[]): Promise<void> {
    const helper = this.helper();
    await this.opts.driver.prepareExport(volume);
    const opts = initiators || connectors ? { ...(initiators ? { initiators } : {}), ...(connectors ? { connectors } : {}) } : undefined;
    await this.supervised(() => helper.ensureExport(this.exported(volume), opts));
  }

  async removeExport(volume: DriverVolume): Promise<void> {
    const helper = this.opts.target;
    if (!helper || !volume.providerLocation) return;
    await this.supervised(() => helper.removeExport(this.exported(volume)));
  }

  async initializeConnection(volume: DriverVolume, connector: Connector): Promise<ConnectionInfo> {
    const helper = this.helper();
    return this.supervised(() => helper.initializeConnection(this.exported(volume), connector));
  }

  async terminateConnection(volume: DriverVolume, connector: Connector | null, opts: RevokeOptions): Promise<void> {
    const helper = this.opts.target;
    if (!helper || !volume.providerLocation) return;
    const keepAcl = keepsAcl(connector, opts.remaining ?? []);
    await this.supervised(() => helper.terminateConnection(this.exported(volume), connector, { force: opts.force ?? false, keepAcl }));
  }

  async extendTarget(volume: DriverVolume): Promise<void> {
    const helper = this.opts.target;
    if (!helper) return;
    await this.supervised(() => helper.extendTarget(this.exported(volume)));
  }

  /**
   * The helper's exports that serve this backend's volumes: the LUN (or the record) points at
   * the path the driver gives that volume name. Two backends can share one tgtd, one
   * target_prefix and one volumes_dir; the backing path tells whose an export is. A target left
   * without a LUN counts only when the helper recorded it.
   */
  async findExports(): Promise<BackendExport[]> {
    const helper = this.opts.target;
    if (!helper?.findExports) return [];
    const out: BackendExport[] = [];
    for (const f of await helper.findExports()) {
      let ours: boolean;
      if (f.backingPath === null) {
        ours = f.recorded;
      } else {
        let want: string;
        try {
          want = this.opts.driver.exportPath({ name: f.volumeName });
        } catch {
          continue; // not a name this driver could have made
        }
        ours = await samePath(f.backingPath, want);
      }
      if (ours) out.push({ volumeName: f.volumeName, iqn: f.iqn, live: f.live, ...(f.admitted ? { admitted: f.admitted } : {}) });
    }
    return out;
  }

  async removeOrphanAccounts(): Promise<number> {
    return this.opts.target?.removeOrphanAccounts ? this.opts.target.removeOrphanAccounts() : 0;
  }

  async inventory(): Promise<ExportInventory> {
    return { hostTargets: null, perVolume: await this.findExports() };
  }
}
