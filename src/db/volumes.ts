// The volumes table and its key/value side tables, as cinder.db.sqlalchemy.api writes them for
// the volume manager (volume_get, volume_update, conditional_update, volume_destroy,
// volume_get_all with a host filter, volume_admin_metadata_*, volume_update_status_based_on_attachment).
//
// updated_at: every UPDATE cinder issues through the ORM or Query.update() sets updated_at = now
// (SQLAlchemy's onupdate) unless the statement names updated_at itself; the soft deletes name it
// (`updated_at = updated_at`) and so keep it. Both rules are reproduced here.
import { sql, type Transaction } from 'kysely';
import type { DbHandle, Executor } from './connect.js';
import { retryOnDeadlock } from './connect.js';
import { and, assertColumns, conditionalUpdateRow, deletedFilter, expectedExpr, filterHost, type ConditionalUpdateOptions, type Expected, type ReadDeleted } from './common.js';
import { volumeNotFound } from '../errors.js';
import type { CinderSchema, NewVolume, Volume, VolumeAttachment, VolumesTable, VolumeType } from './schema.js';
import { randomUUID } from 'node:crypto';

export type VolumeColumn = keyof VolumesTable & string;

export const VOLUME_COLUMNS: ReadonlySet<string> = new Set<VolumeColumn>([
  'created_at', 'updated_at', 'deleted_at', 'deleted', 'id', '_name_id', 'use_quota', 'ec2_id', 'user_id', 'project_id',
  'snapshot_id', 'cluster_name', 'host', 'size', 'availability_zone', 'status', 'attach_status', 'migration_status',
  'scheduled_at', 'launched_at', 'terminated_at', 'display_name', 'display_description', 'provider_location',
  'provider_auth', 'provider_geometry', 'provider_id', 'volume_type_id', 'source_volid', 'encryption_key_id',
  'consistencygroup_id', 'group_id', 'bootable', 'multiattach', 'replication_status', 'replication_extended_status',
  'replication_driver_data', 'previous_status', 'service_uuid', 'shared_targets',
]);

/** Columns the manager may write with update()/conditionalUpdate(). */
export type VolumeValues = Partial<Omit<Volume, 'id'>>;

/** volume_get: the row (live unless readDeleted says otherwise); throws VolumeNotFound. */
export async function get(db: DbHandle, id: string, opts: { readDeleted?: ReadDeleted } = {}): Promise<Volume> {
  const row = await find(db, id, opts);
  if (!row) throw volumeNotFound(id);
  return row;
}

/** Like get() but resolves undefined instead of throwing. */
export async function find(db: DbHandle | Executor, id: string, opts: { readDeleted?: ReadDeleted; forUpdate?: boolean } = {}): Promise<Volume | undefined> {
  const k = 'kysely' in db ? db.kysely : db;
  let q = k.selectFrom('volumes').selectAll().where('id', '=', id);
  const del = deletedFilter('deleted', opts.readDeleted ?? 'no');
  if (del) q = q.where(del);
  if (opts.forUpdate && dialectOf(db) === 'mysql') q = q.forUpdate();
  return q.executeTakeFirst();
}

function dialectOf(db: DbHandle | Executor): 'mysql' | 'sqlite' | 'unknown' {
  return 'dialect' in db ? db.dialect : 'unknown';
}

/**
 * volume_update: writes `values` to the live row, updated_at = now unless given. Throws
 * VolumeNotFound when no live row has this id.
 */
export async function update(db: DbHandle, id: string, values: VolumeValues): Promise<void> {
  assertColumns('volumes', VOLUME_COLUMNS, Object.keys(values));
  const res = await db.kysely
    .updateTable('volumes')
    .set({ ...values, updated_at: values.updated_at === undefined ? db.now() : values.updated_at })
    .where('id', '=', id)
    .where('deleted', '=', false)
    .executeTakeFirst();
  if (Number(res.numUpdatedRows) === 0) throw volumeNotFound(id);
}

/**
 * cinder's conditional_update (compare-and-swap): UPDATE volumes SET … WHERE id = ? AND <expected>
 * and reports whether a row matched. `expected` maps columns to a value, a list (IN; null in the
 * list matches NULL) or `{not: value|list}` (also matches NULL unless null is listed).
 *
 *     await db.volumes.conditionalUpdate(id, { status: 'deleting' }, { status: ['available', 'error'] },
 *       { fromColumns: { previous_status: 'status' } })
 */
