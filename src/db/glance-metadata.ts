// volume_glance_metadata: image properties of bootable volumes and of their snapshots. The volume
// manager copies them to a snapshot on create_snapshot (bootable volumes), from a snapshot or a
// source volume on create-from-snapshot/clone, writes them after create-from-image, and deletes a
// snapshot's on delete_snapshot.
import type { DbHandle, Executor } from './connect.js';
import { glanceMetadataExists, glanceMetadataNotFound, snapshotNotFound, volumeNotFound } from '../errors.js';
import type { GlanceMetadata } from './schema.js';

async function rowsFor(k: Executor, column: 'volume_id' | 'snapshot_id', id: string): Promise<GlanceMetadata[]> {
  return k.selectFrom('volume_glance_metadata').selectAll().where(column, '=', id).where('deleted', '=', false).orderBy('id').execute();
}

async function requireLive(k: Executor, table: 'volumes' | 'snapshots', id: string): Promise<void> {
  const row = await k.selectFrom(table).select('id').where('id', '=', id).where('deleted', '=', false).executeTakeFirst();
  if (!row) throw table === 'volumes' ? volumeNotFound(id) : snapshotNotFound(id);
}

/** volume_glance_metadata_get: the live rows of a volume; GlanceMetadataNotFound when none. */
export async function getForVolume(db: DbHandle, volumeId: string): Promise<GlanceMetadata[]> {
  const rows = await rowsFor(db.kysely, 'volume_id', volumeId);
  if (!rows.length) throw glanceMetadataNotFound(volumeId);
  return rows;
}

/** volume_snapshot_glance_metadata_get (SnapshotNotFound / GlanceMetadataNotFound). */
export async function getForSnapshot(db: DbHandle, snapshotId: string): Promise<GlanceMetadata[]> {
  await requireLive(db.kysely, 'snapshots', snapshotId);
  const rows = await rowsFor(db.kysely, 'snapshot_id', snapshotId);
  if (!rows.length) throw glanceMetadataNotFound(snapshotId);
  return rows;
}

/** The same rows as a key → value map (what Volume.glance_metadata holds). */
export function toMap(rows: GlanceMetadata[]): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const r of rows) if (r.key !== null) out[r.key] = r.value;
  return out;
}

async function insertCopies(db: DbHandle, k: Executor, rows: GlanceMetadata[], target: { volume_id: string | null; snapshot_id: string | null }): Promise<void> {
  const now = db.now();
  for (const r of rows) {
    await k
      .insertInto('volume_glance_metadata')
      .values({ created_at: now, updated_at: null, deleted_at: null, deleted: false, volume_id: target.volume_id, snapshot_id: target.snapshot_id, key: r.key, value: r.value })
      .execute();
  }
}

/** volume_glance_metadata_copy_to_snapshot(snapshot_id, volume_id). */
export async function copyToSnapshot(db: DbHandle, snapshotId: string, volumeId: string): Promise<void> {
  await db.transaction(async (trx) => {
    await requireLive(trx, 'snapshots', snapshotId);
    const rows = await rowsFor(trx, 'volume_id', volumeId);
    if (!rows.length) throw glanceMetadataNotFound(volumeId);
    await insertCopies(db, trx, rows, { volume_id: null, snapshot_id: snapshotId });
  });
}

/** volume_glance_metadata_copy_to_volume(volume_id, snapshot_id): from a snapshot to a new volume. */
export async function copyToVolume(db: DbHandle, volumeId: string, snapshotId: string): Promise<void> {
  await db.transaction(async (trx) => {
    await requireLive(trx, 'volumes', volumeId);
    await requireLive(trx, 'snapshots', snapshotId);
    const rows = await rowsFor(trx, 'snapshot_id', snapshotId);
    if (!rows.length) throw glanceMetadataNotFound(snapshotId);
    await insertCopies(db, trx, rows, { volume_id: volumeId, snapshot_id: null });
  });
}

/** volume_glance_metadata_copy_from_volume_to_volume(src_volume_id, volume_id): clones. */
export async function copyFromVolumeToVolume(db: DbHandle, srcVolumeId: string, volumeId: string): Promise<void> {
  await db.transaction(async (trx) => {
    const rows = await rowsFor(trx, 'volume_id', srcVolumeId);
    if (!rows.length) throw glanceMetadataNotFound(srcVolumeId);
    await insertCopies(db, trx, rows, { volume_id: volumeId, snapshot_id: null });
  });
}

/**
 * volume_glance_metadata_bulk_create(volume_id, metadata): adds keys; a key that already exists
 * live raises GlanceMetadataExists (values are stored as strings, as str(value) does).
 */
export async function bulkCreate(db: DbHandle, volumeId: string, metadata: Record<string, unknown>): Promise<void> {
  await db.transaction(async (trx) => {
    await requireLive(trx, 'volumes', volumeId);
    const now = db.now();
    for (const [key, value] of Object.entries(metadata)) {
      const exists = await trx.selectFrom('volume_glance_metadata').select('id').where('volume_id', '=', volumeId).where('key', '=', key).where('deleted', '=', false).executeTakeFirst();
      if (exists) {
        throw glanceMetadataExists(key, volumeId);
      }
      await trx
        .insertInto('volume_glance_metadata')
        .values({ created_at: now, updated_at: null, deleted_at: null, deleted: false, volume_id: volumeId, snapshot_id: null, key, value: pyStr(value) })
        .execute();
    }
  });
}

/** Python's str() for the JSON-ish values image properties carry. */
function pyStr(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  return JSON.stringify(v);
}

async function softDeleteBy(db: DbHandle, column: 'volume_id' | 'snapshot_id', id: string): Promise<void> {
  await db.kysely
    .updateTable('volume_glance_metadata')
    .set((eb) => ({ deleted: true, deleted_at: db.now(), updated_at: eb.ref('updated_at') }))
    .where(column, '=', id)
    .where('deleted', '=', false)
    .execute();
}

/** volume_glance_metadata_delete_by_snapshot (updated_at kept). */
export async function deleteBySnapshot(db: DbHandle, snapshotId: string): Promise<void> {
  await softDeleteBy(db, 'snapshot_id', snapshotId);
}

/** volume_glance_metadata_delete_by_volume (updated_at kept). */
export async function deleteByVolume(db: DbHandle, volumeId: string): Promise<void> {
  await softDeleteBy(db, 'volume_id', volumeId);
}
