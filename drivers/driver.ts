// The data side of the contract between the volume manager and a storage backend (the export side
// is exports.ts). Drivers know nothing of AMQP, of oslo objects or of the database: the manager
// hands them plain records and writes back the model updates they return, as cinder's
// VolumeManager does with its drivers.

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

/** One pool of the capability report, as cinder's scheduler reads it (cinder/volume/drivers/lvm.py _update_volume_stats). */
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

/**
 * One object on the backend as the manageable listings see it (LVM: one LV; file pool: one
 * file). The manager decides from these, as cinder's LVM driver does, which are safe to manage.
 */
export interface BackendObject {
  /** The name on the backend: what a manage reference's `source-name` names. */
  name: string;
  /** The cinder name the object would carry (`volume-<id>`, `snapshot-<id>`), the name unescaped. */
  cinderName: string;
  /** GiB, rounded up. */
  size: number;
  /** Open or otherwise in use on the backend (LVM: lv_attr "open"): not safe to manage. */
  inUse: boolean;
  /** A snapshot (LVM: a thick snapshot, lv_attr `s`; thin snapshots are volumes to cinder). */
  isSnapshot: boolean;
  /** A snapshot's origin on the backend, when the backend knows it. */
  origin: string | null;
}

/** Where a migration goes: the destination pool's host and its location_info as the scheduler reported them. */
export interface MigrationDestination {
  /** `host@backend#pool` */
  host: string;
  locationInfo: unknown;
}

/** What driver-assisted migration did (cinder's driver.migrate_volume return value). */
export interface DriverMigration {
  moved: boolean;
  modelUpdate: ModelUpdate | null;
}

/** What a clone needs of its source volume. */
export type CloneSource = Pick<DriverVolume, 'id' | 'name' | 'size'>;

/**
 * A backend's data side: everything the manager does to volumes and snapshots on it. The export
 * side is not here: exports.ts builds it once per backend from exportPath and prepareExport.
 * A driver throws the catalog's errors (src/errors.ts) itself: VolumeIsBusy/SnapshotIsBusy when
 * a resource cannot go now (the manager keeps it), Python's NotImplementedError for an optional
 * capability it lacks (the manager falls back to its generic path, as cinder's does).
 */
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
  /** Absent volume is success; VolumeIsBusy when it cannot go. */
  deleteVolume(volume: DriverVolume): Promise<void>;
  extendVolume(volume: DriverVolume, newSizeGb: number): Promise<void>;
  /** The local block device or file that holds the volume's data. */
  localPath(volume: Pick<DriverVolume, 'name'>): string;
  /**
   * A volume createVolume just made reads zeros everywhere (thin LV, sparse file): an image or copy
   * written onto it may leave zero runs unwritten and keep it thin (cinder's sparse_copy_volume).
   */
  newVolumeReadsZeros(): boolean;
  /** Whether the volume's data exists on the backend (crash recovery, tests). */
  volumeExists(volume: DriverVolume): Promise<boolean>;

  createSnapshot(snapshot: DriverSnapshot): Promise<ModelUpdate | null>;
  /** Absent snapshot is success; SnapshotIsBusy (or VolumeIsBusy) when it cannot go. */
  deleteSnapshot(snapshot: DriverSnapshot): Promise<void>;
  /** New volume with the snapshot's content, grown to volume.size. */
  createVolumeFromSnapshot(volume: DriverVolume, snapshot: DriverSnapshot): Promise<ModelUpdate | null>;
  /** New volume with the source volume's content, grown to volume.size. */
  createClonedVolume(volume: DriverVolume, source: CloneSource): Promise<ModelUpdate | null>;
  /** Native revert; NotImplementedError makes the manager copy through a temp volume. */
  revertToSnapshot(volume: DriverVolume, snapshot: DriverSnapshot): Promise<void>;
  /** cinder's snapshot_revert_use_temp_snapshot(): take a safety snapshot before reverting. */
  snapshotRevertUseTempSnapshot(): boolean;
  /** Copies `bytes` of one local path to another (the generic revert's copy). */
  copyData(src: string, dst: string, bytes: number): Promise<void>;

  /** true when the type change needs no data movement (cinder's driver.retype returning True). */
  retype(volume: DriverVolume, newExtraSpecs: Record<string, string | null>): Promise<boolean>;
  /** Size in GiB (rounded up) of an existing backend object named by `ref` (manage_existing_get_size). */
  manageExistingGetSize(ref: Record<string, unknown>): Promise<number>;
  /** Adopt the object named by `ref` as `volume` (renaming it to the volume's name). */
  manageExisting(volume: DriverVolume, ref: Record<string, unknown>): Promise<ModelUpdate | null>;
  /** Forget the volume without touching its data (cinder's unmanage). */
  unmanage(volume: DriverVolume): Promise<void>;
  /** Every volume and snapshot on the backend, managed or not (the manageable listings' source). */
  listBackendObjects(): Promise<BackendObject[]>;
  /** Size in GiB (rounded up) of an existing snapshot named by `ref` (manage_existing_snapshot_get_size). */
  manageExistingSnapshotGetSize(ref: Record<string, unknown>): Promise<number>;
  /** Adopt the snapshot named by `ref` as `snapshot` (renaming it to the snapshot's name). */
  manageExistingSnapshot(snapshot: DriverSnapshot, ref: Record<string, unknown>): Promise<ModelUpdate | null>;

  // Migration (manager.py migrate_volume, update_migrated_volume).
  /**
   * Moves the volume to the destination pool without the manager's generic copy, when the
   * destination's storage is reachable from here (cinder's rule: same host, another VG or
   * directory). moved=false (or NotImplementedError) makes the manager migrate generically.
   */
  migrateVolume(volume: DriverVolume, status: string | null, destination: MigrationDestination): Promise<DriverMigration>;
  /**
   * The local path of the volume named `name` in the pool at `locationInfo` (any pool's
   * location_info) when that pool is on this host, else null: the generic migration's copy
   * writes there directly instead of attaching the destination over iSCSI.
   */
  pathInPool(locationInfo: unknown, name: string): string | null;
  /**
   * Gives the volume another name on the backend (update_migrated_volume: the migrated copy takes
   * the source's name). Throws when the name is taken or the backend cannot rename.
   */
  renameVolume(volume: DriverVolume, newName: string): Promise<void>;

  // What the export side needs of the data side (exports.ts).
  /** The device or file a target serves for the volume; it depends on the volume's name only. */
  exportPath(volume: Pick<DriverVolume, 'name'>): string;
  /** Make exportPath usable before it is exported (LVM: activate the LV). */
  prepareExport(volume: Pick<DriverVolume, 'name'>): Promise<void>;
}