export async function conditionalUpdate(
  db: DbHandle,
  id: string,
  values: VolumeValues,
  expected: Partial<Record<VolumeColumn, Expected<unknown>>>,
  opts: ConditionalUpdateOptions<VolumeColumn> = {},
): Promise<boolean> {
  return conditionalUpdateRow(db, 'volumes', VOLUME_COLUMNS, id, values, expected, opts);
}

/** Tables soft-deleted with a volume (cinder's VOLUME_DEPENDENT_MODELS). */
const VOLUME_DEPENDENTS = ['volume_metadata', 'volume_admin_metadata', 'snapshots', 'transfers', 'volume_glance_metadata', 'volume_attachment'] as const;

export interface VolumeDestroyResult {
  status: 'deleted';
  deleted: true;
  deleted_at: Date;
  migration_status: null;
}

/**
 * volume_destroy: status 'deleted', deleted, deleted_at = now, migration_status NULL, updated_at
 * unchanged; the live rows of the dependent tables (metadata, admin metadata, snapshots,
 * transfers, glance metadata, attachments) are soft-deleted with the same deleted_at. One
 * transaction. Like cinder, a missing volume is not an error.
 */
export async function destroy(db: DbHandle, id: string): Promise<VolumeDestroyResult> {
  const now = db.now();
  await retryOnDeadlock(() =>
    db.transaction(async (trx) => {
      await trx
        .updateTable('volumes')
        .set((eb) => ({ status: 'deleted', deleted: true, deleted_at: now, migration_status: null, updated_at: eb.ref('updated_at') }))
        .where('id', '=', id)
        .where('deleted', '=', false)
        .execute();
      for (const table of VOLUME_DEPENDENTS) {
        await trx
          .updateTable(table)
          .set((eb) => ({ deleted: true, deleted_at: now, updated_at: eb.ref('updated_at') }) as never)
          .where('volume_id', '=', id)
          .where('deleted', '=', false)
          .execute();
      }
    }),
  );
  return { status: 'deleted', deleted: true, deleted_at: now, migration_status: null };
}

export interface ListVolumesOptions {
  /** One status or any of several. */
  status?: string | readonly string[];
  /** Skip migration targets (migration_status LIKE 'target:%'), as no_migration_targets does. */
  noMigrationTargets?: boolean;
  limit?: number;
  offset?: number;
  readDeleted?: ReadDeleted;
}

function listWhere(db: DbHandle, column: 'host' | 'cluster_name', value: string, opts: ListVolumesOptions) {
  return and([
    deletedFilter('deleted', opts.readDeleted ?? 'no'),
    opts.noMigrationTargets ? sql`(${sql.ref('migration_status')} IS NULL OR ${sql.ref('migration_status')} NOT LIKE ${'target:%'})` : null,
    filterHost(db, column, value),
    opts.status !== undefined ? expectedExpr('status', opts.status as Expected<unknown>) : null,
  ]);
}

/**
 * volume_get_all(filters={'host': host, ...}) as VolumeManager._get_my_volumes calls it:
 * `storage1@lvm` matches `storage1@lvm` and `storage1@lvm#<pool>` (cinder's _filter_host,
 * case-sensitive on MySQL); newest first (created_at desc, id desc).
 */
export async function listByHost(db: DbHandle, host: string, opts: ListVolumesOptions = {}): Promise<Volume[]> {
  let q = db.kysely.selectFrom('volumes').selectAll().where(listWhere(db, 'host', host, opts)).orderBy('created_at', 'desc').orderBy('id', 'desc');
  if (opts.limit !== undefined) q = q.limit(opts.limit);
  if (opts.offset !== undefined) q = (opts.limit === undefined ? q.limit(Number.MAX_SAFE_INTEGER) : q).offset(opts.offset);
  return q.execute();
}

/** The live temporary row of `sourceId`'s migration (migration_status `target:<id>`), if any. */
export async function findMigrationTarget(db: DbHandle, sourceId: string): Promise<Volume | undefined> {
  return db.kysely.selectFrom('volumes').selectAll().where('deleted', '=', false).where('migration_status', '=', `target:${sourceId}`).executeTakeFirst();
}

/** volume_get_all(filters={'cluster_name': cluster}) for clustered services. */
export async function listByCluster(db: DbHandle, clusterName: string, opts: ListVolumesOptions = {}): Promise<Volume[]> {
  let q = db.kysely.selectFrom('volumes').selectAll().where(listWhere(db, 'cluster_name', clusterName, opts)).orderBy('created_at', 'desc').orderBy('id', 'desc');
  if (opts.limit !== undefined) q = q.limit(opts.limit);
  if (opts.offset !== undefined) q = (opts.limit === undefined ? q.limit(Number.MAX_SAFE_INTEGER) : q).offset(opts.offset);
  return q.execute();
}

