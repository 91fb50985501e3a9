// The volume service's part in cinder-backup's work (manager.py get_backup_device,
// initialize_connection_snapshot, terminate_connection_snapshot, remove_export_snapshot, and
// the default driver's get_backup_device in volume/driver.py). cinder-backup attaches what
// get_backup_device names through the ordinary initialize_connection, reads it, and deletes the
// temporary volume or snapshot made here with the ordinary delete casts once it is done.
import { logDropped } from '../../log.js';
import type { Snapshot, Volume } from '../../db/index.js';
import { CinderError, invalidInput, notImplementedError, snapshotNotFound, volumeBackendApiException } from '../../errors.js';
import type { VersionedObject } from '../../rpc/ovo.js';
import { backupDeviceInfo } from '../row-objects.js';
import type { RpcArguments } from '../rpc-arguments.js';
import { driverSnapshot, driverVolume, errorMessage, getVolume, requireDriver, type FlowDeps } from './common.js';

type Ctx = Record<string, unknown>;

const ctxString = (ctx: Ctx, key: string): string | null => (typeof ctx[key] === 'string' ? (ctx[key] as string) : null);

/**
 * _create_temp_volume + _create_temp_cloned_volume / _create_temp_volume_from_snapshot: a volume
 * row `backup-vol-<source id>` on the source's host, outside quota (use_quota False, admin
 * metadata temporary=True), filled by the driver, then in `status`. A driver failure destroys
 * the row and is raised.
 */
async function createTemporaryVolume(deps: FlowDeps, ctx: Ctx, source: Volume, fill: (temp: Volume) => Promise<unknown>, status: string): Promise<Volume> {
  const temp = await deps.db.volumes.create(
    {
      size: source.size,
      display_name: `backup-vol-${source.id}`,
      host: source.host,
      cluster_name: source.cluster_name,
      user_id: ctxString(ctx, 'user_id'),
      project_id: ctxString(ctx, 'project_id'),
      status: 'creating',
      attach_status: 'detached',
      availability_zone: source.availability_zone,
      volume_type_id: source.volume_type_id,
      use_quota: false,
    },
    { temporary: 'True' },
  );
  try {
    const model = await fill(temp);
    if (model && typeof model === 'object') await deps.db.volumes.update(temp.id, model);
  } catch (err) {
    await deps.db.volumes.destroy(temp.id).catch((e: unknown) => deps.logger.error({ err: e, volume_id: temp.id }, 'could not destroy the row of a failed temporary backup volume'));
    throw err;
  }
  await deps.db.volumes.update(temp.id, { status });
  return deps.db.volumes.get(temp.id);
}

/** _create_temp_snapshot: `backup-snap-<volume id>`, outside quota, available once the driver made it. */
async function createTemporarySnapshot(deps: FlowDeps, ctx: Ctx, volume: Volume): Promise<Snapshot> {
  const snap = await deps.db.snapshots.create({
    volume_id: volume.id,
    cgsnapshot_id: null,
    user_id: ctxString(ctx, 'user_id'),
    project_id: ctxString(ctx, 'project_id'),
    status: 'creating',
    progress: '0%',
    volume_size: volume.size,
    display_name: `backup-snap-${volume.id}`,
    display_description: null,
    volume_type_id: volume.volume_type_id,
    encryption_key_id: volume.encryption_key_id,
    use_quota: false,
  });
  try {
    const model = await deps.driver.createSnapshot(driverSnapshot(snap, volume));
    if (model) await deps.db.snapshots.update(snap.id, model);
  } catch (err) {
    await deps.db.glanceMetadata.deleteBySnapshot(snap.id).catch(logDropped(deps.logger, `deleting the glance metadata of failed temporary snapshot ${snap.id}`, 'the rows go with the snapshot row destroyed next'));
    await deps.db.snapshots.destroy(snap.id).catch((e: unknown) => deps.logger.error({ err: e, snapshot_id: snap.id }, 'could not destroy the row of a failed temporary backup snapshot'));
    throw err;
  }
  await deps.db.snapshots.update(snap.id, { status: 'available', progress: '100%' });
  return deps.db.snapshots.get(snap.id);
}

async function getSnapshot(deps: FlowDeps, id: string): Promise<Snapshot> {
  const row = await deps.db.snapshots.find(id);
  if (!row) throw snapshotNotFound(id);
  return row;
}

/**
 * driver.get_backup_device: what cinder-backup is to read. The default (backup_use_temp_snapshot
 * False): a snapshot's backup reads a temporary volume made from it, an in-use volume's (status
 * saved in previous_status by cinder-api) a temporary clone, so the guest keeps writing to its own
 * volume; an available volume is read as it is. With backup_use_temp_snapshot: the snapshot
 * itself, or a temporary snapshot of an in-use volume.
 */
