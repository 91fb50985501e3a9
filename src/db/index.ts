// cinderblock's access to Cinder's own database. One facade bound to one connection:
//
//     const db = await openDatabase(conf.database.connection, { maxPoolSize, maxRetries, retryInterval });
//     const { service } = await db.services.register({ host: 'storage1@lvm', availabilityZone: 'nova', clusterName: null });
//     const vol = await db.volumes.get(volumeId);
//     await db.volumes.update(volumeId, { status: 'available', launched_at: db.now() });
//
// Every function mirrors the cinder.db.api call the volume manager makes (names in each file).
import * as attachments from './attachments.js';
import * as backups from './backups.js';
import { openHandle, type DbHandle, type OpenDatabaseOptions } from './connect.js';
import * as glanceMetadata from './glance-metadata.js';
import * as groups from './groups.js';
import * as imageVolumeCache from './image-volume-cache.js';
import * as inspect from './inspect.js';
import * as messages from './messages.js';
import * as quotas from './quotas.js';
import * as services from './services.js';
import * as snapshots from './snapshots.js';
import * as volumeTypes from './volume-types.js';
import * as volumes from './volumes.js';
import * as workers from './workers.js';
import type { DatabaseUrl } from './url.js';

type Fn = (db: DbHandle, ...args: any[]) => any;
type Bound<T extends Record<string, Fn>> = { [K in keyof T]: T[K] extends (db: DbHandle, ...args: infer A) => infer R ? (...args: A) => R : never };

function bind<T extends Record<string, Fn>>(db: DbHandle, fns: T): Bound<T> {
  const out: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(fns)) out[name] = (...args: unknown[]) => fn(db, ...args);
  return out as Bound<T>;
}

export interface CinderDbOptions extends OpenDatabaseOptions {
  /** Quota options from cinder.conf [DEFAULT] (until_refresh, max_age, reservation_expire, …). */
  quota?: quotas.QuotaOptions;
}

function repositories(h: DbHandle, qopts: quotas.QuotaOptions) {
  return {
    services: bind(h, {
      getByHostAndBinary: services.getByHostAndBinary,
      getById: services.getById,
      getByUuid: services.getByUuid,
      create: services.create,
      update: services.update,
      register: services.register,
      reportState: services.reportState,
      getCluster: services.getCluster,
      minimumVersions: services.minimumVersions,
    }),
    volumes: bind(h, {
      get: volumes.get,
      find: volumes.find,
      update: volumes.update,
      create: volumes.create,
      conditionalUpdate: volumes.conditionalUpdate,
      destroy: volumes.destroy,
      listByHost: volumes.listByHost,
      listByCluster: volumes.listByCluster,
      findMigrationTarget: volumes.findMigrationTarget,
      dataGetForHost: volumes.dataGetForHost,
      adminMetadataGet: volumes.adminMetadataGet,
      adminMetadataUpdate: volumes.adminMetadataUpdate,
      adminMetadataDelete: volumes.adminMetadataDelete,
      metadataGet: volumes.metadataGet,
      metadataUpdate: volumes.metadataUpdate,
      updateStatusBasedOnAttachment: volumes.updateStatusBasedOnAttachment,
      getWithRelations: volumes.getWithRelations,
    }),
    backups: bind(h, { setTemporaryResource: backups.setTemporaryResource }),
    attachments: bind(h, {
      get: attachments.get,
      listByVolume: attachments.listByVolume,
      listByAttachedHost: attachments.listByAttachedHost,
      update: attachments.update,
      create: attachments.create,
      volumeAttached: attachments.volumeAttached,
      volumeDetached: attachments.volumeDetached,
      destroy: attachments.destroy,
    }),
    snapshots: bind(h, {
      get: snapshots.get,
      find: snapshots.find,
      update: snapshots.update,
      conditionalUpdate: snapshots.conditionalUpdate,
      destroy: snapshots.destroy,
      listByVolume: snapshots.listByVolume,
      listByHost: snapshots.listByHost,
      create: snapshots.create,
      metadataGet: snapshots.metadataGet,
    }),
    glanceMetadata: bind(h, {
      getForVolume: glanceMetadata.getForVolume,
      getForSnapshot: glanceMetadata.getForSnapshot,
      copyToSnapshot: glanceMetadata.copyToSnapshot,
      copyToVolume: glanceMetadata.copyToVolume,
      copyFromVolumeToVolume: glanceMetadata.copyFromVolumeToVolume,
      bulkCreate: glanceMetadata.bulkCreate,
      deleteBySnapshot: glanceMetadata.deleteBySnapshot,
      deleteByVolume: glanceMetadata.deleteByVolume,
    }),
    imageVolumeCache: bind(h, {
      getAndUpdateLastUsed: imageVolumeCache.getAndUpdateLastUsed,
      listInScope: imageVolumeCache.listInScope,
      findByVolume: imageVolumeCache.findByVolume,
      create: imageVolumeCache.create,
      deleteByVolume: imageVolumeCache.deleteByVolume,
    }),
    workers: bind(h, {
      create: workers.create,
      getById: workers.getById,
      find: workers.find,
      get: workers.get,
      list: workers.list,
      listByService: workers.listByService,
      update: workers.update,
      claimForCleanup: workers.claimForCleanup,
      destroy: workers.destroy,
      setWorker: workers.setWorker,
      unsetWorker: workers.unsetWorker,
    }),
    quotas: {
      reserve: (projectId: string | null, deltas: quotas.Deltas, opts?: quotas.ReserveOptions) => quotas.reserve(h, projectId, deltas, opts, qopts),
      commit: (reservations: readonly string[] | null | undefined, projectId: string | null) => quotas.commit(h, reservations, projectId),
      rollback: (reservations: readonly string[] | null | undefined, projectId: string | null) => quotas.rollback(h, reservations, projectId),
      reservationCommit: (reservations: readonly string[], projectId: string | null) => quotas.reservationCommit(h, reservations, projectId),
      reservationRollback: (reservations: readonly string[], projectId: string | null) => quotas.reservationRollback(h, reservations, projectId),
      addVolumeTypeOpts: (deltas: quotas.Deltas, volumeTypeId: string | null | undefined) => quotas.addVolumeTypeOpts(h, deltas, volumeTypeId),
      reserveForVolumeDelete: (volume: Parameters<typeof quotas.reserveForVolumeDelete>[1]) => quotas.reserveForVolumeDelete(h, volume, qopts),
      reserveForSnapshotDelete: (snapshot: Parameters<typeof quotas.reserveForSnapshotDelete>[1], volumeTypeId: string | null) =>
        quotas.reserveForSnapshotDelete(h, snapshot, volumeTypeId, qopts),
      usagesByProject: (projectId: string) => quotas.usagesByProject(h, projectId),
    },
    volumeTypes: bind(h, {
      get: volumeTypes.getType,
      getByName: volumeTypes.getTypeByName,
      extraSpecs: volumeTypes.extraSpecs,
      qosSpecsGet: volumeTypes.qosSpecsGet,
      qosSpecsForType: volumeTypes.qosSpecsForType,
      encryptionGet: volumeTypes.encryptionGet,
    }),
    messages: bind(h, { create: messages.create, get: messages.get }),
    groups: bind(h, {
      get: groups.get,
      find: groups.find,
      update: groups.update,
      destroy: groups.destroy,
      getSnapshot: groups.getSnapshot,
      findSnapshot: groups.findSnapshot,
      updateSnapshot: groups.updateSnapshot,
      destroySnapshot: groups.destroySnapshot,
      volumes: groups.volumes,
      snapshots: groups.snapshots,
      isDefaultCgsnapshotType: groups.isDefaultCgsnapshotType,
    }),
    /** read-only views for the operator's debug CLI */
    inspect: bind(h, {
      volumeServices: inspect.volumeServices,
      volumeCountsByStatus: inspect.volumeCountsByStatus,
      listVolumes: inspect.listVolumes,
      findVolumes: inspect.findVolumes,
      attachmentsOnBackend: inspect.attachmentsOnBackend,
      workersOfService: inspect.workersOfService,
      serverUtcNow: inspect.serverUtcNow,
      imageCacheEntries: inspect.imageCacheEntries,
    }),
  };
}

