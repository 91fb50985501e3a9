// create_volume with request_spec.image_id (flows/manager/create_volume.py _create_from_image and
// _create_from_image_cache_or_download): the image's record is checked and, when it needs
// converting, downloaded and inspected before the volume exists; then the driver creates the
// volume, its status goes `downloading`, the image is written onto it, and it becomes bootable
// with volume_glance_metadata rows as cinder writes them. The caller (create-volume.ts) sets
// `available` or hands the failure to its reschedule/error handling.
import type { ModelUpdate } from '../../../drivers/driver.js';
import type { Volume } from '../../db/index.js';
import { MessageAction, MessageDetail } from '../../db/index.js';
import { CinderError, imageCopyFailure, imageSignatureVerificationException, invalid, metadataCopyFailure } from '../../errors.js';
import { prepareImage, writeImage } from '../../image/fetch-to-volume.js';
import { volumeImageMetadata, type ImageMeta } from '../../image/image-meta.js';
import { glanceContext, type ImageTools } from '../../image/image-tools.js';
import { driverVolume, errorMessage, type FlowDeps } from './common.js';
import { writeUserMessage } from './user-messages.js';

const SIGNATURE_PROPERTIES = ['img_signature', 'img_signature_hash_method', 'img_signature_key_type', 'img_signature_certificate_uuid'];

export function requireImages(deps: FlowDeps): ImageTools {
  if (!deps.images) throw invalid('the image paths are not configured on this backend');
  return deps.images;
}

export async function createFromImage(deps: FlowDeps, ctx: Record<string, unknown>, row: Volume, imageId: string): Promise<ModelUpdate | null> {
  const tools = requireImages(deps);
  const gctx = glanceContext(ctx);
  const log = deps.logger.child({ volume_id: row.id, image_id: imageId });
  const size = row.size ?? 0;
  try {
    const image = await tools.glance().show(gctx, imageId);
    checkSignatureProperties(tools, image);
    const prepared = await prepareImage(tools, gctx, image, size);
    try {
      const dv = driverVolume(row);
      const model = await deps.driver.createVolume(dv);
      await deps.db.volumes.update(row.id, { ...(model ?? {}), status: 'downloading' });
      const started = Date.now();
      const result = await writeImage(tools, gctx, image, prepared, {
        path: deps.driver.localPath(dv),
        sizeGb: size,
        readsZeros: deps.driver.newVolumeReadsZeros(),
      });
      const secs = (Date.now() - started) / 1000;
      log.info(
        `Downloaded image ${imageId} (${image.disk_format}) onto volume ${row.id} by ${result.path === 'stream' ? 'streaming' : 'qemu-img convert'}: ` +
          `${result.bytes} bytes in ${secs.toFixed(1)} s${result.written !== undefined ? `, ${result.written} written (zero runs skipped)` : ''}`,
      );
      await recordGlanceMetadata(deps, tools, row.id, image);
      return model;
    } finally {
      if (prepared.kind === 'file') await prepared.dispose();
    }
  } catch (err) {
    await userMessage(deps, ctx, row.id, err);
    throw asCopyFailure(err);
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
 * signature_verified (always written when verification is enabled: False for an unsigned image),
 * then _handle_bootable_volume_glance_meta: bootable and the image's metadata rows.
 */
async function recordGlanceMetadata(deps: FlowDeps, tools: ImageTools, volumeId: string, image: ImageMeta): Promise<void> {
  try {
    if (tools.options.verifySignatures !== 'disabled') await deps.db.glanceMetadata.bulkCreate(volumeId, { signature_verified: false });
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
