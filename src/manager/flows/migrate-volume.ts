// Volume migration, both roles, as cinder's manager.py does it (migrate_volume,
// _migrate_volume_generic, _clean_temporary_volume, migrate_volume_completion,
// update_migrated_volume). The source runs the migration: the driver moves the volume itself
// when it can reach the destination pool (same host), else the source inserts the destination's
// row, has the destination create it (cast), waits on the database, copies the data and swaps
// the two rows so the volume keeps its id. The destination only creates, renames and deletes.
//
// The copy reads the source locally and writes the destination's volume through its path on this
// host (driver.pathInPool): two backends of one agent, or another agent's pool on the same
// machine. A destination on another machine would be attached over iSCSI with the project's
// connector; that path is not built yet and such a migration fails cleanly (temporary volume
// deleted, migration_status error).
import { randomUUID } from 'node:crypto';
import type { Volume } from '../../db/index.js';
import { isNotImplementedError, volumeMigrationFailed } from '../../errors.js';
import type { RpcArguments } from '../rpc-arguments.js';
import { volumeObjectFromRow } from '../volume-object.js';
import { backendOf, driverVolume, errorMessage, getVolume, requireDriver, volumeNameOf, type FlowDeps, type VolumePeers } from './common.js';
import { waitForMigrationTarget } from './migration-poll.js';
import { finishVolumeMigration } from './migration-swap.js';

const GiB = 1024 ** 3;

/** The destination backend as the scheduler hands it over (rpcapi migrate_volume's backend_p). */
export interface DestinationBackend {
  host: string;
  cluster_name: string | null;
  capabilities: Record<string, unknown>;
}

export interface MigrationOptions {
  forceHostCopy: boolean;
  /** The retype's new type: the migrated volume takes it. */
  newTypeId: string | null;
  /** _can_use_driver_migration(diff): false when the type change needs more than a move. */
  driverMigrationAllowed: boolean;
}

/**
 * Columns the destination's row does not take from the source (_migrate_volume_generic's skip
 * set, with _VOLUME_CLONE_SKIP_PROPERTIES); the timestamps are the new row's own.
 */
const NOT_COPIED = new Set([
  'host', 'cluster_name', 'availability_zone', 'snapshot_id', 'source_volid',
  'id', '_name_id', 'status', 'attach_status', 'migration_status', 'use_quota',
  'created_at', 'updated_at', 'deleted', 'deleted_at',
]);

export async function migrateVolume(deps: FlowDeps, ctx: Record<string, unknown>, args: RpcArguments<'migrate_volume'>): Promise<void> {
  const vol = await getVolume(deps, args.volume.data.id);
  await migrateVolumeRow(deps, ctx, vol, args.host, { forceHostCopy: args.force_host_copy, newTypeId: null, driverMigrationAllowed: true });
}

/** manager.migrate_volume on a volume already read (retype calls it too). */
export async function migrateVolumeRow(deps: FlowDeps, ctx: Record<string, unknown>, vol: Volume, dest: DestinationBackend, o: MigrationOptions): Promise<void> {
  const id = vol.id;
  const log = deps.logger.child({ volume_id: id });
  // Only used on failure: a volume in maintenance or retyping gets its status back.
  const statusUpdate = vol.status === 'retyping' || vol.status === 'maintenance' ? { status: vol.previous_status } : {};
  const failed = async (err: unknown) => {
    log.error({ err }, `Migration of volume ${id} to ${dest.host} failed: ${errorMessage(err)}`);
    await deps.db.volumes.update(id, { migration_status: 'error', ...statusUpdate });
  };
  try {
    requireDriver(deps);
  } catch (err) {
    await failed(err);
    throw err;
  }
  await deps.db.volumes.update(id, { migration_status: 'migrating' });
  let moved = false;
  if (!o.forceHostCopy && o.driverMigrationAllowed) {
    try {
      const r = await deps.driver.migrateVolume(driverVolume(vol), vol.status, { host: dest.host, locationInfo: dest.capabilities.location_info });
      moved = r.moved;
      if (moved) {
        const az = await availabilityZoneOf(deps, dest.host);
        await deps.db.volumes.update(id, {
          host: dest.host,
          cluster_name: dest.cluster_name,
          migration_status: 'success',
          availability_zone: az ?? vol.availability_zone,
          previous_status: vol.status,
          ...statusUpdate,
          ...(r.modelUpdate ?? {}),
          ...(o.newTypeId ? { volume_type_id: o.newTypeId } : {}),
        });
      }
    } catch (err) {
      // A driver without the capability is cinder's base driver returning (False, None).
      if (!isNotImplementedError(err)) {
        await failed(err);
        throw err;
      }
    }
  }
  if (!moved) {
    try {
      await migrateVolumeGeneric(deps, ctx, vol, dest, o.newTypeId);
    } catch (err) {
      await failed(err);
      throw err;
    }
  }
  log.info('Migrate volume completed successfully.');
}

