// create_volume with request_spec.image_id (flows/manager/create_volume.py _create_from_image and
// _create_from_image_cache_or_download): the image's record is checked and, when it needs
// converting, downloaded and inspected before the volume exists; then the driver creates the
// volume, its status goes `downloading`, the image is written onto it, and it becomes bootable
// with volume_glance_metadata rows as cinder writes them. With the image-volume cache
// (image-volume-cache.ts) a cached image is cloned instead, and a download fills the cache. The
// caller (create-volume.ts) sets `available` or hands the failure to its reschedule/error handling.
import type { ModelUpdate } from '../../../drivers/driver.js';
import type { ImageVolumeCacheEntry, Volume } from '../../db/index.js';
import { MessageAction, MessageDetail } from '../../db/index.js';
import { CinderError, imageCopyFailure, imageSignatureVerificationException, invalid, metadataCopyFailure } from '../../errors.js';
import { checkImageRecord, prepareImage, writeImage } from '../../image/fetch-to-volume.js';
import { volumeImageMetadata, type ImageMeta } from '../../image/image-meta.js';
import { glanceContext, type ImageTools } from '../../image/image-tools.js';
import { logDropped } from '../../log.js';
import type { RequestContext } from '../../rpc/context.js';
import { driverVolume, errorMessage, getVolume, withLock, type FlowDeps } from './common.js';
import { createCacheEntry, getEntry, usableCache, type ImageVolumeCacheSettings } from './image-volume-cache.js';

const GiB = 1024 ** 3;
import { writeUserMessage } from './user-messages.js';

const SIGNATURE_PROPERTIES = ['img_signature', 'img_signature_hash_method', 'img_signature_key_type', 'img_signature_certificate_uuid'];

export function requireImages(deps: FlowDeps): ImageTools {
  if (!deps.images) throw invalid('the image paths are not configured on this backend');
  return deps.images;
}

export async function createFromImage(deps: FlowDeps, ctx: Record<string, unknown>, row: Volume, imageId: string): Promise<ModelUpdate | null> {
  const tools = requireImages(deps);
  const gctx = glanceContext(ctx);
  try {
    const image = await tools.glance().show(gctx, imageId);
    checkSignatureProperties(tools, image);
    checkImageRecord(image, row.size ?? 0);
    const cache = usableCache(deps, row);
    let outcome: { model: ModelUpdate | null; cloned: boolean } | null = null;
    if (cache) {
      // _prepare_image_cache_entry: one create per image and host fills the cache (the others wait
      // here, then clone); cinder's lock is a coordination lock named by the image id, and the
      // cache is per backend, so this process's lock is the one that matters
      const found = await withLock(deps, `image-volume-cache-${imageId}`, false, async (): Promise<{ entry: ImageVolumeCacheEntry } | { filled: NonNullable<typeof outcome> }> => {
        const entry = await getEntry(deps, cache.ctx, row, image);
        if (entry) return { entry };
        return { filled: { model: await downloadOnto(deps, tools, ctx, row, image, cache), cloned: false } };
      });
      outcome = 'filled' in found ? found.filled : await cloneFromCache(deps, found.entry, row, image);
    }
    outcome ??= { model: await downloadOnto(deps, tools, ctx, row, image, null), cloned: false };
    await recordGlanceMetadata(deps, tools, row.id, image, { downloaded: !outcome.cloned });
    return outcome.model;
  } catch (err) {
    await userMessage(deps, ctx, row.id, err);
    throw asCopyFailure(err);
  }
}

/**
 * _create_from_image_cache on a hit: the cached volume is cloned onto the new one (a thin
 * snapshot, a reflink, or a copy on thick LVM). null when the clone failed (logged): the image is
 * then downloaded.
 */
