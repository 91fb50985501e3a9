// The contract between the volume manager and a storage backend. Drivers know nothing of AMQP,
// of oslo objects or of the database: the manager hands them plain records and writes back the
// model updates they return, as cinder's VolumeManager does with its drivers.

export interface DriverVolume {
  id: string;
  /** cinder's volume name: volume_name_template % (_name_id or id), e.g. `volume-<uuid>`. */
  name: string;
  /** GiB */
  size: number;
  providerLocation: string | null;
  providerAuth: string | null;
  multiattach: boolean;
}

export interface DriverSnapshot {
  id: string;
  /** `snapshot-<uuid>` */
  name: string;
  volumeId: string;
  volumeName: string;
  /** GiB: the size of the volume when the snapshot was taken */
  volumeSize: number;
  providerLocation: string | null;
}

/** Columns a driver may ask the manager to store on the volume or snapshot row. */
export interface ModelUpdate {
  provider_location?: string | null;
  provider_auth?: string | null;
  provider_id?: string | null;
  provider_geometry?: string | null;
}

/** One pool of the capability report, as cinder's scheduler reads it (CONTRACT §4). */
export interface PoolStats {
  pool_name: string;
  total_capacity_gb: number | 'infinite' | 'unknown';
  free_capacity_gb: number | 'infinite' | 'unknown';
  reserved_percentage: number;
  location_info: string;
  QoS_support: boolean;
  provisioned_capacity_gb: number;
  max_over_subscription_ratio: string;
  thin_provisioning_support: boolean;
  thick_provisioning_support: boolean;
  total_volumes: number;
  filter_function: string | null;
  goodness_function: string | null;
  multiattach: boolean;
  backend_state: 'up' | 'down';
  [extra: string]: unknown;
}

export interface BackendStats {
  volume_backend_name: string;
  vendor_name: string;
  driver_version: string;
  storage_protocol: string;
  shared_targets: boolean;
  sparse_copy_volume: boolean;
  pools: PoolStats[];
  [extra: string]: unknown;
}

export interface VolumeDriver {
  /** The class name cinder would log, e.g. `LVMVolumeDriver`, `FileVolumeDriver`. */
  readonly className: string;
  /** Prepare the backend (create directories, find the volume group). Throws with what to fix. */
  doSetup(): Promise<void>;
  /** Verify the backend is usable; the service does not report itself up until this passes. */
  checkForSetupError(): Promise<void>;
  /** Fresh statistics for the scheduler (never cached across calls). */
  getVolumeStats(): Promise<BackendStats>;
  /** cinder's secure_file_operations_enabled: false for block drivers. */
  secureFileOperationsEnabled(): boolean;

  createVolume(volume: DriverVolume): Promise<ModelUpdate | null>;
  deleteVolume(volume: DriverVolume): Promise<void>;
  extendVolume(volume: DriverVolume, newSizeGb: number): Promise<void>;
  /** The local block device or file that holds the volume's data. */
  localPath(volume: DriverVolume): string;
}

// ---- snapshots, clones, revert, manage, export delegation (the manager's flows, CONTRACT §3) ----

/** What the target helper needs to know of a connector; the manager validates it first. */
export type { Connector, ConnectionInfo, TerminateOptions } from './targets/target.js';
import type { Connector, ConnectionInfo, TerminateOptions } from './targets/target.js';

/** cinder's NotImplementedError from a driver: the manager falls back to its generic path. */
export class DriverNotImplemented extends Error {
  constructor(what: string) {
    super(`${what} is not implemented by this driver`);
    this.name = 'NotImplementedError';
  }
}

/** cinder.exception.VolumeIsBusy / SnapshotIsBusy: the resource cannot go now, keep it. */
export class ResourceBusy extends Error {
  constructor(
    readonly kind: 'volume' | 'snapshot',
    readonly resourceName: string,
  ) {
    super(`${kind} ${resourceName} is busy`);
    this.name = kind === 'volume' ? 'VolumeIsBusy' : 'SnapshotIsBusy';
  }
}

/** The backend has no room for a new volume or snapshot (the file pool's ENOSPC). */
export class PoolFull extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PoolFull';
  }
}

export interface FullVolumeDriver extends VolumeDriver {
  createSnapshot(snapshot: DriverSnapshot): Promise<ModelUpdate | null>;
  /** Absent snapshot is success; ResourceBusy when it cannot go. */
  deleteSnapshot(snapshot: DriverSnapshot): Promise<void>;
  /** New volume with the snapshot's content, grown to volume.size. */
  createVolumeFromSnapshot(volume: DriverVolume, snapshot: DriverSnapshot): Promise<ModelUpdate | null>;
  /** New volume with the source volume's content, grown to volume.size. */
  createClonedVolume(volume: DriverVolume, source: DriverVolume): Promise<ModelUpdate | null>;
  /** Native revert; DriverNotImplemented makes the manager copy through a temp volume. */
  revertToSnapshot(volume: DriverVolume, snapshot: DriverSnapshot): Promise<void>;
  /** cinder's snapshot_revert_use_temp_snapshot(): take a safety snapshot before reverting. */
  snapshotRevertUseTempSnapshot(): boolean;
  /** Copies `bytes` of one local path to another (the generic revert/copy path). */
  copyData(src: string, dst: string, bytes: number): Promise<void>;
  /** true when the type change needs no data movement (cinder's driver.retype returning True). */
  retype(volume: DriverVolume, newExtraSpecs: Record<string, string | null>): Promise<boolean>;
  /** Size in GiB (rounded up) of an existing backend object named by `ref` (manage_existing_get_size). */
  manageExistingGetSize(ref: Record<string, unknown>): Promise<number>;
  /** Adopt the object named by `ref` as `volume` (renaming it to the volume's name). */
  manageExisting(volume: DriverVolume, ref: Record<string, unknown>): Promise<ModelUpdate | null>;
  /** Forget the volume without touching its data (cinder's unmanage). */
  unmanage(volume: DriverVolume): Promise<void>;
  /** Whether the volume's data exists on the backend (crash recovery, tests). */
  volumeExists(volume: DriverVolume): Promise<boolean>;

  // Export delegation to the target helper (cinder's driver.create_export etc.).
  validateConnector(connector: Connector): void;
  createExport(volume: DriverVolume): Promise<ModelUpdate | null>;
  ensureExport(volume: DriverVolume, initiators?: readonly string[]): Promise<void>;
  removeExport(volume: DriverVolume): Promise<void>;
  initializeConnection(volume: DriverVolume, connector: Connector): Promise<ConnectionInfo>;
  terminateConnection(volume: DriverVolume, connector: Connector | null, opts: TerminateOptions): Promise<void>;
  /** Make a grown volume's new size visible through its export. */
  extendTarget(volume: DriverVolume): Promise<void>;
  /**
   * The start-up sweep of what a crash left: exports the target helper finds (live or in its
   * record) that serve one of this backend's volumes, told by their backing device. Never
   * starts a target daemon.
   */
  findExports?(): Promise<BackendExport[]>;
  /** Delete the CHAP accounts the target helper created that no target uses; returns how many. */
  removeOrphanExportAccounts?(): Promise<number>;
}

/** An export of one of this backend's volumes, as findExports reports it. */
export interface BackendExport {
  /** the volume name the export was made for (`volume-<uuid>`) */
  volumeName: string;
  iqn: string;
  /** the target exists on the daemon now (otherwise only the helper's record names it) */
  live: boolean;
}