function peersOf(deps: FlowDeps): VolumePeers {
  if (!deps.peers) throw volumeMigrationFailed('this service has no RPC client for the other volume services');
  return deps.peers;
}

async function availabilityZoneOf(deps: FlowDeps, host: string): Promise<string | null> {
  const svc = await deps.db.services.getByHostAndBinary(backendOf(host)!);
  return svc?.availability_zone ?? null;
}

/** _migrate_volume_generic. */
async function migrateVolumeGeneric(deps: FlowDeps, ctx: Record<string, unknown>, vol: Volume, dest: DestinationBackend, newTypeId: string | null): Promise<void> {
  const peers = peersOf(deps);
  // cinder hands an attached volume to nova (update_server_volume), which copies and calls
  // migrate_volume_completion later. Refused before anything is created, so nothing is left.
  if ((await deps.db.attachments.listByVolume(vol.id)).length > 0) {
    throw volumeMigrationFailed('migrating an attached volume needs nova to swap it (update_server_volume), which cinderblock does not do yet');
  }
  const copied = Object.fromEntries(Object.entries(vol).filter(([k]) => !NOT_COPIED.has(k)));
  const target = await deps.db.volumes.create({
    ...copied,
    id: randomUUID(),
    host: dest.host,
    availability_zone: await availabilityZoneOf(deps, dest.host),
    cluster_name: dest.cluster_name,
    status: 'creating',
    attach_status: 'detached',
    migration_status: `target:${vol.id}`,
    use_quota: false, // the temporary volume counts against no quota
    volume_type_id: newTypeId ?? vol.volume_type_id,
  });
  const newId = target.id;
  try {
    // volume_create writes the metadata with the row
    const metadata = await deps.db.volumes.metadataGet(vol.id);
    if (Object.keys(metadata).length) await deps.db.volumes.metadataUpdate(newId, withoutNulls(metadata));
    await peers.createVolume(ctx, volumeObjectFromRow(target));
  } catch (err) {
    await deps.db.volumes.destroy(newId);
    throw err;
  }

  const outcome = await waitForMigrationTarget(async () => (await deps.db.volumes.find(newId))?.status, deps.migrationCreateVolumeTimeoutSecs ?? 300);
  if (outcome !== 'available') {
    await cleanTemporaryVolume(deps, ctx, vol.id, newId, { dbOnly: true });
    throw volumeMigrationFailed(outcome === 'error' ? 'failed to create new_volume on destination' : 'timeout creating new_volume on destination');
  }
  if (vol.snapshot_id || vol.source_volid) {
    await deps.db.volumes.update(newId, { ...(vol.snapshot_id ? { snapshot_id: vol.snapshot_id } : {}), ...(vol.source_volid ? { source_volid: vol.source_volid } : {}) });
  }
  try {
    await copyVolumeData(deps, vol, await getVolume(deps, newId), dest);
    await completeMigration(deps, ctx, vol.id, newId, false);
  } catch (err) {
    deps.logger.error({ err, volume_id: vol.id }, `Failed to copy volume ${vol.id} to ${newId}`);
    await cleanTemporaryVolume(deps, ctx, vol.id, newId, { dbOnly: false });
    throw err;
  }
}

function withoutNulls(m: Record<string, string | null>): Record<string, string> {
  return Object.fromEntries(Object.entries(m).filter((e): e is [string, string] => e[1] !== null));
}

/**
 * _copy_volume_data without the self-login: the source is read where it lies and the
 * destination written through its path on this host, with the driver's copy (the native engine,
 * skipping zero runs on a destination that reads as zeros).
 */
async function copyVolumeData(deps: FlowDeps, src: Volume, dst: Volume, dest: DestinationBackend): Promise<void> {
  const dstPath = deps.driver.pathInPool(dest.capabilities.location_info, volumeNameOf(dst));
  if (!dstPath) {
    throw volumeMigrationFailed(`the destination ${dest.host} is not on this host; copying to another host over iSCSI is not implemented yet`);
  }
  await deps.driver.copyData(deps.driver.localPath(driverVolume(src)), dstPath, (src.size ?? 0) * GiB);
}

/**
 * _clean_temporary_volume: while still migrating, the destination goes (its row only when it was
 * never created, else through the destination's delete_volume); later the source may be gone
 * already, so the destination is kept and only its migration_status cleared.
 */