async function cloneFromCache(deps: FlowDeps, entry: ImageVolumeCacheEntry, row: Volume, image: ImageMeta): Promise<{ model: ModelUpdate | null; cloned: true } | null> {
  const log = deps.logger.child({ volume_id: row.id, image_id: image.id });
  const dv = driverVolume(row);
  try {
    // the cached volume's delete (an eviction by another create) waits for the clone
    return await withLock(deps, `${entry.volume_id}-delete_volume`, true, async () => {
      const source = await getVolume(deps, entry.volume_id);
      const started = Date.now();
      const model = await deps.driver.createClonedVolume(dv, driverVolume(source));
      log.info(`Created volume ${row.id} from image ${image.id} by cloning its image-volume cache entry ${source.id} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      return { model, cloned: true as const };
    });
  } catch (err) {
    log.warn({ err }, `Failed to create volume from image-volume cache (volume ${entry.volume_id}), image will be downloaded from Glance. Error: ${errorMessage(err)}`);
    // a clone that failed half way must not make the download's create fail on a leftover
    await deps.driver.deleteVolume(dv).catch(logDropped(deps.logger, `removing what the failed clone of volume ${row.id} left`, 'the download creates the volume anew'));
    return null;
  }
}

/**
 * _create_from_image_cache_or_download's download: the image's data onto a new volume, status
 * `downloading`. When it fills the cache the volume is first made at the image's own size, cloned
 * into the cache at that size, then extended back to the size asked for.
 */
async function downloadOnto(
  deps: FlowDeps,
  tools: ImageTools,
  ctx: Record<string, unknown>,
  row: Volume,
  image: ImageMeta,
  cache: { settings: ImageVolumeCacheSettings; ctx: RequestContext } | null,
): Promise<ModelUpdate | null> {
  const log = deps.logger.child({ volume_id: row.id, image_id: image.id });
  const gctx = glanceContext(ctx);
  const originalSize = row.size ?? 0;
  const prepared = await prepareImage(tools, gctx, image, originalSize);
  let size = originalSize;
  let created = false;
  try {
    if (cache) {
      const virtualBytes = prepared.kind === 'file' ? prepared.virtualSize : (image.virtual_size ?? image.size ?? 0);
      const minimal = Math.ceil(virtualBytes / GiB);
      if (minimal > 0 && minimal !== originalSize) {
        size = minimal;
        await deps.db.volumes.update(row.id, { size });
      }
    }
    const dv = { ...driverVolume(row), size };
    const model = await deps.driver.createVolume(dv);
    created = true;
    await deps.db.volumes.update(row.id, { ...(model ?? {}), status: 'downloading' });
    const started = Date.now();
    const result = await writeImage(tools, gctx, image, prepared, { path: deps.driver.localPath(dv), sizeGb: size, readsZeros: deps.driver.newVolumeReadsZeros() });
    const secs = (Date.now() - started) / 1000;
    log.info(
      `Downloaded image ${image.id} (${image.disk_format}) onto volume ${row.id} by ${result.path === 'stream' ? 'streaming' : 'qemu-img convert'}: ` +
        `${result.bytes} bytes in ${secs.toFixed(1)} s${result.written !== undefined ? `, ${result.written} written (zero runs skipped)` : ''}`,
    );
    if (cache) {
      const current = await getVolume(deps, row.id);
      await createCacheEntry(deps, cache.ctx, cache.settings, current, image);
    }
    return model;
  } finally {
    if (prepared.kind === 'file') await prepared.dispose();
    if (size !== originalSize) {
      // extended back even after a failure, as cinder's finally does, so a retry or a delete
      // sees the volume at the size it was asked for
      try {
        if (created) await deps.driver.extendVolume({ ...driverVolume(row), size }, originalSize);
      } finally {
        await deps.db.volumes.update(row.id, { size: originalSize });
      }
    }
  }
}

/**
 * verify_glance_signatures: a signed image needs castellan and a key manager cinderblock does not
 * have, so it is refused rather than used unverified; a partly signed one is refused as cinder's
 * InvalidSignatureImage path does.
 */
function checkSignatureProperties(tools: ImageTools, image: ImageMeta): void {
  if (tools.options.verifySignatures === 'disabled') return;
  const present = SIGNATURE_PROPERTIES.filter((k) => image.properties[k] !== undefined && image.properties[k] !== null);
  if (present.length === 0) return;
  if (present.length < SIGNATURE_PROPERTIES.length) {
    throw imageSignatureVerificationException(`Required image properties for signature verification do not exist. Cannot verify signature. Missing property: ${SIGNATURE_PROPERTIES.filter((k) => !present.includes(k)).join(', ')}`);
  }
  throw imageSignatureVerificationException('signed images cannot be verified by cinderblock (no key manager); set verify_glance_signatures = disabled to use them unverified');
}

/**
 * signature_verified (written with every download when verification is enabled: False for an unsigned image),
 * then _handle_bootable_volume_glance_meta: bootable and the image's metadata rows.
 */
async function recordGlanceMetadata(deps: FlowDeps, tools: ImageTools, volumeId: string, image: ImageMeta, o: { downloaded: boolean }): Promise<void> {
  try {
    // written where the image is fetched: a clone from the cache does not write it
    if (o.downloaded && tools.options.verifySignatures !== 'disabled') await deps.db.glanceMetadata.bulkCreate(volumeId, { signature_verified: false });
    await deps.db.volumes.update(volumeId, { bootable: true });
    await deps.db.glanceMetadata.bulkCreate(volumeId, volumeImageMetadata(image));
  } catch (err) {
    if (err instanceof CinderError && err.className === 'GlanceMetadataExists') throw metadataCopyFailure(err.message);
    throw err;
  }
}

/** The user messages _create_from_image_cache_or_download writes for the failures it knows. */
async function userMessage(deps: FlowDeps, ctx: Record<string, unknown>, volumeId: string, err: unknown): Promise<void> {
  const cls = err instanceof CinderError ? err.className : null;
  const detail =
    cls === 'ImageTooBig'
      ? MessageDetail.NOT_ENOUGH_SPACE_FOR_IMAGE
      : cls === 'ImageSignatureVerificationException'
        ? MessageDetail.SIGNATURE_VERIFICATION_FAILED
        : cls === 'ImageConversionNotAllowed'
          ? MessageDetail.IMAGE_FORMAT_UNACCEPTABLE
          : null;
  if (!detail) return;
  await writeUserMessage(deps, ctx, { actionId: MessageAction.COPY_IMAGE_TO_VOLUME, resourceUuid: volumeId, detailId: detail, exceptionClass: cls }, 'the failed create from an image');
}

/**
 * volume_utils.copy_image_to_volume: the image's own refusals and cinder's errors pass as they
 * are; anything else (an I/O error, a dead qemu-img) becomes ImageCopyFailure.
 */
export function asCopyFailure(err: unknown): unknown {
  if (err instanceof CinderError) return err;
  return imageCopyFailure(errorMessage(err), err);
}
