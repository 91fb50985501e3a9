// create_snapshot, delete_snapshot and revert_to_snapshot (manager.py).
import { logDropped } from '../../log.js';
import { randomUUID } from 'node:crypto';
import type { RpcArguments } from '../rpc-arguments.js';
import {
  driverSnapshot,
  driverVolume,
  errorMessage,
  requireDriver,
  snapshotStatus,
  withLock,
  withWorker,
  type FlowDeps,
} from './common.js';
import { writeUserMessage } from './user-messages.js';
import { invalidSnapshot, isBusyError, isNotImplementedError, snapshotNotFound } from '../../errors.js';
import type { Volume, Snapshot } from '../../db/index.js';


export async function createSnapshot(deps: FlowDeps, ctx: Record<string, unknown>, args: RpcArguments<'create_snapshot'>): Promise<string | null> {
  return createSnapshotById(deps, ctx, args.snapshot.data.id);
}

export async function createSnapshotById(deps: FlowDeps, ctx: Record<string, unknown>, id: string): Promise<string | null> {
  const log = deps.logger.child({ snapshot_id: id });
  const snap = await deps.db.snapshots.find(id);
  if (!snap) throw snapshotNotFound(id);
  return withWorker(deps, { type: 'Snapshot', id, status: snap.status }, () => snapshotStatus(deps, id), async () => {
    let vol: Volume;
    try {
      requireDriver(deps);
      vol = await deps.db.volumes.get(snap.volume_id);
      const model = await deps.driver.createSnapshot(driverSnapshot(snap, vol));
      if (model) await deps.db.snapshots.update(id, model);
    } catch (err) {
      log.error({ err }, `create_snapshot failed: ${errorMessage(err)}`);
      await deps.db.snapshots.update(id, { status: 'error' });
      await writeUserMessage(deps, ctx, { actionId: '004', resourceType: 'VOLUME_SNAPSHOT', resourceUuid: id, exceptionClass: (err as Error)?.name ?? null, fallbackProjectId: snap.project_id }, 'the failed snapshot');
      throw err;
    }
    if (vol.bootable) {
      try {
        await deps.db.glanceMetadata.copyToSnapshot(id, vol.id);
      } catch (err) {
        if ((err as { className?: string }).className !== 'GlanceMetadataNotFound') {
          await deps.db.snapshots.update(id, { status: 'error' });
          throw err;
        }
      }
    }
    await deps.db.snapshots.update(id, { status: 'available', progress: '100%', encryption_key_id: vol.encryption_key_id });
    log.info('Create snapshot completed successfully');
    return id;
  });
}

export async function deleteSnapshot(deps: FlowDeps, _ctx: Record<string, unknown>, args: RpcArguments<'delete_snapshot'>): Promise<boolean | null> {
  const id = args.snapshot.data.id;
  return withLock(deps, `${id}-delete_snapshot`, true, () => deleteSnapshotLocked(deps, id, args.unmanage_only));
}

/** delete_snapshot's body; the caller holds `<id>-delete_snapshot` (or a volume lock in cascade). */
export async function deleteSnapshotLocked(deps: FlowDeps, id: string, unmanageOnly: boolean, handleQuota = true): Promise<boolean | null> {
  const log = deps.logger.child({ snapshot_id: id });
  const snap = await deps.db.snapshots.find(id);
  if (!snap) {
    log.debug('delete_snapshot: snapshot already gone');
    return null;
  }
  const vol = await deps.db.volumes.get(snap.volume_id, { readDeleted: 'yes' });
  try {
    requireDriver(deps);
    if (!unmanageOnly) await deps.driver.deleteSnapshot(driverSnapshot(snap, vol));
  } catch (err) {
    if (isBusyError(err)) {
      await deps.db.snapshots.update(id, { status: 'available' });
      return true;
    }
    log.error({ err }, `delete_snapshot failed: ${errorMessage(err)}`);
    await deps.db.snapshots.update(id, { status: 'error_deleting' });
    throw err;
  }
  let reservations: string[] | null = null;
  if (handleQuota && snap.use_quota !== false) {
    try {
      reservations = await deps.db.quotas.reserveForSnapshotDelete(snap, vol.volume_type_id);
    } catch (err) {
      log.error({ err }, 'Update snapshot usages failed.');
    }
  }
  await deps.db.glanceMetadata.deleteBySnapshot(id);
  await deps.db.snapshots.destroy(id);
  if (reservations) await deps.db.quotas.commit(reservations, snap.project_id);
  log.info(unmanageOnly ? 'Unmanage snapshot completed successfully.' : 'Delete snapshot completed successfully.');
  return null;
}

