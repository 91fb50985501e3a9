// copy_volume_to_image (manager.py): cinder-api has created the image (queued) and set the volume
// `uploading`; the volume's bytes go to Glance (image/upload-volume.ts). On failure: a user
// message COPY_VOLUME_TO_IMAGE / FAILED_TO_UPLOAD_VOLUME and the image deleted if it is still
// queued or saving. Either way the status goes back to in-use or available from the attachments
// (volume_update_status_based_on_attachment).
import { MessageAction, MessageDetail } from '../../db/index.js';
import { CinderError } from '../../errors.js';
import { glanceContext } from '../../image/image-tools.js';
import { uploadVolume } from '../../image/upload-volume.js';
import type { RpcArguments } from '../rpc-arguments.js';
import { requireImages } from './create-from-image.js';
import { driverVolume, errorMessage, getVolume, requireDriver, type FlowDeps } from './common.js';
import { writeUserMessage } from './user-messages.js';

export async function copyVolumeToImage(deps: FlowDeps, ctx: Record<string, unknown>, args: RpcArguments<'copy_volume_to_image'>): Promise<void> {
  const { volume_id: volumeId, image_meta: imageMeta } = args;
  const log = deps.logger.child({ volume_id: volumeId, image_id: imageMeta.id });
  const gctx = glanceContext(ctx);
  let glanceReached = false;
  try {
    const row = await getVolume(deps, volumeId);
    requireDriver(deps);
    const tools = requireImages(deps);
    tools.glance();
    glanceReached = true;
    const dv = driverVolume(row);
    const baseImageRef = await deps.db.glanceMetadata
      .getForVolume(volumeId)
      .then((rows) => rows.find((r) => r.key === 'image_id')?.value ?? null)
      .catch(() => null);
    const storeId = row.volume_type_id ? ((await deps.db.volumeTypes.extraSpecs(row.volume_type_id).catch(() => ({}) as Record<string, string | null>))['image_service:store_id'] ?? null) : null;
    const started = Date.now();
    const result = await uploadVolume(tools, gctx, {
      imageId: imageMeta.id,
      diskFormat: imageMeta.disk_format,
      containerFormat: imageMeta.container_format ?? null,
      volumePath: deps.driver.localPath(dv),
      volumeSizeGb: row.size ?? 0,
      extras: { storeId, baseImageRef },
    });
    log.info(
      `Uploaded volume ${volumeId} to image ${imageMeta.id} (${imageMeta.disk_format}) by ${result.path === 'stream' ? 'streaming' : 'qemu-img convert'}: ` +
        `${result.bytes} bytes in ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
  } catch (err) {
    log.error({ err }, `Upload volume to image encountered an error (image-id: ${imageMeta.id}): ${errorMessage(err)}`);
    await writeMessage(deps, ctx, volumeId, err);
    if (glanceReached) await deleteUnfinishedImage(deps, gctx, imageMeta.id);
    throw err;
  } finally {
    await deps.db.volumes.updateStatusBasedOnAttachment(volumeId);
  }
  log.info('Copy volume to image completed successfully.');
}

async function deleteUnfinishedImage(deps: FlowDeps, gctx: ReturnType<typeof glanceContext>, imageId: string): Promise<void> {
  try {
    if (await deps.images!.glance().deleteIfUnfinished(gctx, imageId)) deps.logger.warn(`Deleted image ${imageId}, left queued or saving by the failed upload.`);
  } catch (err) {
    deps.logger.warn({ err }, `Image delete encountered an error: ${errorMessage(err)}`);
  }
}

async function writeMessage(deps: FlowDeps, ctx: Record<string, unknown>, volumeId: string, err: unknown): Promise<void> {
  await writeUserMessage(
    deps,
    ctx,
    { actionId: MessageAction.COPY_VOLUME_TO_IMAGE, resourceUuid: volumeId, detailId: MessageDetail.FAILED_TO_UPLOAD_VOLUME, exceptionClass: err instanceof CinderError ? err.className : null },
    'the failed upload',
  );
}
