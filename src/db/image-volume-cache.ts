// image_volume_cache_entries: the image-volume cache's index, one row per cached image on a host
// (or cluster), as cinder/db/sqlalchemy/api.py image_volume_cache_* read and write it, so that a
// cache built by cinder-volume keeps serving cinderblock and the reverse.
//
// Rows are hard-deleted (the table has no soft-delete columns). `host` is the volume's full host
// (`host@backend#pool`), matched exactly as cinder's filter_by does.
import type { DbHandle } from './connect.js';
import type { ImageVolumeCacheEntry } from './schema.js';

/** Where an entry lives: cinder's _get_query_filters (the cluster when clustered, else the host). */
export type CacheScope = { clusterName: string } | { host: string };

function scopeColumn(scope: CacheScope): ['cluster_name' | 'host', string] {
  return 'clusterName' in scope ? ['cluster_name', scope.clusterName] : ['host', scope.host];
}

/**
 * image_volume_cache_get_and_update_last_used: the most recently used entry for the image in
 * scope, its last_used set to now; undefined when there is none.
 */
export async function getAndUpdateLastUsed(db: DbHandle, imageId: string, scope: CacheScope): Promise<ImageVolumeCacheEntry | undefined> {
  return db.transaction(async (trx) => {
    const [column, value] = scopeColumn(scope);
    const entry = await trx
      .selectFrom('image_volume_cache_entries')
      .selectAll()
      .where('image_id', '=', imageId)
      .where(column, '=', value)
      // id breaks ties between entries used within the same second (DATETIME has no fraction on MySQL)
      .orderBy('last_used', 'desc')
      .orderBy('id', 'desc')
      .executeTakeFirst();
    if (!entry) return undefined;
    const now = db.now();
    await trx.updateTable('image_volume_cache_entries').set({ last_used: now }).where('id', '=', entry.id).execute();
    return { ...entry, last_used: now };
  });
}

/** image_volume_cache_get_all: the entries in scope, most recently used first. */
export async function listInScope(db: DbHandle, scope: CacheScope): Promise<ImageVolumeCacheEntry[]> {
  const [column, value] = scopeColumn(scope);
  return db.kysely.selectFrom('image_volume_cache_entries').selectAll().where(column, '=', value).orderBy('last_used', 'desc').orderBy('id', 'desc').execute();
}

/** image_volume_cache_get_by_volume_id. */
export async function findByVolume(db: DbHandle, volumeId: string): Promise<ImageVolumeCacheEntry | undefined> {
  return db.kysely.selectFrom('image_volume_cache_entries').selectAll().where('volume_id', '=', volumeId).executeTakeFirst();
}

export interface NewCacheEntry {
  host: string;
  clusterName: string | null;
  imageId: string;
  /** the image's updated_at in Glance, naive UTC */
  imageUpdatedAt: Date | null;
  volumeId: string;
  sizeGb: number;
}

/** image_volume_cache_create: last_used = now (the model's default). */
export async function create(db: DbHandle, e: NewCacheEntry): Promise<ImageVolumeCacheEntry> {
  const res = await db.kysely
    .insertInto('image_volume_cache_entries')
    .values({
      host: e.host,
      cluster_name: e.clusterName,
      image_id: e.imageId,
      image_updated_at: e.imageUpdatedAt,
      volume_id: e.volumeId,
      size: e.sizeGb,
      last_used: db.now(),
    })
    .executeTakeFirstOrThrow();
  return db.kysely.selectFrom('image_volume_cache_entries').selectAll().where('id', '=', Number(res.insertId)).executeTakeFirstOrThrow();
}

/** image_volume_cache_delete: the entries of a cached volume (there is one). */
export async function deleteByVolume(db: DbHandle, volumeId: string): Promise<void> {
  await db.kysely.deleteFrom('image_volume_cache_entries').where('volume_id', '=', volumeId).execute();
}
