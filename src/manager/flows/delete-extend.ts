// delete_volume (unmanage_only, cascade) and extend_volume, as manager.py does them.
import { logDropped } from '../../log.js';
import { withVolumeConnections } from './connection-locks.js';
import { invalid, invalidInput, invalidSnapshot, invalidVolume, isBusyError, volumeAttached } from '../../errors.js';
import type { RpcArguments } from '../rpc-arguments.js';
import {
  driverVolume,
  errorMessage,
  isOurs,
  requireDriver,
  volumeStatus,
  withLock,
  withWorker,
  type FlowDeps,
} from './common.js';
import { writeUserMessage } from './user-messages.js';
import { deleteSnapshotLocked } from './snapshots.js';
import { notifyVolumeExtended } from './compute-events.js';
import { MessageAction, MessageDetail, MessageResource } from '../../db/messages.js';


export async function deleteVolume(deps: FlowDeps, _ctx: Record<string, unknown>, args: RpcArguments<'delete_volume'>): Promise<boolean | null> {
  return deleteVolumeById(deps, args.volume.data.id, { unmanageOnly: args.unmanage_only, cascade: args.cascade });
}

export async function deleteVolumeById(deps: FlowDeps, id: string, o: { unmanageOnly: boolean; cascade: boolean }): Promise<boolean | null> {
  const log = deps.logger.child({ volume_id: id });
  return withLock(deps, `${id}-delete_volume`, true, async () => {
    const row = await deps.db.volumes.find(id);
    if (!row) {
      log.debug('delete_volume: volume already gone');
      return null;
    }
    return withWorker(deps, { type: 'Volume', id, status: row.status }, () => volumeStatus(deps, id), async () => {
      if (row.attach_status === 'attached') {
        throw volumeAttached(id);
      }
      if (!isOurs(deps, row.host)) throw invalidVolume('Volume is not local to this node.');
      if (o.unmanageOnly && row.encryption_key_id) throw invalid('Unmanaging encrypted volumes is not supported.');
      if (o.unmanageOnly && o.cascade) throw invalid('Unmanage and cascade delete options are mutually exclusive.');
      const migrating = row.migration_status !== null && row.migration_status !== 'error' && row.migration_status !== 'success';
      // Unread admin metadata would make a temporary volume's delete touch quota: fail instead.
      const admin = await deps.db.volumes.adminMetadataGet(id);
      const doQuota = !(row.use_quota === false || migrating || admin.temporary === 'True');
      const dv = driverVolume(row);
      try {
        requireDriver(deps);
        await withVolumeConnections(deps, id, () => deps.exports.removeExport(dv));
        if (o.unmanageOnly) {
          await deps.driver.unmanage(dv);
        } else {
          if (o.cascade) {
            for (const s of await deps.db.snapshots.listByVolume(id)) {
              if (s.status !== 'deleting') {
                await deps.db.volumes.update(id, { status: 'error_deleting' });
                throw invalidSnapshot(`Snapshot ${s.id} was found in state ${s.status} rather than 'deleting' during cascade delete.`);
              }
              await withLock(deps, `${s.id}-delete_snapshot`, true, () => deleteSnapshotLocked(deps, s.id, false));
            }
          }
          await deps.driver.deleteVolume(dv);
        }
      } catch (err) {
        if (isBusyError(err)) {
          log.error(`Unable to delete busy volume.`);
          await deps.db.volumes.update(id, { status: 'available' });
          return true;
        }
        log.error({ err }, `Unable to delete volume: ${errorMessage(err)}`);
        await deps.db.volumes.update(id, { status: o.unmanageOnly ? 'error_unmanaging' : 'error_deleting' });
        throw err;
      }
      let reservations: string[] | null = null;
      if (doQuota && row.status !== 'error_managing_deleting') {
        try {
          reservations = await deps.db.quotas.reserveForVolumeDelete(row);
        } catch (err) {
          log.error({ err }, 'Failed to update usages deleting volume.');
        }
      }
      await deps.db.volumes.destroy(id);
      if (doQuota) {
        if (reservations) await deps.db.quotas.commit(reservations, row.project_id);
        void deps.service.publishServiceCapabilities().catch(logDropped(deps.logger, 'the capability report after this change', 'the next periodic report carries it'));
      }
      log.info(o.unmanageOnly ? 'Unmanaged volume successfully.' : 'Deleted volume successfully.');
      return null;
    });
  });
}

export async function extendVolume(deps: FlowDeps, ctx: Record<string, unknown>, args: RpcArguments<'extend_volume'>): Promise<void> {
  const { volume, new_size: newSize, reservations } = args;
  const id = volume.data.id;
  const log = deps.logger.child({ volume_id: id });
  const row = await deps.db.volumes.find(id);
  if (!row) {
    log.error('extend_volume: volume not found');
    await deps.db.quotas
      .rollback(reservations, volume.data.project_id ?? null)
      .catch(logDropped(deps.logger, 'quota rollback', 'the reservations expire by themselves after [DEFAULT] reservation_expire'));
    return;
  }
  const projectId = row.project_id;
  const attachments = (await deps.db.attachments.listByVolume(id)).filter((a) => a.attach_status === 'attached' || a.attach_status === 'attaching');
  try {
    requireDriver(deps);
    if (newSize <= (row.size ?? 0)) throw invalidInput(`new size ${newSize} must be greater than the current size ${row.size}`);
    await deps.driver.extendVolume(driverVolume(row), newSize);
    if (attachments.length > 0) {
      // TargetUpdateFailed is only logged by cinder's LVM driver.
      await withVolumeConnections(deps, id, () => deps.exports.extendTarget({ ...driverVolume(row), size: newSize })).catch((err: unknown) =>
        log.warn({ err }, 'extend_target failed: initiators may not see the new size until the export is rebuilt'),
      );
    }
  } catch (err) {
    log.error({ err }, `Extend volume failed: ${errorMessage(err)}`);
    await writeUserMessage(deps, ctx, { actionId: MessageAction.EXTEND_VOLUME, resourceType: MessageResource.VOLUME, resourceUuid: id, detailId: MessageDetail.DRIVER_FAILED_EXTEND, fallbackProjectId: projectId }, 'the failed extend');
    await deps.db.volumes.update(id, { status: 'error_extending' });
    await deps.db.quotas.rollback(reservations, projectId).catch((e: unknown) => log.error({ err: e }, 'quota rollback failed'));
    return;
  }
  await deps.db.quotas.commit(reservations, projectId);
  await deps.db.volumes.update(id, { size: newSize, status: attachments.length > 0 ? 'in-use' : 'available' });
  if (attachments.length > 0) {
    // The guests see the new size only once nova tells their hypervisor. A nova that is down or
    // refuses leaves a user message, never an undone or failed extend (cinder's compute.API).
    await notifyVolumeExtended(deps, ctx, { id, projectId }, attachments.map((a) => a.instance_uuid));
  }
  log.info(`Extend volume completed successfully.`);
}
