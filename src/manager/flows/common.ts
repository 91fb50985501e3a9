// What every manager flow shares: its dependencies, resource locks as cinder takes them, the
// workers-table bookkeeping of cinder's set_workers, and the conversion of database rows to the
// plain records drivers see. A flow's arguments are checked before it runs, by its method's
// schema (../rpc-arguments.ts).
import type { DriverSnapshot, DriverVolume, VolumeDriver } from '../../../drivers/driver.js';
import type { VolumeExports } from '../../../drivers/exports.js';
import { KeyedMutex } from '../../concurrency/keyed-mutex.js';
import type { CinderDb, Snapshot, Volume, WorkerRow } from '../../db/index.js';
import { driverNotInitialized, volumeNotFound } from '../../errors.js';
import type { Logger } from '../../log.js';
import type { ImageTools } from '../../image/image-tools.js';
import type { ImageVolumeCacheSettings } from './image-volume-cache.js';
import { withExternalLock } from '../../native/index.js';
import { VersionedObject } from '../../rpc/ovo.js';
import type { BackupCallback, ComputeEvents } from '../ports.js';

/** The scheduler cast a failed create_volume is rescheduled with (scheduler/rpcapi.py create_volume). */
export interface SchedulerCreateVolume {
  createVolume(
    ctx: Record<string, unknown>,
    args: { volume: VersionedObject; requestSpec: unknown; filterProperties: Record<string, unknown> },
  ): Promise<void>;
}

/**
 * cinder's volume rpcapi as one volume service calls another (a migration's source and
 * destination): each goes to the service of the volume's host (or cluster), wherever it runs.
 */
export interface VolumePeers {
  /** create_volume cast (v3.0) with no request spec and no reschedule: the migration target. */
  createVolume(ctx: Record<string, unknown>, volume: VersionedObject): Promise<void>;
  /** delete_volume cast. */
  deleteVolume(ctx: Record<string, unknown>, volume: VersionedObject): Promise<void>;
  /** update_migrated_volume call to new_volume's service. */
  updateMigratedVolume(ctx: Record<string, unknown>, volume: VersionedObject, newVolume: VersionedObject, volumeStatus: string | null): Promise<void>;
}

/** The parts of the volume service a flow needs. */
export interface ServiceView {
  readonly host: string;
  readonly driverInitialized: boolean;
  readonly serviceRecord: { id: number; uuid: string } | undefined;
  /**
   * Called where cinder's VolumeManager calls publish_service_capabilities (init_host,
   * delete_volume, retype, delete_group) and nowhere else: after a create or an extend the
   * scheduler has already consumed the size in its own host state, and an extra report per
   * operation only adds fanout traffic on every scheduler.
   */
  publishServiceCapabilities(): Promise<void>;
}

export interface FlowDeps {
  db: CinderDb;
  /** The backend's data side: volumes, snapshots, clones, revert, manage, copy. */
  driver: VolumeDriver;
  /** The backend's export side: targets, connections, revocation (built from the driver). */
  exports: VolumeExports;
  service: ServiceView;
  scheduler: SchedulerCreateVolume;
  /** The other volume services (a migration's peer); absent: migration is refused. */
  peers?: VolumePeers;
  /** [DEFAULT] migration_create_volume_timeout_secs (cinder's default 300). */
  migrationCreateVolumeTimeoutSecs?: number;
  /** nova's external events (volume-extended, volume-reimaged); absent: nobody is told (tests). */
  compute?: ComputeEvents;
  /** cinder-backup's RPC, for get_backup_device's continue_backup; absent: get_backup_device answers the device instead. */
  backup?: BackupCallback;
  /** [backend] backup_use_temp_snapshot: an in-use volume is backed up from a temporary snapshot, not a clone. */
  backupUseTempSnapshot?: boolean;
  logger: Logger;
  /** [oslo_concurrency] lock_path; null: in-process locks only. */
  lockPath: string | null;
  locks: KeyedMutex;
  /** The pool name appended to host when a volume comes without one. */
  poolName: string;
  /** [backend] report_discard_supported: connection_info gets discard=true. */
  reportDiscardSupported?: boolean;
  /** The restart restore while it runs in the background (connection-locks.ts). */
  pendingRestore?: PendingRestore;
  /** Glance, qemu-img and the image options: create-from-image, upload, reimage. */
  images?: ImageTools;
  /** image_volume_cache_enabled and its limits; absent: no image-volume cache on this backend. */
  imageVolumeCache?: ImageVolumeCacheSettings;
}

