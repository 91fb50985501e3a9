// reimage (manager.py reimage, API 3.68): cinder-api set the volume `downloading` with
// previous_status its old status; the image is written over the volume (fetch_to_raw, without
// the signature check), the volume's glance metadata replaced, and the status put back. A volume
// nova reserved for a rebuild gets nova's `volume-reimaged` event. On failure the volume is
// `error` (previous_status `downloading`), with a user message when conversion was not allowed;
// nova is not told of a failure, as cinder does not tell it.
import { MessageAction, MessageDetail } from '../../db/index.js';
import { CinderError } from '../../errors.js';
import { fetchToVolume } from '../../image/fetch-to-volume.js';
import { volumeImageMetadata } from '../../image/image-meta.js';
import { glanceContext } from '../../image/image-tools.js';
import type { RpcArguments } from '../rpc-arguments.js';
import { asCopyFailure, requireImages } from './create-from-image.js';
import { driverVolume, errorMessage, getVolume, requireDriver, type FlowDeps } from './common.js';
import { writeUserMessage } from './user-messages.js';
import { notifyVolumeReimaged } from './compute-events.js';

export async function reimage(deps: FlowDeps, ctx: Record<string, unknown>, args: RpcArguments<'reimage'>): Promise<void> {
  const volumeId = args.volume.data.id;
  const imageId = args.image_meta.id;
  const log = deps.logger.child({ volume_id: volumeId, image_id: imageId });
  try {
    const row = await getVolume(deps, volumeId);
    requireDriver(deps);
    const tools = requireImages(deps);
    const gctx = glanceContext(ctx);
    const image = await tools.glance().show(gctx, imageId);
    const dv = driverVolume(row);
    // the volume holds the old image: every byte is written, zeros included
    const result = await fetchToVolume(tools, gctx, image, { path: deps.driver.localPath(dv), sizeGb: row.size ?? 0, readsZeros: false }).catch((err: unknown) => {
      throw asCopyFailure(err);
    });
    // _refresh_volume_glance_meta
    await deps.db.volumes.update(volumeId, { bootable: true });
    await deps.db.glanceMetadata.deleteByVolume(volumeId);
    await deps.db.glanceMetadata.bulkCreate(volumeId, volumeImageMetadata(image));
    const status = row.previous_status ?? 'available';
    await deps.db.volumes.update(volumeId, { status });
    log.info(`Re-imaged ${imageId} to volume ${volumeId} successfully (${result.bytes} bytes, ${result.path}).`);
    if (status === 'reserved') await tellNova(deps, ctx, volumeId);
  } catch (err) {
    log.error({ err }, `Failed to re-image volume ${volumeId} with image ${imageId}: ${errorMessage(err)}`);
    const current = await deps.db.volumes.find(volumeId);
    await deps.db.volumes.update(volumeId, { previous_status: current?.status ?? null, status: 'error' });
    if (err instanceof CinderError && err.className === 'ImageConversionNotAllowed') await writeMessage(deps, ctx, volumeId);
    throw err;
  }
}

/** compute.API().reimage_volume: volume-reimaged to each instance (the rebuild waits for it). */
async function tellNova(deps: FlowDeps, ctx: Record<string, unknown>, volumeId: string): Promise<void> {
  const attachments = await deps.db.attachments.listByVolume(volumeId);
  const volume = await deps.db.volumes.find(volumeId);
  await notifyVolumeReimaged(deps, ctx, { id: volumeId, projectId: volume?.project_id ?? null }, attachments.map((a) => a.instance_uuid));
}

async function writeMessage(deps: FlowDeps, ctx: Record<string, unknown>, volumeId: string): Promise<void> {
  await writeUserMessage(deps, ctx, { actionId: MessageAction.REIMAGE_VOLUME, resourceUuid: volumeId, detailId: MessageDetail.IMAGE_FORMAT_UNACCEPTABLE }, 'the failed reimage');
}