async function chooseBackupDevice(deps: FlowDeps, ctx: Ctx, backup: VersionedObject, ids: { volumeId: string; snapshotId: string | null }): Promise<{ volume: Volume } | { snapshot: Snapshot }> {
  const volume = await getVolume(deps, ids.volumeId);
  const snapshot = ids.snapshotId ? await getSnapshot(deps, ids.snapshotId) : null;
  const inUse = volume.previous_status === 'in-use';
  if (deps.backupUseTempSnapshot) {
    if (snapshot) return { snapshot };
    if (!inUse) return { volume };
    const temp = await createTemporarySnapshot(deps, ctx, volume);
    await deps.db.backups.setTemporaryResource(backup.data.id as string, { temp_snapshot_id: temp.id });
    backup.set('temp_snapshot_id', temp.id);
    return { snapshot: temp };
  }
  if (!snapshot && !inUse) return { volume };
  const temp = snapshot
    ? await createTemporaryVolume(deps, ctx, volume, (t) => deps.driver.createVolumeFromSnapshot(driverVolume(t), driverSnapshot(snapshot, volume)), 'backing-up')
    : await createTemporaryVolume(deps, ctx, volume, (t) => deps.driver.createClonedVolume(driverVolume(t), { id: volume.id, name: driverVolume(volume).name, size: volume.size ?? 0 }), 'backing-up');
  await deps.db.backups.setTemporaryResource(backup.data.id as string, { temp_volume_id: temp.id });
  backup.set('temp_volume_id', temp.id);
  return { volume: temp };
}

/**
 * get_backup_device: cinder 21.3's backup service casts it (3.17, async_call) and waits for
 * continue_backup, cast back to the backup's host with the BackupDeviceInfo. As in cinder, a
 * failure here is not caught: the backup stays `creating` and the error is in this log.
 */
export async function getBackupDevice(deps: FlowDeps, ctx: Ctx, args: RpcArguments<'get_backup_device'>): Promise<unknown> {
  const { backup } = args;
  const log = deps.logger.child({ backup_id: backup.data.id, volume_id: backup.data.volume_id });
  const device = await chooseBackupDevice(deps, ctx, backup, { volumeId: backup.data.volume_id, snapshotId: backup.data.snapshot_id ?? null });
  const secureEnabled = deps.driver.secureFileOperationsEnabled();
  const info = backupDeviceInfo(device, secureEnabled);
  if (args.async_call && deps.backup) {
    log.info({ device: 'volume' in device ? device.volume.id : device.snapshot.id }, `Calling backup continue_backup for: ${String(backup.data.id)}`);
    await deps.backup.continueBackup(ctx, backup, info);
    return null;
  }
  // an older caller (or a test without cinder-backup's RPC) takes the answer itself
  if (args.want_objects) return info;
  const d = 'volume' in device ? info.data.volume : info.data.snapshot;
  return { backup_device: d, secure_enabled: secureEnabled, is_snapshot: 'snapshot' in device };
}

/**
 * initialize_connection_snapshot: the connector is validated as for a volume; then the driver's
 * create_export_snapshot. cinderblock's drivers export volumes only, as cinder's LVM driver,
 * whose create_export_snapshot is VolumeDriver's NotImplementedError (raised as it is, not as a
 * VolumeBackendAPIException): with backup_use_temp_snapshot the backup of a snapshot fails on
 * both, which is why that option stays off for LVM.
 */
export async function initializeConnectionSnapshot(deps: FlowDeps, _ctx: Ctx, args: RpcArguments<'initialize_connection_snapshot'>): Promise<never> {
  requireDriver(deps);
  const snapshot = await getSnapshot(deps, args.snapshot_id);
  try {
    deps.exports.validateConnector(args.connector);
  } catch (err) {
    if (err instanceof CinderError && err.className === 'InvalidConnectorException') throw invalidInput(err.message);
    if (err instanceof CinderError && err.className === 'InvalidInput') throw err;
    throw volumeBackendApiException(`Validate snapshot connection failed (error: ${errorMessage(err)}).`, err);
  }
  deps.logger.debug({ snapshot_id: snapshot.id }, `Snapshot ${snapshot.id}: creating export.`);
  throw notImplementedError('');
}

/** terminate_connection_snapshot: VolumeDriver's does nothing, so nothing fails. */
export async function terminateConnectionSnapshot(deps: FlowDeps, _ctx: Ctx, args: RpcArguments<'terminate_connection_snapshot'>): Promise<null> {
  requireDriver(deps);
  const snapshot = await getSnapshot(deps, args.snapshot_id);
  deps.logger.info({ snapshot_id: snapshot.id }, 'Terminate snapshot connection completed successfully.');
  return null;
}

/** remove_export_snapshot: VolumeDriver's raises NotImplementedError, which the manager reports as below. */
export async function removeExportSnapshot(deps: FlowDeps, _ctx: Ctx, args: RpcArguments<'remove_export_snapshot'>): Promise<never> {
  requireDriver(deps);
  const snapshot = await getSnapshot(deps, args.snapshot_id);
  deps.logger.error({ snapshot_id: snapshot.id }, 'Remove snapshot export failed: snapshots are never exported by this backend.');
  throw volumeBackendApiException('Remove snapshot export failed.');
}