export type CinderRepositories = ReturnType<typeof repositories>;

/** The connection handle plus one repository object per table family. */
export type CinderDb = DbHandle & CinderRepositories;

/** Binds the repositories to an open handle. */
export function withRepositories(handle: DbHandle, qopts: quotas.QuotaOptions = {}): CinderDb {
  const repos = repositories(handle, qopts);
  // Keep the handle's methods (bound to the handle) and add the repositories.
  return Object.assign(Object.create(handle) as DbHandle, repos) as CinderDb;
}

/**
 * Opens Cinder's database (`[database] connection`), retrying per max_retries/retry_interval,
 * and returns the bound facade.
 */
export async function openDatabase(url: string | DatabaseUrl, opts: CinderDbOptions = {}): Promise<CinderDb> {
  const handle = await openHandle(url, opts);
  return withRepositories(handle, opts.quota ?? {});
}

export { openHandle, retryOnDeadlock, isConnectionError, isDeadlock, formatSqliteDateTime, parseSqliteDateTime } from './connect.js';
export type { DbHandle, OpenDatabaseOptions, Executor } from './connect.js';
export { parseDatabaseUrl, redactDatabaseUrl, SUPPORTED_SCHEMES } from './url.js';
export type { DatabaseUrl, MysqlUrl, SqliteUrl } from './url.js';
export { DatabaseConnectionError, DatabaseSchemaError } from './errors.js';
export { VOLUME_RPC_API_VERSION, VOLUME_OBJECT_VERSION, VOLUME_BINARY, VOLUME_TOPIC, isUp } from './services.js';
export type { RegisterServiceOptions, RegisteredService } from './services.js';
export { MessageAction, MessageDetail, MessageResource, translateDetailId } from './messages.js';
export type { QuotaOptions, ReserveOptions, Deltas } from './quotas.js';
export type { WorkerRow, WorkerListFilters } from './workers.js';
export type { CacheScope, NewCacheEntry } from './image-volume-cache.js';
export type { VolumeWithRelations } from './volumes.js';
export type { Expected, ReadDeleted, HostMatchLevel } from './common.js';
export * from './schema.js';