/**
 * volume_data_get_for_host: (count, total GiB) of live volumes whose host is `host` or
 * `host#<pool>` (plain = / LIKE here, as cinder writes it).
 */
export async function dataGetForHost(db: DbHandle, host: string): Promise<{ count: number; gigabytes: number }> {
  const row = await db.kysely
    .selectFrom('volumes')
    .select((eb) => [eb.fn.count<number>('id').as('count'), eb.fn.sum<number | null>('size').as('gigabytes')])
    .where('deleted', '=', false)
    .where((eb) => eb.or([eb('host', '=', host), eb('host', 'like', `${host}#%`)]))
    .executeTakeFirst();
  return { count: Number(row?.count ?? 0), gigabytes: Number(row?.gigabytes ?? 0) };
}

// ---------------------------------------------------------------------------------------------
// volume_metadata / volume_admin_metadata

type MetaTable = 'volume_metadata' | 'volume_admin_metadata';

async function requireVolume(k: Executor, id: string): Promise<void> {
  const row = await k.selectFrom('volumes').select('id').where('id', '=', id).where('deleted', '=', false).executeTakeFirst();
  if (!row) throw volumeNotFound(id);
}

async function metaGet(k: Executor, table: MetaTable, volumeId: string): Promise<Record<string, string | null>> {
  const rows = await k.selectFrom(table).select(['key', 'value']).where('volume_id', '=', volumeId).where('deleted', '=', false).orderBy('id').execute();
  const out: Record<string, string | null> = {};
  for (const r of rows) if (r.key !== null) out[r.key] = r.value;
  return out;
}

/**
 * _volume_x_metadata_update: with `deleteOthers`, live keys not in `metadata` are soft-deleted;
 * changed values are rewritten; new keys inserted. Returns the resulting key/value map.
 */
async function metaUpdate(db: DbHandle, table: MetaTable, volumeId: string, metadata: Record<string, string>, deleteOthers: boolean): Promise<Record<string, string | null>> {
  return retryOnDeadlock(() =>
    db.transaction(async (trx) => {
      await requireVolume(trx, volumeId);
      const now = db.now();
      const keys = Object.keys(metadata);
      if (deleteOthers) {
        await trx
          .updateTable(table)
          .set({ deleted: true, deleted_at: now, updated_at: now })
          .where('volume_id', '=', volumeId)
          .where('deleted', '=', false)
          .where(keys.length ? expectedExpr('key', { not: keys }) : sql<boolean>`1 = 1`)
          .execute();
      }
      const rows = await trx.selectFrom(table).select(['id', 'key', 'value']).where('volume_id', '=', volumeId).where('deleted', '=', false).orderBy('id').execute();
      const remaining = new Map(Object.entries(metadata));
      const result: Record<string, string | null> = {};
      for (const r of rows) {
        if (r.key !== null && remaining.has(r.key)) {
          const value = remaining.get(r.key)!;
          remaining.delete(r.key);
          if (r.value !== value) {
            await trx.updateTable(table).set({ value, updated_at: now }).where('id', '=', r.id).execute();
          }
          result[r.key] = value;
          continue;
        }
        if (r.key !== null) result[r.key] = r.value;
      }
      for (const [key, value] of remaining) {
        await trx
          .insertInto(table)
          .values({ created_at: now, updated_at: null, deleted_at: null, deleted: false, key, value, volume_id: volumeId })
          .execute();
        result[key] = value;
      }
      return result;
    }),
  );
}

/** volume_admin_metadata_get (VolumeNotFound when the volume is not live). */
export async function adminMetadataGet(db: DbHandle, volumeId: string): Promise<Record<string, string | null>> {
  await requireVolume(db.kysely, volumeId);
  return metaGet(db.kysely, 'volume_admin_metadata', volumeId);
}

/** volume_admin_metadata_update(volume_id, metadata, delete). */
export async function adminMetadataUpdate(db: DbHandle, volumeId: string, metadata: Record<string, string>, deleteOthers = false): Promise<Record<string, string | null>> {
  return metaUpdate(db, 'volume_admin_metadata', volumeId, metadata, deleteOthers);
}

/** volume_admin_metadata_delete: soft-deletes one key (updated_at kept). */
export async function adminMetadataDelete(db: DbHandle, volumeId: string, key: string): Promise<void> {
  await requireVolume(db.kysely, volumeId);
  await db.kysely
    .updateTable('volume_admin_metadata')
    .set((eb) => ({ deleted: true, deleted_at: db.now(), updated_at: eb.ref('updated_at') }))
    .where('volume_id', '=', volumeId)
    .where('key', '=', key)
    .where('deleted', '=', false)
    .execute();
}

