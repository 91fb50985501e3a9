// Kysely table interfaces for the part of Cinder's schema (Zed, alembic head c92a3e68beed) that the
// volume service reads or writes. Column names and nullability follow
// cinder/db/sqlalchemy/models.py and the DDL `cinder-manage db sync` creates on MariaDB and SQLite.
//
// Value types are what the connection layer (connect.ts) hands back on BOTH backends:
//  - DATETIME columns are JS Dates holding the naive-UTC value cinder stores (MySQL DATETIME read
//    with timezone 'Z'; SQLite 'YYYY-MM-DD HH:MM:SS.ffffff' text parsed as UTC);
//  - Boolean columns (MySQL TINYINT(1), SQLite BOOLEAN) are JS booleans;
//  - Integer columns are numbers.
// Precision: JS Dates carry milliseconds; cinder writes microseconds. Nothing the volume service
// does depends on the sub-millisecond part except the workers table, which workers.ts handles with
// race_preventer (see there).
import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely';

/** A DATETIME column: naive UTC in the database, a Date here. */
export type DateTime = Date;

/** An autoincrement integer primary key. */
type AutoId = Generated<number>;

/** Columns every CinderBase model has (TimestampMixin + soft delete). */
export interface SoftDeleteColumns {
  created_at: DateTime | null;
  updated_at: DateTime | null;
  deleted_at: DateTime | null;
  deleted: boolean | null;
}

export interface ServicesTable extends SoftDeleteColumns {
  id: AutoId;
  uuid: string | null;
  cluster_name: string | null;
  host: string | null;
  binary: string | null;
  topic: string | null;
  report_count: number;
  disabled: boolean | null;
  availability_zone: string | null;
  disabled_reason: string | null;
  modified_at: DateTime | null;
  rpc_current_version: string | null;
  object_current_version: string | null;
  replication_status: string | null;
  active_backend_id: string | null;
  frozen: boolean | null;
}

export interface ClustersTable extends SoftDeleteColumns {
  id: AutoId;
  name: string;
  binary: string;
  disabled: boolean | null;
  disabled_reason: string | null;
  race_preventer: number;
  replication_status: string | null;
  active_backend_id: string | null;
  frozen: ColumnType<boolean, boolean | undefined, boolean>;
}

export interface VolumesTable extends SoftDeleteColumns {
  id: string;
  _name_id: string | null;
  use_quota: boolean | null;
  ec2_id: string | null;
  user_id: string | null;
  project_id: string | null;
  snapshot_id: string | null;
  cluster_name: string | null;
  host: string | null;
  size: number | null;
  availability_zone: string | null;
  status: string | null;
  attach_status: string | null;
  migration_status: string | null;
  scheduled_at: DateTime | null;
  launched_at: DateTime | null;
  terminated_at: DateTime | null;
  display_name: string | null;
  display_description: string | null;
  provider_location: string | null;
  provider_auth: string | null;
  provider_geometry: string | null;
  provider_id: string | null;
  volume_type_id: string;
  source_volid: string | null;
  encryption_key_id: string | null;
  consistencygroup_id: string | null;
  group_id: string | null;
  bootable: boolean | null;
  multiattach: boolean | null;
  replication_status: string | null;
  replication_extended_status: string | null;
  replication_driver_data: string | null;
  previous_status: string | null;
  service_uuid: string | null;
  shared_targets: boolean | null;
}

/** volume_metadata, volume_admin_metadata, snapshot_metadata-like key/value rows. */
export interface VolumeMetadataTable extends SoftDeleteColumns {
  id: AutoId;
  key: string | null;
  value: string | null;
  volume_id: string;
}

export interface SnapshotMetadataTable extends SoftDeleteColumns {
  id: AutoId;
  key: string | null;
  value: string | null;
  snapshot_id: string;
}

export interface VolumeAttachmentTable extends SoftDeleteColumns {
  id: string;
  volume_id: string;
  instance_uuid: string | null;
  attached_host: string | null;
  mountpoint: string | null;
  attach_time: DateTime | null;
  detach_time: DateTime | null;
  attach_status: string | null;
  attach_mode: string | null;
  /** JSON text (cinder-api writes it). */
  connection_info: string | null;
  /** JSON text of the os-brick connector. */
  connector: string | null;
}

export interface AttachmentSpecsTable extends SoftDeleteColumns {
  id: AutoId;
  key: string | null;
  value: string | null;
  attachment_id: string;
}

