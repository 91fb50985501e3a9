// snapshots (and snapshot_metadata) as the volume manager writes them: snapshot_get,
// snapshot_update (status, progress, provider_location, encryption_key_id …), conditional updates,
// snapshot_destroy, snapshot_get_all_for_volume, snapshot_create (temporary revert snapshots).
import { randomUUID } from 'node:crypto';
import type { DbHandle } from './connect.js';
import { retryOnDeadlock } from './connect.js';
import { and, assertColumns, conditionalUpdateRow, deletedFilter, expectedExpr, filterHost, type ConditionalUpdateOptions, type Expected, type ReadDeleted } from './common.js';
import { snapshotNotFound } from '../errors.js';
import type { NewSnapshot, Snapshot, SnapshotsTable } from './schema.js';

export type SnapshotColumn = keyof SnapshotsTable & string;

export const SNAPSHOT_COLUMNS: ReadonlySet<string> = new Set<SnapshotColumn>([
  'created_at', 'updated_at', 'deleted_at', 'deleted', 'id', 'use_quota', 'user_id', 'project_id', 'volume_id',
  'cgsnapshot_id', 'group_snapshot_id', 'status', 'progress', 'volume_size', 'scheduled_at', 'display_name',
  'display_description', 'encryption_key_id', 'volume_type_id', 'provider_location', 'provider_id', 'provider_auth',
]);

export type SnapshotValues = Partial<Omit<Snapshot, 'id'>>;

/** snapshot_get: the live row (or per readDeleted); throws SnapshotNotFound. */
export async function get(db: DbHandle, id: string, opts: { readDeleted?: ReadDeleted } = {}): Promise<Snapshot> {
  const row = await find(db, id, opts);
  if (!row) throw snapshotNotFound(id);
  return row;
}

export async function find(db: DbHandle, id: string, opts: { readDeleted?: ReadDeleted } = {}): Promise<Snapshot | undefined> {
  let q = db.kysely.selectFrom('snapshots').selectAll().where('id', '=', id);
  const del = deletedFilter('deleted', opts.readDeleted ?? 'no');
  if (del) q = q.where(del);
  return q.executeTakeFirst();
}

/** snapshot_update: writes `values` to the live row, updated_at = now unless given; SnapshotNotFound. */
export async function update(db: DbHandle, id: string, values: SnapshotValues): Promise<void> {
  assertColumns('snapshots', SNAPSHOT_COLUMNS, Object.keys(values));
  const res = await db.kysely
    .updateTable('snapshots')
    .set({ ...values, updated_at: values.updated_at === undefined ? db.now() : values.updated_at })
    .where('id', '=', id)
    .where('deleted', '=', false)
    .executeTakeFirst();
  if (Number(res.numUpdatedRows) === 0) throw snapshotNotFound(id);
}

/** conditional_update on a snapshot; see volumes.conditionalUpdate. */
export async function conditionalUpdate(
  db: DbHandle,
  id: string,
  values: SnapshotValues,
  expected: Partial<Record<SnapshotColumn, Expected<unknown>>>,
  opts: ConditionalUpdateOptions<SnapshotColumn> = {},
): Promise<boolean> {
  return conditionalUpdateRow(db, 'snapshots', SNAPSHOT_COLUMNS, id, values, expected, opts);
}

/**
 * snapshot_destroy: status 'deleted', deleted, deleted_at = now, updated_at kept; its
 * snapshot_metadata rows soft-deleted with the same time. Returns what was written to the snapshot.
 */
export async function destroy(db: DbHandle, id: string): Promise<{ status: 'deleted'; deleted: true; deleted_at: Date }> {
  const now = db.now();
  await retryOnDeadlock(() =>
    db.transaction(async (trx) => {
      await trx
        .updateTable('snapshots')
        .set((eb) => ({ status: 'deleted', deleted: true, deleted_at: now, updated_at: eb.ref('updated_at') }))
        .where('id', '=', id)
        .where('deleted', '=', false)
        .execute();
      await trx
        .updateTable('snapshot_metadata')
        .set((eb) => ({ deleted: true, deleted_at: now, updated_at: eb.ref('updated_at') }))
        .where('snapshot_id', '=', id)
        .where('deleted', '=', false)
        .execute();
    }),
  );
  return { status: 'deleted', deleted: true, deleted_at: now };
}

/** snapshot_get_all_for_volume: live snapshots of a volume. */
export async function listByVolume(db: DbHandle, volumeId: string): Promise<Snapshot[]> {
  return db.kysely.selectFrom('snapshots').selectAll().where('volume_id', '=', volumeId).where('deleted', '=', false).orderBy('created_at').orderBy('id').execute();
}

/**
 * snapshot_get_all(filters={'host': host}) as _get_my_snapshots calls it: live snapshots whose
 * volume's host matches (cinder's _filter_host); newest first.
 */
export async function listByHost(db: DbHandle, host: string, opts: { status?: string | readonly string[]; limit?: number; offset?: number } = {}): Promise<Snapshot[]> {
  let q = db.kysely
    .selectFrom('snapshots')
    .innerJoin('volumes', 'volumes.id', 'snapshots.volume_id')
    .selectAll('snapshots')
    .where(
      and([
        deletedFilter('snapshots.deleted', 'no'),
        filterHost(db, 'volumes.host', host),
        opts.status !== undefined ? expectedExpr('snapshots.status', opts.status as Expected<unknown>) : null,
      ]),
    )
    .orderBy('snapshots.created_at', 'desc')
    .orderBy('snapshots.id', 'desc');
  if (opts.limit !== undefined) q = q.limit(opts.limit);
  if (opts.offset !== undefined) q = (opts.limit === undefined ? q.limit(Number.MAX_SAFE_INTEGER) : q).offset(opts.offset);
  return q.execute();
}

/**
 * snapshot_create: inserts a snapshot (created_at = now, use_quota defaults to true) and returns
 * it. Used for the volume service's own temporary snapshots (revert_to_snapshot).
 */
export async function create(db: DbHandle, values: Omit<NewSnapshot, 'id'> & { id?: string }): Promise<Snapshot> {
  assertColumns('snapshots', SNAPSHOT_COLUMNS, Object.keys(values));
  const id = values.id ?? randomUUID();
  await db.kysely
    .insertInto('snapshots')
    .values({ created_at: db.now(), updated_at: null, deleted_at: null, deleted: false, use_quota: true, ...values, id })
    .execute();
  return get(db, id);
}

/** snapshot_metadata_get. */
export async function metadataGet(db: DbHandle, snapshotId: string): Promise<Record<string, string | null>> {
  await get(db, snapshotId);
  const rows = await db.kysely.selectFrom('snapshot_metadata').select(['key', 'value']).where('snapshot_id', '=', snapshotId).where('deleted', '=', false).orderBy('id').execute();
  const out: Record<string, string | null> = {};
  for (const r of rows) if (r.key !== null) out[r.key] = r.value;
  return out;
}
