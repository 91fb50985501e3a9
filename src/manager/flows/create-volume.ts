// create_volume (manager.py create_volume + flows/manager/create_volume.py): blank, from a
// snapshot, from a volume or from a Glance image (create-from-image.ts); status available + launched_at + shared_targets + service_uuid on
// success; on failure rescheduled through the scheduler when filter_properties.retry is present
// (OnFailureRescheduleTask), else status error.
import type { Volume } from '../../db/index.js';
import { CinderError, invalidInput } from '../../errors.js';
import { contextFromMessage } from '../../rpc/context.js';
import { formatOvoDatetime, VersionedObject } from '../../rpc/ovo.js';
import type { RpcArguments } from '../rpc-arguments.js';
import { createFromImage } from './create-from-image.js';
import {
  driverSnapshot,
  driverVolume,
  errorMessage,
  isOurs,
  requireDriver,
  volumeStatus,
  withLock,
  withWorker,
  type FlowDeps,
} from './common.js';

/** Exceptions OnFailureRescheduleTask never reschedules. */
const NO_RESCHEDULE = new Set(['VolumeNotFound', 'SnapshotNotFound', 'VolumeTypeNotFound', 'ImageCopyFailure', 'MetadataCopyFailure', 'MetadataUpdateFailure']);

export async function createVolume(deps: FlowDeps, ctx: Record<string, unknown>, args: RpcArguments<'create_volume'>): Promise<void> {
  const { volume, request_spec: requestSpec, filter_properties: filterProperties, allow_reschedule: allowReschedule } = args;
  const id = volume.data.id;
  const log = deps.logger.child({ volume_id: id });

  const row = await deps.db.volumes.find(id);
  if (!row) {
    log.error(`create_volume: volume ${id} is not in the database (deleted meanwhile?); nothing to do`);
    return;
  }
  if (row.status !== 'creating') {
    // cinder-api casts create_volume only for a volume it has just set `creating`. Anything else is
    // a stale or redelivered request (the broker redelivers a cast whose ack died with a crashed
    // agent, after init_host has already set the volume to error): acting on it would rebuild a
    // volume the operator may be deleting.
    log.warn(`create_volume for volume ${id} in status ${String(row.status)}, not creating: ignored as a stale or redelivered request`);
    return;
  }
  await withWorker(deps, { type: 'Volume', id, status: row.status }, () => volumeStatus(deps, id), async () => {
    try {
      await buildVolume(deps, ctx, row, requestSpec?.data.image_id ?? null);
    } catch (err) {
      log.error({ err }, `create_volume of ${id} failed: ${errorMessage(err)}`);
      const className = err instanceof CinderError ? err.className : (err as Error | null)?.name;
      const retry = filterProperties.retry;
      if (allowReschedule && retry && typeof retry === 'object' && !NO_RESCHEDULE.has(className ?? '')) {
        await reschedule(deps, ctx, volume, requestSpec, filterProperties, err, (await deps.db.volumes.find(id)) ?? row);
      } else {
        await deps.db.volumes.update(id, { status: 'error' });
      }
    }
  });
}

/**
 * manager.create_volume called in-process with allow_reschedule False, as _clone_image_volume
 * does for an image-volume cache entry: the volume ends `available`, or `error` with the failure
 * raised to the caller.
 */
export async function createVolumeInProcess(deps: FlowDeps, ctx: Record<string, unknown>, row: Volume): Promise<void> {
  await withWorker(deps, { type: 'Volume', id: row.id, status: row.status }, () => volumeStatus(deps, row.id), async () => {
    try {
      await buildVolume(deps, ctx, row, null);
    } catch (err) {
      deps.logger.error({ err, volume_id: row.id }, `create_volume of ${row.id} failed: ${errorMessage(err)}`);
      await deps.db.volumes.update(row.id, { status: 'error' });
      throw err;
    }
  });
}

/** The create itself (the flow's tasks up to CreateVolumeOnFinishTask); a failure is raised. */
async function buildVolume(deps: FlowDeps, ctx: Record<string, unknown>, original: Volume, imageId: string | null): Promise<void> {
  requireDriver(deps);
  const row = await setResourceHost(deps, original);
  const size = row.size;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 1) throw invalidInput(`volume size must be a positive integer, got ${String(size)}`);
  const model = imageId ? await createFromImage(deps, ctx, row, imageId) : await runCreate(deps, row);
  const migrating = row.migration_status === 'migration_target_creating';
  await deps.db.volumes.update(row.id, {
    ...(model ?? {}),
    status: 'available',
    ...(migrating ? { migration_status: 'migration_target' } : {}),
    launched_at: deps.db.now(),
    // _driver_shares_targets(): true for iSCSI with a target per compute host, false per volume
    shared_targets: deps.exports.sharedTargets,
    service_uuid: deps.service.serviceRecord?.uuid ?? null,
  });
  deps.logger.info({ volume_id: row.id }, `Created volume successfully.`);
}

