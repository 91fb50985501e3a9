// The image-volume cache (cinder/image/cache.py ImageVolumeCache, and manager.py
// _create_image_cache_volume_entry / _clone_image_volume): a volume per image and host, owned by
// the Cinder internal tenant, that later creates from the same image clone instead of
// downloading. Its index is image_volume_cache_entries, shared with cinder-volume.
//
// - get_entry: the entry for the image on the volume's host (or cluster), last_used touched; an
//   entry whose image changed in Glance since (updated_at differs) is evicted.
// - eviction deletes the cached volume as cinder-api's delete does: status `deleting`, entry
//   removed, delete_volume cast to the volume's service.
// - ensure_space: least recently used entries go until the new one fits the size and count limits.
// - a new entry is a clone of the freshly downloaded volume: a row `image-<image id>` in the
//   internal tenant (its quota reserved), created here in-process, read-only, then indexed.
import type { ImageVolumeCacheEntry, Volume } from '../../db/index.js';
import { invalidVolume } from '../../errors.js';
import type { ImageMeta } from '../../image/image-meta.js';
import { internalTenantContext, type RequestContext } from '../../rpc/context.js';
import { volumeObjectFromRow } from '../volume-object.js';
import { createVolumeInProcess } from './create-volume.js';
import { deleteVolumeById } from './delete-extend.js';
import { errorMessage, type FlowDeps } from './common.js';

export interface ImageVolumeCacheSettings {
  /** image_volume_cache_max_size_gb (0: unlimited) */
  maxSizeGb: number;
  /** image_volume_cache_max_count (0: unlimited) */
  maxCount: number;
  /** cinder_internal_tenant_project_id / _user_id; null: the cache is not used (logged at start) */
  internalTenant: { projectId: string; userId: string } | null;
}

/** The columns _clone_image_volume does not copy from the downloaded volume (_VOLUME_CLONE_SKIP_PROPERTIES and more). */
const NOT_COPIED = new Set([
  'id', '_name_id', 'status', 'attach_status', 'migration_status', 'snapshot_id', 'source_volid', 'use_quota',
  'consistencygroup_id', 'group_id', 'created_at', 'updated_at', 'deleted', 'deleted_at', 'launched_at', 'terminated_at',
  'provider_location', 'provider_auth', 'provider_id', 'provider_geometry', 'previous_status',
]);

/** api.py delete's AVAILABLE_MIGRATION_STATUS and its status condition without force. */
const DELETABLE_MIGRATION = [null, 'deleting', 'error', 'success'];
const DELETABLE_STATUS = ['available', 'error', 'error_restoring', 'error_extending', 'error_managing'];

/**
 * The cache as this create may use it: enabled, an internal tenant configured, and the volume not
 * encrypted (cinder caches no encrypted volume). null: download as without a cache.
 */
export function usableCache(deps: FlowDeps, volume: Volume): { settings: ImageVolumeCacheSettings; ctx: RequestContext } | null {
  const settings = deps.imageVolumeCache;
  if (!settings?.internalTenant || volume.encryption_key_id) return null;
  return { settings, ctx: internalTenantContext(settings.internalTenant) };
}

function scopeOf(volume: Volume) {
  return volume.cluster_name ? { clusterName: volume.cluster_name } : { host: volume.host ?? '' };
}