/**
 * The restore of exports after a start, running in the background while RPC is served. A
 * connection operation on a volume the restore has not reached yet asks for that volume first.
 */
export interface PendingRestore {
  /** Resolves once `volumeId`'s export is restored (at once if it was, or needs none). */
  restoreFirst(volumeId: string): Promise<void>;
}

// ---- errors -------------------------------------------------------------------------------------

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// ---- locks ----------------------------------------------------------------------------------------

/**
 * cinder's per-resource lock: an in-process keyed mutex, plus the oslo-compatible external file
 * lock where cinder takes an external one (so a cinder tool on the same host serialises with us).
 */
export async function withLock<T>(deps: FlowDeps, name: string, external: boolean, fn: () => Promise<T>): Promise<T> {
  return deps.locks.run(name, async () => {
    if (external && deps.lockPath) return withExternalLock(deps.lockPath, name, fn);
    return fn();
  });
}

// ---- drivers' view of rows ----------------------------------------------------------------------

export function volumeNameOf(row: Pick<Volume, 'id' | '_name_id'>): string {
  return `volume-${row._name_id ?? row.id}`;
}

export function driverVolume(row: Volume): DriverVolume {
  return {
    id: row.id,
    name: volumeNameOf(row),
    size: row.size ?? 0,
    providerLocation: row.provider_location,
    providerAuth: row.provider_auth,
    multiattach: Boolean(row.multiattach),
  };
}

export function driverSnapshot(row: Snapshot, volume: Volume): DriverSnapshot {
  return {
    id: row.id,
    name: `snapshot-${row.id}`,
    volumeId: volume.id,
    volumeName: volumeNameOf(volume),
    volumeSize: row.volume_size ?? volume.size ?? 0,
    providerLocation: row.provider_location,
  };
}

export async function getVolume(deps: FlowDeps, id: string): Promise<Volume> {
  const row = await deps.db.volumes.find(id);
  if (!row) throw volumeNotFound(id);
  return row;
}

export function requireDriver(deps: FlowDeps): void {
  if (!deps.service.driverInitialized) throw driverNotInitialized(deps.driver.className);
}

/** The backend part of a host (`host@backend#pool` -> `host@backend`). */
export function backendOf(host: string | null | undefined): string | null {
  if (!host) return null;
  const i = host.indexOf('#');
  return i < 0 ? host : host.slice(0, i);
}

export function isOurs(deps: FlowDeps, host: string | null | undefined): boolean {
  return backendOf(host) === deps.service.host;
}

// ---- workers (cinder/objects/cleanable.py set_workers) ------------------------------------------

export type Cleanable = 'Volume' | 'Snapshot';

/**
 * Runs `fn` with a workers row held for the resource in its current status, then removes the row
 * when the status has moved on (success or failure), as @set_workers does.
 */
export async function withWorker<T>(
  deps: FlowDeps,
  resource: { type: Cleanable; id: string; status: string | null },
  currentStatus: () => Promise<string | null>,
  fn: () => Promise<T>,
): Promise<T> {
  const serviceId = deps.service.serviceRecord?.id;
  let worker: WorkerRow | undefined;
  // cinder's _is_cleanable: Volume creating/deleting/downloading/uploading; Snapshot creating/deleting.
  const cleanable = resource.status === 'creating' || resource.status === 'deleting';
  if (serviceId !== undefined && cleanable && resource.status) {
    worker = await deps.db.workers.setWorker({ resourceType: resource.type, resourceId: resource.id, status: resource.status }, serviceId);
  }
  try {
    return await fn();
  } finally {
    if (worker) {
      try {
        const now = await currentStatus();
        if (now !== worker.status) await deps.db.workers.unsetWorker(worker);
      } catch (err) {
        deps.logger.warn({ err }, `could not remove the workers row of ${resource.type} ${resource.id}`);
      }
    }
  }
}

export async function volumeStatus(deps: FlowDeps, id: string): Promise<string | null> {
  return (await deps.db.volumes.find(id, { readDeleted: 'yes' }))?.status ?? null;
}

export async function snapshotStatus(deps: FlowDeps, id: string): Promise<string | null> {
  return (await deps.db.snapshots.find(id, { readDeleted: 'yes' }))?.status ?? null;
}

export function newKeyedMutex(): KeyedMutex {
  return new KeyedMutex();
}