export interface VolumeTypesTable extends SoftDeleteColumns {
  id: string;
  name: string | null;
  description: string | null;
  qos_specs_id: string | null;
  is_public: boolean | null;
}

export interface VolumeTypeExtraSpecsTable extends SoftDeleteColumns {
  id: AutoId;
  key: string | null;
  value: string | null;
  volume_type_id: string;
}

export interface VolumeTypeProjectsTable {
  id: AutoId;
  created_at: DateTime | null;
  updated_at: DateTime | null;
  deleted_at: DateTime | null;
  volume_type_id: string | null;
  project_id: string | null;
  /** An Integer column here (0 or the row id), not a Boolean. */
  deleted: number | null;
}

export interface QualityOfServiceSpecsTable extends SoftDeleteColumns {
  id: string;
  specs_id: string | null;
  key: string | null;
  value: string | null;
}

export interface EncryptionTable extends SoftDeleteColumns {
  encryption_id: string;
  cipher: string | null;
  key_size: number | null;
  provider: string;
  control_location: string;
  volume_type_id: string;
}

export interface SnapshotsTable extends SoftDeleteColumns {
  id: string;
  use_quota: boolean | null;
  user_id: string | null;
  project_id: string | null;
  volume_id: string;
  cgsnapshot_id: string | null;
  group_snapshot_id: string | null;
  status: string | null;
  progress: string | null;
  volume_size: number | null;
  scheduled_at: DateTime | null;
  display_name: string | null;
  display_description: string | null;
  encryption_key_id: string | null;
  volume_type_id: string;
  provider_location: string | null;
  provider_id: string | null;
  provider_auth: string | null;
}

export interface WorkersTable extends SoftDeleteColumns {
  id: AutoId;
  resource_type: string;
  resource_id: string;
  status: string;
  service_id: number | null;
  race_preventer: ColumnType<number, number | undefined, number>;
}

export interface QuotasTable extends SoftDeleteColumns {
  id: AutoId;
  project_id: string | null;
  resource: string;
  hard_limit: number | null;
  allocated: number | null;
}

export interface QuotaClassesTable extends SoftDeleteColumns {
  id: AutoId;
  class_name: string | null;
  resource: string | null;
  hard_limit: number | null;
}

export interface QuotaUsagesTable extends SoftDeleteColumns {
  id: AutoId;
  project_id: string | null;
  resource: string | null;
  in_use: number;
  reserved: number;
  until_refresh: number | null;
  /** A Boolean column: True while live, NULL once soft-deleted (unique with project_id, resource). */
  race_preventer: boolean | null;
}

export interface ReservationsTable extends SoftDeleteColumns {
  id: AutoId;
  uuid: string;
  usage_id: number | null;
  allocated_id: number | null;
  project_id: string | null;
  resource: string | null;
  delta: number;
  expire: DateTime | null;
}

export interface VolumeGlanceMetadataTable extends SoftDeleteColumns {
  id: AutoId;
  volume_id: string | null;
  snapshot_id: string | null;
  key: string | null;
  value: string | null;
}

export interface MessagesTable extends SoftDeleteColumns {
  id: string;
  project_id: string;
  message_level: string;
  request_id: string | null;
  resource_type: string | null;
  resource_uuid: string | null;
  event_id: string;
  detail_id: string | null;
  action_id: string | null;
  expires_at: DateTime | null;
}

/** Not a CinderBase model: no created_at/updated_at/deleted columns. */
export interface ImageVolumeCacheEntriesTable {
  id: AutoId;
  host: string;
  cluster_name: string | null;
  image_id: string;
  image_updated_at: DateTime | null;
  volume_id: string;
  size: number;
  last_used: DateTime;
}

export interface TransfersTable extends SoftDeleteColumns {
  id: string;
  volume_id: string;
  display_name: string | null;
  salt: string | null;
  crypt_hash: string | null;
  expires_at: DateTime | null;
  no_snapshots: boolean | null;
  source_project_id: string | null;
  destination_project_id: string | null;
  accepted: boolean | null;
}

/** Generic volume groups (models.py Group): what the group flows read and write. */
export interface GroupsTable extends SoftDeleteColumns {
  id: string;
  user_id: string | null;
  project_id: string | null;
  cluster_name: string | null;
  host: string | null;
  availability_zone: string | null;
  name: string | null;
  description: string | null;
  status: string | null;
  group_type_id: string | null;
  group_snapshot_id: string | null;
  source_group_id: string | null;
  replication_status: string | null;
}