export async function revertToSnapshot(deps: FlowDeps, ctx: Record<string, unknown>, args: RpcArguments<'revert_to_snapshot'>): Promise<void> {
  const { volume, snapshot } = args;
  const volId = volume.data.id;
  const snapId = snapshot.data.id;
  const log = deps.logger.child({ volume_id: volId, snapshot_id: snapId });
  const snap = await deps.db.snapshots.find(snapId);
  if (!snap) throw snapshotNotFound(snapId);
  if (snap.volume_id !== volId) throw invalidSnapshot(`snapshot ${snapId} is not of volume ${volId}`);
  let backupId: string | null = null;
  try {
    requireDriver(deps);
    const vol = await deps.db.volumes.get(volId);
    if (deps.driver.snapshotRevertUseTempSnapshot()) backupId = await createBackupSnapshot(deps, ctx, vol);
    await revert(deps, vol, snap);
  } catch (err) {
    log.error({ err }, `Volume ${volId} revert to snapshot ${snapId} failed: ${errorMessage(err)}${backupId ? `; backup snapshot ${backupId} kept` : ''}`);
    await deps.db.volumes.update(volId, { status: 'error' });
    await deps.db.snapshots.update(snapId, { status: 'available' });
    await writeUserMessage(deps, ctx, { actionId: '017', resourceType: 'VOLUME', resourceUuid: volId, exceptionClass: (err as Error)?.name ?? null, fallbackProjectId: snap.project_id }, 'the failed revert');
    throw err;
  }
  await deps.db.volumes.update(volId, { status: 'available' });
  await deps.db.snapshots.update(snapId, { status: 'available' });
  if (backupId) {
    const b = backupId;
    await withLock(deps, `${b}-delete_snapshot`, true, () => deleteSnapshotLocked(deps, b, false, false));
  }
  log.info('Volume has been reverted to snapshot.');
}

/** _create_backup_snapshot: `[revert] volume <id> backup snapshot`, use_quota false. */
async function createBackupSnapshot(deps: FlowDeps, ctx: Record<string, unknown>, vol: Volume): Promise<string> {
  const created = await deps.db.snapshots.create({
    id: randomUUID(),
    created_at: deps.db.now(),
    updated_at: null,
    deleted_at: null,
    deleted: false,
    use_quota: false,
    user_id: vol.user_id,
    project_id: vol.project_id,
    volume_id: vol.id,
    cgsnapshot_id: null,
    group_snapshot_id: null,
    status: 'creating',
    progress: null,
    volume_size: vol.size,
    scheduled_at: null,
    display_name: `[revert] volume ${vol.id} backup snapshot`,
    display_description: 'This is only used for backup when reverting. If the reverting process failed, you can restore you data by creating new volume with this snapshot.',
    encryption_key_id: vol.encryption_key_id,
    volume_type_id: vol.volume_type_id,
    provider_location: null,
    provider_id: null,
    provider_auth: null,
  });
  await createSnapshotById(deps, ctx, created.id);
  return created.id;
}

/** _revert_to_snapshot: the driver's own revert, else the generic copy through a temp volume. */
async function revert(deps: FlowDeps, vol: Volume, snap: Snapshot): Promise<void> {
  const dv = driverVolume(vol);
  const ds = driverSnapshot(snap, vol);
  try {
    await deps.driver.revertToSnapshot(dv, ds);
    return;
  } catch (err) {
    if (!isNotImplementedError(err)) throw err;
  }
  const tempId = randomUUID();
  const temp = { ...dv, id: tempId, name: `volume-${tempId}`, size: ds.volumeSize, providerLocation: null, providerAuth: null };
  await deps.driver.createVolumeFromSnapshot(temp, ds);
  try {
    await deps.driver.copyData(deps.driver.localPath(temp), deps.driver.localPath(dv), ds.volumeSize * 1024 ** 3);
  } finally {
    await deps.driver
      .deleteVolume(temp)
      .catch(logDropped(deps.logger, `removing the revert's temporary volume ${temp.name}`, `it is left on the backend: remove ${deps.driver.localPath(temp)} by hand`, 'error'));
  }
}
