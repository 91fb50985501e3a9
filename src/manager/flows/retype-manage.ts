// retype and manage_existing (manager.py retype, flows/manager/manage_existing.py).
// Unmanage is delete_volume with unmanage_only (delete-extend.ts).
import { logDropped } from '../../log.js';
import { invalidVolume, volumeMigrationFailed } from '../../errors.js';
import { migrateVolumeRow } from './migrate-volume.js';
import type { RpcArguments } from '../rpc-arguments.js';
import {
  backendOf,
  driverVolume,
  errorMessage,
  getVolume,
  isOurs,
  requireDriver,
  type FlowDeps,
} from './common.js';

export async function retype(deps: FlowDeps, ctx: Record<string, unknown>, args: RpcArguments<'retype'>): Promise<void> {
  const { volume, new_type_id: newTypeId, host, migration_policy: policy, reservations, old_reservations: oldReservations } = args;
  const id = volume.data.id;
  const log = deps.logger.child({ volume_id: id });
  const vol = await getVolume(deps, id);
  const projectId = vol.project_id;
  const restored = vol.status === 'retyping' ? (vol.previous_status ?? 'available') : (vol.status ?? 'available');
  const rollback = async (why: string, err?: unknown) => {
    log.error({ err }, `Retype of volume ${id} failed: ${why}`);
    const expire = 'the reservations expire by themselves after [DEFAULT] reservation_expire';
    await deps.db.quotas.rollback(reservations, projectId).catch(logDropped(deps.logger, 'quota rollback of the new type', expire));
    await deps.db.quotas.rollback(oldReservations, projectId).catch(logDropped(deps.logger, 'quota rollback of the old type', expire));
    await deps.db.volumes.update(id, { status: restored });
  };
  let retyped = false;
  let newSpecs: Record<string, string | null> = {};
  try {
    requireDriver(deps);
    newSpecs = (await deps.db.volumeTypes.get(newTypeId)).extra_specs ?? {};
    const sameBackend = isOurs(deps, host.host) || backendOf(host.host) === backendOf(vol.host);
    if (sameBackend) retyped = await deps.driver.retype(driverVolume(vol), newSpecs);
  } catch (err) {
    await rollback(errorMessage(err), err);
    throw err;
  }
  if (retyped) {
    await deps.db.volumes.update(id, { volume_type_id: newTypeId, host: host.host, cluster_name: host.cluster_name, status: restored, ...(vol.status === 'retyping' ? { previous_status: null } : {}) });
  } else {
    // The type needs another backend (or the driver said no): move the volume, if allowed.
    if (policy === 'never') {
      const reason = 'Retype requires migration but is not allowed.';
      await rollback(reason);
      throw volumeMigrationFailed(reason);
    }
    if ((await deps.db.snapshots.listByVolume(id)).length > 0) {
      const reason = 'Volume must not have snapshots.';
      await rollback(reason);
      throw invalidVolume(reason);
    }
    if (vol.replication_status !== null && vol.replication_status !== 'disabled' && vol.replication_status !== 'not-capable') {
      const reason = 'Volume must not be replicated.';
      await rollback(reason);
      throw invalidVolume(reason);
    }
    await deps.db.volumes.update(id, { migration_status: 'starting' });
    const oldSpecs = vol.volume_type_id ? ((await deps.db.volumeTypes.get(vol.volume_type_id)).extra_specs ?? {}) : {};
    try {
      await migrateVolumeRow(deps, ctx, { ...vol, migration_status: 'starting' }, host, {
        forceHostCopy: false,
        newTypeId,
        driverMigrationAllowed: onlyPlacementDiffers(oldSpecs, newSpecs),
      });
    } catch (err) {
      await rollback(errorMessage(err), err);
      throw err;
    }
  }
  await deps.db.quotas.commit(oldReservations, projectId);
  await deps.db.quotas.commit(reservations, projectId);
  log.info('Retype volume completed successfully.');
  void deps.service.publishServiceCapabilities().catch(logDropped(deps.logger, 'the capability report after this change', 'the next periodic report carries it'));
}

/**
 * _can_use_driver_migration on the extra specs: a driver may move the volume itself only when the
 * types differ in nothing but where the volume lives (backend name, availability zones). QoS and
 * encryption specs are not compared: cinderblock's backends have neither.
 */
export function onlyPlacementDiffers(oldSpecs: Record<string, string | null>, newSpecs: Record<string, string | null>): boolean {
  const placement = new Set(['volume_backend_name', 'RESKEY:availability_zones']);
  const keys = new Set([...Object.keys(oldSpecs), ...Object.keys(newSpecs)]);
  return [...keys].every((k) => placement.has(k) || oldSpecs[k] === newSpecs[k]);
}

export async function manageExisting(deps: FlowDeps, _ctx: Record<string, unknown>, args: RpcArguments<'manage_existing'>): Promise<string> {
  const { volume, ref } = args;
  const id = volume.data.id;
  const log = deps.logger.child({ volume_id: id });
  const vol = await getVolume(deps, id);
  let size: number;
  try {
    requireDriver(deps);
    size = await deps.driver.manageExistingGetSize(ref);
  } catch (err) {
    log.error({ err }, `manage_existing: ${errorMessage(err)}`);
    await deps.db.volumes.update(id, { status: 'error_managing' });
    throw err;
  }
  let reservations: string[] = [];
  if (vol.use_quota !== false) {
    const deltas = await deps.db.quotas.addVolumeTypeOpts({ volumes: 1, gigabytes: size }, vol.volume_type_id);
    try {
      reservations = await deps.db.quotas.reserve(vol.project_id, deltas);
    } catch (err) {
      await deps.db.volumes.update(id, { status: 'error_managing' });
      throw err;
    }
  }
  try {
    const model = await deps.driver.manageExisting({ ...driverVolume(vol), size }, ref);
    await deps.db.volumes.update(id, { ...(model ?? {}), size });
  } catch (err) {
    log.error({ err }, `manage_existing failed: ${errorMessage(err)}`);
    await deps.db.quotas.rollback(reservations, vol.project_id).catch(logDropped(deps.logger, 'quota rollback', 'the reservations expire by themselves after [DEFAULT] reservation_expire'));
    await deps.db.volumes.update(id, { status: 'error_managing' });
    throw err;
  }
  await deps.db.quotas.commit(reservations, vol.project_id);
  await deps.db.volumes.update(id, {
    status: 'available',
    launched_at: deps.db.now(),
    shared_targets: deps.exports.sharedTargets,
    service_uuid: deps.service.serviceRecord?.uuid ?? null,
  });
  log.info('Manage existing volume completed successfully.');
  return id;
}