/** volume_metadata_get (user metadata). */
export async function metadataGet(db: DbHandle, volumeId: string): Promise<Record<string, string | null>> {
  await requireVolume(db.kysely, volumeId);
  return metaGet(db.kysely, 'volume_metadata', volumeId);
}

/** volume_metadata_update(volume_id, metadata, delete) for user metadata. */
export async function metadataUpdate(db: DbHandle, volumeId: string, metadata: Record<string, string>, deleteOthers = false): Promise<Record<string, string | null>> {
  return metaUpdate(db, 'volume_metadata', volumeId, metadata, deleteOthers);
}

/**
 * volume_update_status_based_on_attachment: 'in-use' when the volume has any live attachment row,
 * else 'available' (updated_at = now). Returns the new status.
 */
export async function updateStatusBasedOnAttachment(db: DbHandle, volumeId: string): Promise<'available' | 'in-use'> {
  return db.transaction(async (trx) => {
    const vol = await find(trx, volumeId);
    if (!vol) throw volumeNotFound(volumeId);
    const att = await trx.selectFrom('volume_attachment').select('id').where('volume_id', '=', volumeId).where('deleted', '=', false).limit(1).executeTakeFirst();
    const status = att ? 'in-use' : 'available';
    await trx.updateTable('volumes').set({ status, updated_at: db.now() }).where('id', '=', volumeId).execute();
    return status;
  });
}

export interface VolumeWithRelations {
  volume: Volume;
  metadata: Record<string, string | null>;
  adminMetadata: Record<string, string | null>;
  /** Live attachment rows (the ORM relationship: deleted = false, any attach_status). */
  attachments: VolumeAttachment[];
  /** The volume type, soft-deleted or not (cinder loads it without a deleted filter on the join target). */
  volumeType: (VolumeType & { extra_specs: Record<string, string | null> }) | null;
}

/** volume_get with what cinder joined-loads for an admin context (what a Volume OVO carries). */
export async function getWithRelations(db: DbHandle, id: string): Promise<VolumeWithRelations> {
  return db.transaction(async (trx) => loadRelations(trx, id));
}

async function loadRelations(trx: Transaction<CinderSchema>, id: string): Promise<VolumeWithRelations> {
  const volume = await find(trx, id);
  if (!volume) throw volumeNotFound(id);
  const [metadata, adminMetadata, attachments, type] = await Promise.all([
    metaGet(trx, 'volume_metadata', id),
    metaGet(trx, 'volume_admin_metadata', id),
    trx.selectFrom('volume_attachment').selectAll().where('volume_id', '=', id).where('deleted', '=', false).orderBy('created_at').orderBy('id').execute(),
    // Volume.volume_type: primaryjoin Volume.volume_type_id == VolumeType.id AND VolumeType.deleted == False
    trx.selectFrom('volume_types').selectAll().where('id', '=', volume.volume_type_id).where('deleted', '=', false).executeTakeFirst(),
  ]);
  let volumeType: VolumeWithRelations['volumeType'] = null;
  if (type) {
    const specs = await trx.selectFrom('volume_type_extra_specs').select(['key', 'value']).where('volume_type_id', '=', type.id).where('deleted', '=', false).orderBy('id').execute();
    const extra: Record<string, string | null> = {};
    for (const s of specs) if (s.key !== null) extra[s.key] = s.value;
    volumeType = { ...type, extra_specs: extra };
  }
  return { volume, metadata, adminMetadata, attachments, volumeType };
}

/**
 * volume_create with admin metadata in the same transaction, as Volume.create() writes a volume
 * the volume service makes itself (the backup's temporary volumes: admin_metadata temporary=True,
 * use_quota False). created_at = now.
 */
export async function create(db: DbHandle, values: Omit<NewVolume, 'id'> & { id?: string }, adminMetadata: Record<string, string> = {}): Promise<Volume> {
  assertColumns('volumes', VOLUME_COLUMNS, Object.keys(values));
  const id = values.id ?? randomUUID();
  await db.transaction(async (trx) => {
    const now = db.now();
    await trx.insertInto('volumes').values({ created_at: now, updated_at: null, deleted_at: null, deleted: false, use_quota: true, ...values, id }).execute();
    for (const [key, value] of Object.entries(adminMetadata)) {
      await trx.insertInto('volume_admin_metadata').values({ created_at: now, updated_at: null, deleted_at: null, deleted: false, key, value, volume_id: id }).execute();
    }
  });
  return get(db, id);
}