export interface GroupSnapshotsTable extends SoftDeleteColumns {
  id: string;
  group_id: string;
  user_id: string | null;
  project_id: string | null;
  name: string | null;
  description: string | null;
  status: string | null;
  group_type_id: string | null;
}

/** Only soft-deleted with its group (group_destroy). */
export interface GroupVolumeTypeMappingTable extends SoftDeleteColumns {
  id: AutoId;
  volume_type_id: string;
  group_id: string;
}

/** Only what tells the default cgsnapshot type from a generic one. */
export interface GroupTypesTable extends SoftDeleteColumns {
  id: string;
  name: string | null;
  description: string | null;
  is_public: boolean | null;
}

/** What quota usage sync reads (backups, backup_gigabytes) and get_backup_device writes (temp_*). */
export interface BackupsTable extends SoftDeleteColumns {
  id: string;
  user_id: string | null;
  project_id: string | null;
  volume_id: string;
  host: string | null;
  status: string | null;
  size: number | null;
  /** the temporary volume or snapshot the volume service made for this backup */
  temp_volume_id: string | null;
  temp_snapshot_id: string | null;
}

export interface AlembicVersionTable {
  version_num: string;
}

export interface CinderSchema {
  services: ServicesTable;
  clusters: ClustersTable;
  volumes: VolumesTable;
  volume_metadata: VolumeMetadataTable;
  volume_admin_metadata: VolumeMetadataTable;
  volume_attachment: VolumeAttachmentTable;
  attachment_specs: AttachmentSpecsTable;
  volume_types: VolumeTypesTable;
  volume_type_extra_specs: VolumeTypeExtraSpecsTable;
  volume_type_projects: VolumeTypeProjectsTable;
  quality_of_service_specs: QualityOfServiceSpecsTable;
  encryption: EncryptionTable;
  snapshots: SnapshotsTable;
  snapshot_metadata: SnapshotMetadataTable;
  workers: WorkersTable;
  quotas: QuotasTable;
  quota_classes: QuotaClassesTable;
  quota_usages: QuotaUsagesTable;
  reservations: ReservationsTable;
  volume_glance_metadata: VolumeGlanceMetadataTable;
  messages: MessagesTable;
  image_volume_cache_entries: ImageVolumeCacheEntriesTable;
  transfers: TransfersTable;
  groups: GroupsTable;
  group_snapshots: GroupSnapshotsTable;
  group_types: GroupTypesTable;
  group_volume_type_mapping: GroupVolumeTypeMappingTable;
  backups: BackupsTable;
  alembic_version: AlembicVersionTable;
}

export type Service = Selectable<ServicesTable>;
export type Cluster = Selectable<ClustersTable>;
export type Volume = Selectable<VolumesTable>;
export type VolumeUpdate = Updateable<VolumesTable>;
export type NewVolume = Insertable<VolumesTable>;
export type VolumeAttachment = Selectable<VolumeAttachmentTable>;
export type VolumeAttachmentUpdate = Updateable<VolumeAttachmentTable>;
export type NewVolumeAttachment = Insertable<VolumeAttachmentTable>;
export type VolumeType = Selectable<VolumeTypesTable>;
export type Snapshot = Selectable<SnapshotsTable>;
export type SnapshotUpdate = Updateable<SnapshotsTable>;
export type NewSnapshot = Insertable<SnapshotsTable>;
export type Worker = Selectable<WorkersTable>;
export type QuotaUsage = Selectable<QuotaUsagesTable>;
export type Reservation = Selectable<ReservationsTable>;
export type Message = Selectable<MessagesTable>;
export type Encryption = Selectable<EncryptionTable>;
export type GlanceMetadata = Selectable<VolumeGlanceMetadataTable>;
export type ImageVolumeCacheEntry = Selectable<ImageVolumeCacheEntriesTable>;
export type Group = Selectable<GroupsTable>;
export type GroupSnapshot = Selectable<GroupSnapshotsTable>;

/** The alembic revision `cinder-manage db sync` of cinder 21.x (Zed) leaves in alembic_version. */
export const CINDER_ZED_ALEMBIC_HEAD = 'c92a3e68beed';