/** Glance's updated_at as cinder stores it: naive UTC, to the second glance gives. */
export function imageUpdatedAt(image: ImageMeta): Date | null {
  if (!image.updated_at) return null;
  const iso = /[zZ]|[+-]\d\d:?\d\d$/.test(image.updated_at) ? image.updated_at : `${image.updated_at}Z`;
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** _should_update_entry: the image changed in Glance since it was cached (or cannot say when). */
export function isStale(entry: Pick<ImageVolumeCacheEntry, 'image_updated_at'>, image: ImageMeta): boolean {
  const now = imageUpdatedAt(image);
  const then = entry.image_updated_at;
  return now === null || then === null || now.getTime() !== then.getTime();
}

/**
 * get_entry: the cached volume for this image on the volume's host, or null (a stale one is
 * evicted). `recheck`: the second look before an entry is made, not a lookup of its own (not
 * counted as a miss again).
 */
export async function getEntry(deps: FlowDeps, ctx: RequestContext, volume: Volume, image: ImageMeta, o: { recheck?: boolean } = {}): Promise<ImageVolumeCacheEntry | null> {
  const log = deps.logger.child({ volume_id: volume.id, image_id: image.id });
  let entry = (await deps.db.imageVolumeCache.getAndUpdateLastUsed(image.id, scopeOf(volume))) ?? null;
  if (entry && isStale(entry, image)) {
    log.info(`Image-volume cache entry for image ${image.id} (volume ${entry.volume_id}) is out of date: the image was updated in Glance; evicting it`);
    await deleteImageVolume(deps, ctx, entry);
    entry = null;
  }
  if (o.recheck) return entry;
  log.info(`Image-volume cache ${entry ? `hit: volume ${entry.volume_id}` : 'miss'} for image ${image.id} on ${volume.cluster_name ?? volume.host}`);
  deps.images?.metrics?.cache(entry ? 'hit' : 'miss');
  return entry;
}

/**
 * _delete_image_volume through volume.API().delete: the cached volume goes to `deleting` if it may
 * (not attached, not migrating, in no group, no snapshots), its entry is evicted, and its service
 * deletes it. A cached volume already gone only loses its entry.
 */
async function deleteImageVolume(deps: FlowDeps, ctx: RequestContext, entry: ImageVolumeCacheEntry): Promise<void> {
  const row = await deps.db.volumes.find(entry.volume_id);
  if (!row) {
    // cinder would raise VolumeNotFound here on every later create of the image; the entry is
    // useless without its volume, so it goes
    deps.logger.warn(`Image-volume cache entry ${entry.id} names volume ${entry.volume_id}, which no longer exists; removing the entry`);
    await deps.db.imageVolumeCache.deleteByVolume(entry.volume_id);
    return;
  }
  const snapshots = await deps.db.snapshots.listByVolume(row.id);
  const ok =
    snapshots.length === 0 &&
    (await deps.db.volumes.conditionalUpdate(
      row.id,
      { status: 'deleting', terminated_at: deps.db.now() },
      { attach_status: { not: 'attached' }, migration_status: DELETABLE_MIGRATION, consistencygroup_id: null, group_id: null, status: DELETABLE_STATUS },
    ));
  if (!ok) {
    throw invalidVolume(
      `Volume ${row.id} must not be migrating, attached, belong to a group, have snapshots, awaiting a transfer, or be disassociated from snapshots after volume transfer. status must be ${DELETABLE_STATUS.join(' or ')} and`,
    );
  }
  await deps.db.imageVolumeCache.deleteByVolume(row.id);
  deps.images?.metrics?.cache('eviction');
  const deleting = { ...row, status: 'deleting' };
  if (deps.peers) {
    await deps.peers.deleteVolume(ctx.toDict(), volumeObjectFromRow(deleting));
  } else {
    await deleteVolumeById(deps, row.id, { unmanageOnly: false, cascade: false });
  }
}

/** ensure_space: evicts least recently used entries until `volume` fits; false when it cannot. */
export async function ensureSpace(deps: FlowDeps, ctx: RequestContext, settings: ImageVolumeCacheSettings, volume: Volume): Promise<boolean> {
  const { maxSizeGb, maxCount } = settings;
  if (maxSizeGb === 0 && maxCount === 0) return true;
  const size = volume.size ?? 0;
  if (maxSizeGb !== 0 && size > maxSizeGb) return false;
  const entries = await deps.db.imageVolumeCache.listInScope(scopeOf(volume));
  let currentSize = entries.reduce((n, e) => n + e.size, 0) + size;
  let currentCount = entries.length + 1;
  while (((maxSizeGb > 0 && currentSize > maxSizeGb) || (maxCount > 0 && currentCount > maxCount)) && entries.length) {
    const entry = entries.pop()!;
    deps.logger.info(`Reclaiming image-volume cache space: evicting the entry of image ${entry.image_id} (volume ${entry.volume_id}, ${entry.size} GB)`);
    await deleteImageVolume(deps, ctx, entry);
    currentSize -= entry.size;
    currentCount -= 1;
  }
  if (maxSizeGb > 0 && currentSize > maxSizeGb) {
    deps.logger.warn(`Image-volume cache for ${volume.cluster_name ?? volume.host} does not have enough space (GB).`);
    return false;
  }
  return true;
}

/**
 * _create_image_cache_volume_entry: `volume` holds the image just downloaded; a clone of it
 * becomes the cache entry. Never fails the user's create: a failure is logged and the clone, if
 * made, deleted.
 */
export async function createCacheEntry(deps: FlowDeps, ctx: RequestContext, settings: ImageVolumeCacheSettings, volume: Volume, image: ImageMeta): Promise<void> {
  const log = deps.logger.child({ volume_id: volume.id, image_id: image.id });
  let imageVolume: Volume | null = null;
  try {
    if (await getEntry(deps, ctx, volume, image, { recheck: true })) {
      log.debug(`Cache entry already exists with image ID ${image.id}`);
      return;
    }
    if (!(await ensureSpace(deps, ctx, settings, volume))) {
      log.warn(`Unable to ensure space for image-volume in cache. Will skip creating entry for image ${image.id} on ${volume.cluster_name ?? volume.host}.`);
      return;
    }
    imageVolume = await cloneImageVolume(deps, ctx, volume, image);
    if (!imageVolume) {
      log.warn(`Unable to clone image_volume for image ${image.id} will not create cache entry.`);
      return;
    }
    await deps.db.imageVolumeCache.create({
      host: imageVolume.host ?? '',
      clusterName: imageVolume.cluster_name,
      imageId: image.id,
      imageUpdatedAt: imageUpdatedAt(image),
      volumeId: imageVolume.id,
      sizeGb: imageVolume.size ?? 0,
    });
    log.info(`New image-volume cache entry for image ${image.id}: volume ${imageVolume.id} (${imageVolume.size} GB)`);
  } catch (err) {
    // cinder lets anything but a CinderException fail the user's create; a cache that cannot be
    // filled should never cost the user the volume they asked for
    log.warn({ err }, `Failed to create new image-volume cache entry. Error: ${errorMessage(err)}`);
    if (imageVolume) await deleteVolumeById(deps, imageVolume.id, { unmanageOnly: false, cascade: false });
  }
}

/**
 * _clone_image_volume: a volume `image-<image id>` in the internal tenant, cloned from `volume`
 * on its host, read-only. null when it could not be made (nothing is left behind).
 */
async function cloneImageVolume(deps: FlowDeps, ctx: RequestContext, volume: Volume, image: ImageMeta): Promise<Volume | null> {
  const log = deps.logger.child({ volume_id: volume.id, image_id: image.id });
  const projectId = ctx.projectId;
  // an over-quota internal tenant raises here, as QUOTAS.reserve does outside cinder's try
  const deltas = await deps.db.quotas.addVolumeTypeOpts({ volumes: 1, gigabytes: volume.size ?? 0 }, volume.volume_type_id);
  const reservations = await deps.db.quotas.reserve(projectId, deltas);
  let row: Volume;
  try {
    const copied = Object.fromEntries(Object.entries(volume).filter(([k]) => !NOT_COPIED.has(k)));
    row = await deps.db.volumes.create({
      ...copied,
      status: 'creating',
      attach_status: 'detached',
      project_id: projectId,
      volume_type_id: volume.volume_type_id,
      display_name: `image-${image.id}`,
      source_volid: volume.id,
    });
  } catch (err) {
    log.error({ err }, `Create clone_image_volume: ${volume.id} for image ${image.id}, failed (Exception: ${errorMessage(err)})`);
    await deps.db.quotas.rollback(reservations, projectId);
    return null;
  }
  await deps.db.quotas.commit(reservations, projectId);
  try {
    // volume_create writes the user's volume metadata with the row
    const metadata = Object.entries(await deps.db.volumes.metadataGet(volume.id)).filter((e): e is [string, string] => e[1] !== null);
    if (metadata.length) await deps.db.volumes.metadataUpdate(row.id, Object.fromEntries(metadata));
    await createVolumeInProcess(deps, ctx.toDict(), row);
    const made = await deps.db.volumes.get(row.id);
    if (made.status !== 'available') throw invalidVolume('Volume is not available.');
    await deps.db.volumes.adminMetadataUpdate(row.id, { readonly: 'True' }, false);
    return made;
  } catch (err) {
    log.error({ err }, `Failed to clone volume ${volume.id} for image ${image.id}.`);
    try {
      await deleteVolumeById(deps, row.id, { unmanageOnly: false, cascade: false });
    } catch (e) {
      log.error({ err: e }, `Could not delete the image volume ${row.id}.`);
    }
    return null;
  }
}
