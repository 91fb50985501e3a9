// Telling nova about a volume change, as cinder's compute.API extend_volume / reimage_volume do:
// send the events, and when nova did not take them, record the user message cinder records. The
// operation that changed the volume has succeeded already and stays so: nothing here throws.
import { MessageAction, MessageDetail, MessageResource } from '../../db/messages.js';
import type { FlowDeps } from './common.js';
import { writeUserMessage } from './user-messages.js';

async function recordFailure(deps: FlowDeps, ctx: Record<string, unknown>, volume: { id: string; projectId: string | null }, actionId: string, detailId: string): Promise<void> {
  await writeUserMessage(deps, ctx, { actionId, resourceType: MessageResource.VOLUME, resourceUuid: volume.id, detailId, fallbackProjectId: volume.projectId }, "nova's failed notification");
}

async function send(deps: FlowDeps, what: 'volumeExtended' | 'volumeReimaged', ctx: Record<string, unknown>, serverIds: ReadonlyArray<string | null>, volumeId: string): Promise<boolean> {
  if (!deps.compute) {
    deps.logger.debug({ volume_id: volumeId }, `no compute service configured: nova is not told (${what})`);
    return true;
  }
  try {
    return await deps.compute[what](ctx, serverIds, volumeId);
  } catch (err) {
    deps.logger.error({ err, volume_id: volumeId }, 'Failed to notify nova on events.');
    return false;
  }
}

/** After an in-use extend: volume-extended for each attached instance; EXTEND_VOLUME / NOTIFY_COMPUTE_SERVICE_FAILED when nova did not take it. */
export async function notifyVolumeExtended(
  deps: FlowDeps,
  ctx: Record<string, unknown>,
  volume: { id: string; projectId: string | null },
  serverIds: ReadonlyArray<string | null>,
): Promise<boolean> {
  const ok = await send(deps, 'volumeExtended', ctx, serverIds, volume.id);
  if (!ok) await recordFailure(deps, ctx, volume, MessageAction.EXTEND_VOLUME, MessageDetail.NOTIFY_COMPUTE_SERVICE_FAILED);
  return ok;
}

/** After a reimage of a reserved volume: volume-reimaged for each instance; REIMAGE_VOLUME / REIMAGE_VOLUME_FAILED when nova did not take it. */
export async function notifyVolumeReimaged(
  deps: FlowDeps,
  ctx: Record<string, unknown>,
  volume: { id: string; projectId: string | null },
  serverIds: ReadonlyArray<string | null>,
): Promise<boolean> {
  const ok = await send(deps, 'volumeReimaged', ctx, serverIds, volume.id);
  if (!ok) await recordFailure(deps, ctx, volume, MessageAction.REIMAGE_VOLUME, MessageDetail.REIMAGE_VOLUME_FAILED);
  return ok;
}
