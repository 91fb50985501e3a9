// groups and group_snapshots as the volume manager's generic group flows use them: group_get,
// group_update, group_destroy, group_snapshot_get/update/destroy,
// volume_get_all_by_generic_group, snapshot_get_all_for_group_snapshot, and the group type
// lookup behind group_types.is_default_cgsnapshot_type.
import type { DbHandle } from './connect.js';
import { retryOnDeadlock } from './connect.js';
import { assertColumns } from './common.js';
import { groupNotFound, groupSnapshotNotFound } from '../errors.js';
import type { Group, GroupSnapshot, GroupSnapshotsTable, GroupsTable, Snapshot, Volume } from './schema.js';

const GROUP_COLUMNS: ReadonlySet<string> = new Set<keyof GroupsTable & string>([
  'created_at', 'updated_at', 'deleted_at', 'deleted', 'user_id', 'project_id', 'cluster_name', 'host',
  'availability_zone', 'name', 'description', 'status', 'group_type_id', 'group_snapshot_id', 'source_group_id',
  'replication_status',
]);

const GROUP_SNAPSHOT_COLUMNS: ReadonlySet<string> = new Set<keyof GroupSnapshotsTable & string>([
  'created_at', 'updated_at', 'deleted_at', 'deleted', 'group_id', 'user_id', 'project_id', 'name', 'description',
  'status', 'group_type_id',
]);

/** The group type cinder-api gives consistency groups created through the old CG API. */
export const DEFAULT_CGSNAPSHOT_TYPE = 'default_cgsnapshot_type';

export async function find(db: DbHandle, id: string): Promise<Group | undefined> {
  return db.kysely.selectFrom('groups').selectAll().where('id', '=', id).where('deleted', '=', false).executeTakeFirst();
}

/** group_get: the live row; GroupNotFound. */
export async function get(db: DbHandle, id: string): Promise<Group> {
  const row = await find(db, id);
  if (!row) throw groupNotFound(id);
  return row;
}

/** group_update: writes `values`, updated_at = now unless given; GroupNotFound. */
export async function update(db: DbHandle, id: string, values: Partial<Omit<Group, 'id'>>): Promise<void> {
  assertColumns('groups', GROUP_COLUMNS, Object.keys(values));
  const res = await db.kysely
    .updateTable('groups')
    .set({ ...values, updated_at: values.updated_at === undefined ? db.now() : values.updated_at })
    .where('id', '=', id)
    .where('deleted', '=', false)
    .executeTakeFirst();
  if (Number(res.numUpdatedRows) === 0) throw groupNotFound(id);
}

/** group_destroy: status 'deleted', soft-deleted with its volume type mappings, updated_at kept. */
export async function destroy(db: DbHandle, id: string): Promise<void> {
  const now = db.now();
  await retryOnDeadlock(() =>
    db.transaction(async (trx) => {
      await trx
        .updateTable('groups')
        .set((eb) => ({ status: 'deleted', deleted: true, deleted_at: now, updated_at: eb.ref('updated_at') }))
        .where('id', '=', id)
        .execute();
      await trx
        .updateTable('group_volume_type_mapping')
        .set((eb) => ({ deleted: true, deleted_at: now, updated_at: eb.ref('updated_at') }))
        .where('group_id', '=', id)
        .execute();
    }),
  );
}

export async function findSnapshot(db: DbHandle, id: string): Promise<GroupSnapshot | undefined> {
  return db.kysely.selectFrom('group_snapshots').selectAll().where('id', '=', id).where('deleted', '=', false).executeTakeFirst();
}

/** group_snapshot_get: the live row; GroupSnapshotNotFound. */
export async function getSnapshot(db: DbHandle, id: string): Promise<GroupSnapshot> {
  const row = await findSnapshot(db, id);
  if (!row) throw groupSnapshotNotFound(id);
  return row;
}

/** group_snapshot_update; GroupSnapshotNotFound. */
export async function updateSnapshot(db: DbHandle, id: string, values: Partial<Omit<GroupSnapshot, 'id'>>): Promise<void> {
  assertColumns('group_snapshots', GROUP_SNAPSHOT_COLUMNS, Object.keys(values));
  const res = await db.kysely
    .updateTable('group_snapshots')
    .set({ ...values, updated_at: values.updated_at === undefined ? db.now() : values.updated_at })
    .where('id', '=', id)
    .where('deleted', '=', false)
    .executeTakeFirst();
  if (Number(res.numUpdatedRows) === 0) throw groupSnapshotNotFound(id);
}

/** group_snapshot_destroy: status 'deleted', soft-deleted, updated_at kept. */
export async function destroySnapshot(db: DbHandle, id: string): Promise<void> {
  await db.kysely
    .updateTable('group_snapshots')
    .set((eb) => ({ status: 'deleted', deleted: true, deleted_at: db.now(), updated_at: eb.ref('updated_at') }))
    .where('id', '=', id)
    .execute();
}

/** volume_get_all_by_generic_group: the live volumes of the group. */
export async function volumes(db: DbHandle, groupId: string): Promise<Volume[]> {
  return db.kysely.selectFrom('volumes').selectAll().where('group_id', '=', groupId).where('deleted', '=', false).orderBy('created_at').orderBy('id').execute();
}

/** snapshot_get_all_for_group_snapshot: the live snapshots taken by the group snapshot. */
export async function snapshots(db: DbHandle, groupSnapshotId: string): Promise<Snapshot[]> {
  return db.kysely
    .selectFrom('snapshots')
    .selectAll()
    .where('group_snapshot_id', '=', groupSnapshotId)
    .where('deleted', '=', false)
    .orderBy('created_at')
    .orderBy('id')
    .execute();
}

/**
 * group_types.is_default_cgsnapshot_type: whether `groupTypeId` is the live group type named
 * default_cgsnapshot_type (the one cinder hands consistency-group requests to the driver's CG API for).
 */
export async function isDefaultCgsnapshotType(db: DbHandle, groupTypeId: string | null): Promise<boolean> {
  if (!groupTypeId) return false;
  const row = await db.kysely
    .selectFrom('group_types')
    .select('id')
    .where('name', '=', DEFAULT_CGSNAPSHOT_TYPE)
    .where('deleted', '=', false)
    .executeTakeFirst();
  return row?.id === groupTypeId;
}
