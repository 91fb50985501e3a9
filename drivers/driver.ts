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