/** _set_resource_host: a volume without a host, or for another backend of ours, gets ours. */
async function setResourceHost(deps: FlowDeps, row: Volume): Promise<Volume> {
  if (row.host && isOurs(deps, row.host)) return row;
  const pool = row.host?.includes('#') ? row.host.slice(row.host.indexOf('#') + 1) : deps.poolName;
  const host = `${deps.service.host}#${pool}`;
  await deps.db.volumes.update(row.id, { host });
  return { ...row, host };
}

async function runCreate(deps: FlowDeps, row: Volume) {
  const { driver } = deps;
  const dv = driverVolume(row);
  if (row.snapshot_id) {
    const snapId = row.snapshot_id;
    return withLock(deps, `${snapId}-delete_snapshot`, true, async () => {
      const snap = await deps.db.snapshots.get(snapId);
      const srcVol = await deps.db.volumes.get(snap.volume_id, { readDeleted: 'yes' });
      const model = await driver.createVolumeFromSnapshot(dv, driverSnapshot(snap, srcVol));
      if (srcVol.bootable) {
        await deps.db.glanceMetadata.copyToVolume(row.id, snapId);
        await deps.db.volumes.update(row.id, { bootable: true });
      }
      return model;
    });
  }
  if (row.source_volid) {
    const srcId = row.source_volid;
    return withLock(deps, `${srcId}-delete_volume`, true, async () => {
      const src = await deps.db.volumes.get(srcId);
      const model = await driver.createClonedVolume(dv, driverVolume(src));
      if (src.bootable) {
        await deps.db.glanceMetadata.copyFromVolumeToVolume(srcId, row.id);
        await deps.db.volumes.update(row.id, { bootable: true });
      }
      return model;
    });
  }
  return driver.createVolume(dv);
}

async function reschedule(
  deps: FlowDeps,
  ctx: Record<string, unknown>,
  volume: VersionedObject,
  requestSpec: VersionedObject | null,
  filterProperties: Record<string, unknown>,
  cause: unknown,
  row: Volume,
): Promise<void> {
  const id = row.id;
  const log = deps.logger.child({ volume_id: id });
  // cinder's _post_reschedule, done first: whatever the failed attempt left on our backend goes
  // before the volume is handed to another backend. Cleaned up afterwards, a failure would leave
  // an orphan that no volume row points at; cleaned up first, a failure keeps the row here, in
  // error, so that deleting the volume removes the leftover too.
  try {
    await deps.driver.deleteVolume(driverVolume(row));
  } catch (err) {
    log.error(
      { err },
      `Volume ${id}: not rescheduled, because what the failed create left on this backend could not be removed (${errorMessage(err)}); ` +
        `setting it to error: delete the volume once the backend is fixed`,
    );
    await deps.db.volumes.update(id, { status: 'error' });
    return;
  }
  // _pre_reschedule
  const now = deps.db.now();
  // a create from an image failed in `downloading`: the rescheduled request must find `creating`
  // again, or the stale-request guard above drops it and the volume stays downloading
  await deps.db.volumes.update(id, { scheduled_at: now, host: null, status: 'creating' });
  volume.set('scheduled_at', formatOvoDatetime(now));
  volume.set('host', null);
  // _reschedule
  const retry = filterProperties.retry as Record<string, unknown>;
  const num = typeof retry.num_attempts === 'number' ? retry.num_attempts : 0;
  retry.exc = [`${(cause as Error | null)?.name ?? 'Error'}: ${errorMessage(cause)}\n`];
  requestSpec?.set('volume_id', id);
  log.info(`Volume ${id}: re-scheduling create_volume attempt ${num} due to ${errorMessage(cause)}`);
  try {
    // scheduler rpcapi.create_volume runs volume.create_worker() first: the row goes back to no service.
    await createWorkerForApi(deps, id, row.status ?? 'creating');
    await deps.scheduler.createVolume(contextFromMessage(ctx).elevated().toDict(), {
      volume,
      requestSpec: requestSpec ?? {},
      filterProperties,
    });
  } catch (err) {
    log.error({ err }, `rescheduling volume ${id} failed; setting it to error`);
    await deps.db.volumes.update(id, { status: 'error' });
  }
}

/** CinderCleanableObject.create_worker (pinned), as the scheduler client does before its cast. */
async function createWorkerForApi(deps: FlowDeps, id: string, status: string): Promise<void> {
  try {
    await deps.db.workers.create({ resourceType: 'Volume', resourceId: id, status, serviceId: null });
  } catch (err) {
    if ((err as { className?: string }).className !== 'WorkerExists') throw err;
    await deps.db.workers.update(null, { serviceId: null, status }, { resourceType: 'Volume', resourceId: id });
  }
}
