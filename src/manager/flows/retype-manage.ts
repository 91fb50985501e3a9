// retype and manage_existing (manager.py retype, flows/manager/manage_existing.py).
// Unmanage is delete_volume with unmanage_only (delete-extend.ts).
import { logDropped } from '../../log.js';
import { volumeMigrationFailed } from '../../errors.js';
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

export async function retype(deps: FlowDeps, _ctx: Record<string, unknown>, args: RpcArguments<'retype'>): Promise<void> {
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
  try {
    requireDriver(deps);
    const targetHost = typeof host.host === 'string' ? host.host : null;
    const sameBackend = targetHost === null || isOurs(deps, targetHost) || backendOf(targetHost) === backendOf(vol.host);
    if (sameBackend) {
      const newType = await deps.db.volumeTypes.get(newTypeId);
      retyped = await deps.driver.retype(driverVolume(vol), newType.extra_specs ?? {});
    }
  } catch (err) {
    await rollback(errorMessage(err), err);
    throw err;
  }
  if (!retyped) {
    const reason = policy === 'never' ? 'Retype requires migration but is not allowed.' : 'Retype requires migrating the data, which this backend does not do yet.';
    await rollback(reason);
    throw volumeMigrationFailed(reason);
  }
  await deps.db.quotas.commit(reservations, projectId);
  await deps.db.quotas.commit(oldReservations, projectId);
  await deps.db.volumes.update(id, { volume_type_id: newTypeId, status: restored, ...(vol.status === 'retyping' ? { previous_status: null } : {}) });
  log.info('Retype volume completed successfully.');
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
  void deps.service.publishServiceCapabilities().catch(logDropped(deps.logger, 'the capability report after this change', 'the next periodic report carries it'));
  return id;
}