async function cleanTemporaryVolume(deps: FlowDeps, ctx: Record<string, unknown>, id: string, newId: string, o: { dbOnly: boolean }): Promise<void> {
  const log = deps.logger.child({ volume_id: id });
  const src = await deps.db.volumes.find(id);
  const target = await deps.db.volumes.find(newId);
  if (!target) {
    log.info(`Couldn't find the temporary volume ${newId} in the database. There is no need to clean up this volume.`);
    return;
  }
  try {
    if (src?.migration_status === 'migrating') {
      if (o.dbOnly) await deps.db.volumes.destroy(newId);
      else await peersOf(deps).deleteVolume(ctx, volumeObjectFromRow(target));
    } else {
      await deps.db.volumes.update(newId, { migration_status: null });
      log.warn(`Failed to migrate volume. The destination volume ${newId} is not deleted since the source volume may have been deleted.`);
    }
  } catch (err) {
    log.error({ err }, `cleaning up the temporary volume ${newId} failed: ${errorMessage(err)}`);
  }
}

export async function migrateVolumeCompletion(deps: FlowDeps, ctx: Record<string, unknown>, args: RpcArguments<'migrate_volume_completion'>): Promise<string> {
  return completeMigration(deps, ctx, args.volume.data.id, args.new_volume.data.id, args.error);
}

/** migrate_volume_completion: the row swap, then the source's old data deleted by id. */
async function completeMigration(deps: FlowDeps, ctx: Record<string, unknown>, id: string, newId: string, error: boolean): Promise<string> {
  const log = deps.logger.child({ volume_id: id });
  try {
    requireDriver(deps);
  } catch (err) {
    await deps.db.volumes.update(id, { migration_status: 'error' });
    throw err;
  }
  const peers = peersOf(deps);
  const vol = await getVolume(deps, id);
  const newVol = await getVolume(deps, newId);
  const origStatus = vol.previous_status;
  if (error) {
    log.info(`migrate_volume_completion is cleaning up an error for volume ${id} (temporary volume ${newId})`);
    await peers.deleteVolume(ctx, volumeObjectFromRow(newVol));
    await deps.db.volumes.update(id, { migration_status: 'error', status: origStatus });
    return id;
  }
  await deps.db.volumes.update(id, { migration_status: 'completing' });
  try {
    await peers.updateMigratedVolume(ctx, volumeObjectFromRow({ ...vol, migration_status: 'completing' }), volumeObjectFromRow(newVol), origStatus);
  } catch (err) {
    // The destination did not answer (down, killed): nothing is swapped, the volume is still the
    // source's data, so the temporary volume is only a copy. Back to `migrating`, the caller's
    // clean-up deletes it through the destination's queue, where the delete waits for a
    // destination that is down. cinder leaves it instead, available and listed, once `completing`.
    log.error({ err }, `update_migrated_volume on the destination failed for volume ${id}; the migration is undone and temporary volume ${newId} deleted`);
    await deps.db.volumes.update(id, { migration_status: 'migrating' });
    throw err;
  }

  const src = await getVolume(deps, id);
  const dst = await getVolume(deps, newId);
  const swap = finishVolumeMigration(src, dst);
  await deps.db.volumes.update(id, swap.source);
  await deps.db.volumes.update(newId, swap.destination);
  await deps.db.volumes.update(id, { status: origStatus, previous_status: swap.source.status ?? src.status, migration_status: 'success' });
  try {
    // After the swap the temporary row has the source's host and names the old data.
    await peers.deleteVolume(ctx, volumeObjectFromRow(await getVolume(deps, newId)));
  } catch (err) {
    log.error({ err }, `Failed to request async delete of migration source vol ${id}: ${errorMessage(err)}`);
  }
  log.info('Complete-Migrate volume completed successfully.');
  return id;
}

/**
 * update_migrated_volume, on the destination: the copy takes the source's name when the volume
 * is available (cinder's LVM rule) so it keeps being found by its id; otherwise, or when the
 * rename fails, the volume is pointed at the copy through _name_id. Both rows are written.
 */
export async function updateMigratedVolume(deps: FlowDeps, _ctx: Record<string, unknown>, args: RpcArguments<'update_migrated_volume'>): Promise<void> {
  const vol = await getVolume(deps, args.volume.data.id);
  const newVol = await getVolume(deps, args.new_volume.data.id);
  let model: { _name_id: string | null; provider_location: string | null } = { _name_id: newVol._name_id ?? newVol.id, provider_location: newVol.provider_location };
  if (args.volume_status === 'available') {
    try {
      await deps.driver.renameVolume(driverVolume(newVol), volumeNameOf({ id: vol.id, _name_id: null }));
      model = { _name_id: null, provider_location: null };
    } catch (err) {
      deps.logger.error({ err, volume_id: vol.id }, `Unable to rename the backend volume for volume: ${vol.id} (${errorMessage(err)}); it keeps its name through _name_id`);
    }
  }
  // The temporary row keeps the source's old values of what changed, the volume gets the new.
  await deps.db.volumes.update(newVol.id, { _name_id: vol._name_id, provider_location: vol.provider_location });
  await deps.db.volumes.update(vol.id, model);
}
