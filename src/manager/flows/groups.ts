// Generic volume groups (manager.py create_group, update_group, delete_group,
// create_group_snapshot, delete_group_snapshot, create_group_from_src) for a driver without
// native group support, which is what the LVM and file drivers are. cinder then takes its
// generic path: a group is only rows in the database, a group snapshot is one driver snapshot
// per member volume taken one after the other, and a group from a source is one driver clone
// per member volume.
//
// The exception is the group type named default_cgsnapshot_type (groups made through the old
// consistency-group API): cinder hands those to the driver's consistency-group calls, which
// neither driver has, so they fail with NotImplementedError and the group or group snapshot ends
// in error. Group types whose specs ask for consistent_group_snapshot_enabled are never placed
// here: the scheduler's capabilities filter finds no such capability in this backend's report,
// which is how cinder keeps them off LVM.
//
// Where cinder's outcome is surprising it is kept, because cinder-api and operators' tooling read
// these statuses: a group from a source ends available even when a member's clone failed (that
// member shows error first, then available), and deleting a group destroys the rows of members the
// driver reported busy.
import type { Group, GroupSnapshot, Snapshot, Volume } from '../../db/index.js';
import {
  invalidGroup,
  invalidInput,
  invalidVolume,
  isBusyError,
  metadataCopyFailure,
  notImplementedError,
  resourceNotLocal,
  snapshotNotFound,
  volumeAttached,
  volumeDriverException,
  volumeNotFound,
  CinderError,
} from '../../errors.js';
import { logDropped } from '../../log.js';
import type { RpcArguments } from '../rpc-arguments.js';
import { withVolumeConnections } from './connection-locks.js';
import { backendOf, driverSnapshot, driverVolume, errorMessage, isOurs, requireDriver, type FlowDeps } from './common.js';

const VALID_ADD_VOL_TO_GROUP_STATUS = ['available', 'in-use'] as const;
const VALID_REMOVE_VOL_FROM_GROUP_STATUS = ['available', 'in-use', 'error', 'error_deleting'] as const;

/** A Python tuple of strings as cinder's messages print it. */
function pyTuple(xs: readonly string[]): string {
  return `(${xs.map((x) => `'${x}'`).join(', ')}${xs.length === 1 ? ',' : ''})`;
}

/** One of cinder's own exceptions (what cinder's `except exception.CinderException` catches). */
function isCinderException(err: unknown): err is CinderError {
  return err instanceof CinderError && err.module === 'cinder.exception';
}

/** The consistency-group calls cinder makes for the default cgsnapshot type: neither driver has them. */
function noConsistencyGroupSupport(what: string): CinderError {
  return notImplementedError(`${what}: this backend has no consistency groups (group type default_cgsnapshot_type); use a generic group type`);
}

/** _check_is_our_resource */
function checkOurs(deps: FlowDeps, kind: string, id: string, host: string | null): void {
  if (host && !isOurs(deps, host)) throw resourceNotLocal(kind, id, backendOf(deps.service.host) ?? deps.service.host);
}

// ---- create / update / delete ------------------------------------------------------------------

export async function createGroup(deps: FlowDeps, _ctx: Record<string, unknown>, args: RpcArguments<'create_group'>): Promise<void> {
  const group = await deps.db.groups.get(args.group.data.id);
  const log = deps.logger.child({ group_id: group.id });
  // _set_resource_host: a clustered group sent to the cluster is ours now, in its pool
  if (group.cluster_name && !isOurs(deps, group.host)) {
    const pool = group.host?.includes('#') ? group.host.slice(group.host.indexOf('#') + 1) : null;
    await deps.db.groups.update(group.id, { host: pool ? `${deps.service.host}#${pool}` : deps.service.host });
  }
  try {
    requireDriver(deps);
    log.info(`Group ${String(group.name)}: creating`);
    if (await deps.db.groups.isDefaultCgsnapshotType(group.group_type_id)) throw noConsistencyGroupSupport('create_consistencygroup');
  } catch (err) {
    await deps.db.groups.update(group.id, { status: 'error' });
    log.error({ err }, `Group ${String(group.name)}: create failed`);
    throw err;
  }
  await deps.db.groups.update(group.id, { status: 'available', created_at: deps.db.now() });
  log.info(`Group ${String(group.name)}: created successfully`);
}

/** _collect_volumes_for_group: the comma-separated ids, each live and in a status the change allows. */
async function collectVolumes(deps: FlowDeps, group: Group, ids: string | null, add: boolean): Promise<Volume[]> {
  if (!ids) return [];
  const valid: readonly string[] = add ? VALID_ADD_VOL_TO_GROUP_STATUS : VALID_REMOVE_VOL_FROM_GROUP_STATUS;
  const out: Volume[] = [];
  for (const id of ids.split(',')) {
    const vol = await deps.db.volumes.find(id);
    if (!vol) {
      deps.logger.error({ group_id: group.id }, `Update group failed to ${add ? 'add' : 'remove'} volume-${id}: VolumeNotFound.`);
      throw volumeNotFound(id);
    }
    if (!valid.includes(vol.status ?? '')) {
      throw invalidVolume(
        `Can not ${add ? 'add' : 'remove'} volume ${vol.id} to group ${group.id} because volume is in an invalid state: ${String(vol.status)}. Valid states are: ${pyTuple(valid)}.`,
      );
    }
    if (add) checkOurs(deps, 'Volume', vol.id, vol.host);
    out.push(vol);
  }
  return out;
}

export async function updateGroup(deps: FlowDeps, _ctx: Record<string, unknown>, args: RpcArguments<'update_group'>): Promise<void> {
  const group = await deps.db.groups.get(args.group.data.id);
  const log = deps.logger.child({ group_id: group.id });
  const added = await collectVolumes(deps, group, args.add_volumes, true);
  const removed = await collectVolumes(deps, group, args.remove_volumes, false);
  try {
    requireDriver(deps);
    if (await deps.db.groups.isDefaultCgsnapshotType(group.group_type_id)) throw noConsistencyGroupSupport('update_consistencygroup');
    // the generic update: membership lives in the database only
  } catch (err) {
    log.error({ err }, `Failed to update group ${group.id}.`);
    await deps.db.groups.update(group.id, { status: 'error' });
    for (const v of [...added, ...removed]) await deps.db.volumes.update(v.id, { status: 'error' });
    throw err;
  }
  for (const v of added) await deps.db.volumes.update(v.id, { group_id: group.id });
  for (const v of removed) await deps.db.volumes.update(v.id, { group_id: null });
  await deps.db.groups.update(group.id, { status: 'available' });
  log.info('Update group completed successfully.');
}

export async function deleteGroup(deps: FlowDeps, _ctx: Record<string, unknown>, args: RpcArguments<'delete_group'>): Promise<void> {
  const group = await deps.db.groups.get(args.group.data.id);
  const log = deps.logger.child({ group_id: group.id });
  const projectId = group.project_id;
  const volumes = await deps.db.groups.volumes(group.id);
  for (const v of volumes) {
    if (v.attach_status === 'attached') throw volumeAttached(v.id);
    checkOurs(deps, 'Volume', v.id, v.host);
  }
  let updates: Array<{ id: string; status: string }> | null = null;
  try {
    requireDriver(deps);
    if (await deps.db.groups.isDefaultCgsnapshotType(group.group_type_id)) throw noConsistencyGroupSupport('delete_consistencygroup');
    // _delete_group_generic: each member's export and data go; a busy one stays available.
    let groupStatus = group.status;
    updates = [];
    for (const v of volumes) {
      const dv = driverVolume(v);
      let status: string;
      try {
        await withVolumeConnections(deps, v.id, () => deps.exports.removeExport(dv));
        await deps.driver.deleteVolume(dv);
        status = 'deleted';
      } catch (err) {
        if (isBusyError(err)) status = 'available';
        else {
          log.error({ err, volume_id: v.id }, `delete_group: deleting member volume ${v.id} failed: ${errorMessage(err)}`);
          status = 'error';
          groupStatus = 'error';
        }
      }
      updates.push({ id: v.id, status });
    }
    for (const u of updates) await deps.db.volumes.update(u.id, { status: u.status });
    if (groupStatus === 'error' || groupStatus === 'error_deleting') throw volumeDriverException('Delete group failed.');
    await deps.db.groups.update(group.id, { status: groupStatus });
  } catch (err) {
    await deps.db.groups.update(group.id, { status: 'error' });
    // members the driver reported nothing for (it never ran) go to error with the group
    if (!updates || updates.length === 0) for (const v of volumes) await deps.db.volumes.update(v.id, { status: 'error' });
    throw err;
  }

  let groupReservations: string[] | null = null;
  try {
    groupReservations = await deps.db.quotas.reserve(projectId, { groups: -1 });
  } catch (err) {
    log.error({ err }, 'Delete group failed to update usages.');
  }
  for (const v of volumes) {
    let reservations: string[] | null = null;
    try {
      reservations = await deps.db.quotas.reserveForVolumeDelete(v);
    } catch (err) {
      log.error({ err }, 'Delete group failed to update usages.');
    }
    await deps.db.volumes.destroy(v.id);
    if (reservations) await deps.db.quotas.commit(reservations, projectId);
  }
  if (groupReservations) await deps.db.quotas.commit(groupReservations, projectId);
  await deps.db.groups.destroy(group.id);
  void deps.service.publishServiceCapabilities().catch(logDropped(deps.logger, 'the capability report after this change', 'the next periodic report carries it'));
  log.info('Delete group completed successfully.');
}

// ---- group snapshots ---------------------------------------------------------------------------

/**
 * What cinder does when a group snapshot's create or delete fails with one of its exceptions: the
 * group snapshot goes to error, and its snapshots too unless the driver step had set each one's.
 */
async function markGroupSnapshotFailed(deps: FlowDeps, groupSnapshotId: string, perSnapshot: Map<string, string> | null, snapshots: readonly Snapshot[]): Promise<void> {
  await deps.db.groups.updateSnapshot(groupSnapshotId, { status: 'error' });
  if (!perSnapshot || perSnapshot.size === 0) for (const s of snapshots) await deps.db.snapshots.update(s.id, { status: 'error' });
}

export async function createGroupSnapshot(deps: FlowDeps, _ctx: Record<string, unknown>, args: RpcArguments<'create_group_snapshot'>): Promise<void> {
  const gs = await deps.db.groups.getSnapshot(args.group_snapshot.data.id);
  const log = deps.logger.child({ group_snapshot_id: gs.id });
  log.info(`GroupSnapshot ${gs.id}: creating.`);
  const snapshots = await deps.db.groups.snapshots(gs.id);
  let perSnapshot: Map<string, string> | null = null;
  try {
    requireDriver(deps);
    if (await deps.db.groups.isDefaultCgsnapshotType(gs.group_type_id)) throw noConsistencyGroupSupport('create_cgsnapshot');
    // _create_group_snapshot_generic: one driver snapshot per member, one after the other.
    let status = 'available';
    perSnapshot = new Map();
    for (const s of snapshots) {
      let snapStatus = 'available';
      try {
        const vol = await deps.db.volumes.get(s.volume_id);
        const model = await deps.driver.createSnapshot(driverSnapshot(s, vol));
        await deps.db.snapshots.update(s.id, { ...(model ?? {}), status: snapStatus });
      } catch (err) {
        log.error({ err, snapshot_id: s.id }, `create_group_snapshot: snapshot ${s.id} failed: ${errorMessage(err)}`);
        snapStatus = 'error';
        status = 'error';
        await deps.db.snapshots.update(s.id, { status: snapStatus });
      }
      perSnapshot.set(s.id, snapStatus);
    }
    if (status === 'error') throw volumeDriverException(`Error occurred when creating group_snapshot ${gs.id}.`);
    await deps.db.groups.updateSnapshot(gs.id, { status });
  } catch (err) {
    // cinder only catches its own exceptions here; anything else leaves the rows as they are
    if (!isCinderException(err)) throw err;
    await markGroupSnapshotFailed(deps, gs.id, perSnapshot, snapshots);
    throw err;
  }
  for (const s of snapshots) {
    const vol = await deps.db.volumes.get(s.volume_id);
    if (vol.bootable) {
      try {
        await deps.db.glanceMetadata.copyToSnapshot(s.id, vol.id);
      } catch (err) {
        if ((err as Partial<CinderError>).className !== 'GlanceMetadataNotFound') {
          log.error({ err }, `Failed updating ${s.id} metadata using the provided volumes ${vol.id} metadata.`);
          await deps.db.snapshots.update(s.id, { status: 'error' });
          throw metadataCopyFailure(errorMessage(err));
        }
      }
    }
    await deps.db.snapshots.update(s.id, { status: 'available', progress: '100%' });
  }
  await deps.db.groups.updateSnapshot(gs.id, { status: 'available' });
  log.info(`group_snapshot ${gs.id}: created successfully`);
}

export async function deleteGroupSnapshot(deps: FlowDeps, _ctx: Record<string, unknown>, args: RpcArguments<'delete_group_snapshot'>): Promise<void> {
  const gs = await deps.db.groups.getSnapshot(args.group_snapshot.data.id);
  const log = deps.logger.child({ group_snapshot_id: gs.id });
  log.info(`group_snapshot ${gs.id}: deleting`);
  const snapshots = await deps.db.groups.snapshots(gs.id);
  let perSnapshot: Map<string, string> | null = null;
  try {
    requireDriver(deps);
    if (await deps.db.groups.isDefaultCgsnapshotType(gs.group_type_id)) throw noConsistencyGroupSupport('delete_cgsnapshot');
    let status = gs.status;
    perSnapshot = new Map();
    for (const s of snapshots) {
      let snapStatus: string;
      try {
        const vol = await deps.db.volumes.get(s.volume_id, { readDeleted: 'yes' });
        await deps.driver.deleteSnapshot(driverSnapshot(s, vol));
        snapStatus = 'deleted';
      } catch (err) {
        if (isBusyError(err)) snapStatus = 'available';
        else {
          log.error({ err, snapshot_id: s.id }, `delete_group_snapshot: snapshot ${s.id} failed: ${errorMessage(err)}`);
          snapStatus = 'error';
          status = 'error';
        }
      }
      perSnapshot.set(s.id, snapStatus);
      await deps.db.snapshots.update(s.id, { status: snapStatus });
    }
    if (status === 'error' || status === 'error_deleting') throw volumeDriverException(`Error occurred when deleting group_snapshot ${gs.id}.`);
    await deps.db.groups.updateSnapshot(gs.id, { status });
  } catch (err) {
    if (!isCinderException(err)) throw err;
    await markGroupSnapshotFailed(deps, gs.id, perSnapshot, snapshots);
    throw err;
  }
  for (const s of snapshots) {
    let reservations: string[] | null = null;
    try {
      const vol = await deps.db.volumes.get(s.volume_id);
      reservations = await deps.db.quotas.reserveForSnapshotDelete(s, vol.volume_type_id);
    } catch (err) {
      log.error({ err }, 'Failed to update usages deleting snapshot');
    }
    await deps.db.glanceMetadata.deleteBySnapshot(s.id);
    await deps.db.snapshots.destroy(s.id);
    if (reservations) await deps.db.quotas.commit(reservations, gs.project_id);
  }
  await deps.db.groups.destroySnapshot(gs.id);
  log.info(`group_snapshot ${gs.id}: deleted successfully`);
}

// ---- a group from a group snapshot or a source group -------------------------------------------

/** _sort_snapshots / _sort_source_vols: each new volume's source, in the volumes' order. */
function pairSources<S extends { id: string }>(volumes: Volume[], sources: S[], key: 'snapshot_id' | 'source_volid'): S[] {
  if (volumes.length === 0 || sources.length === 0 || volumes.length !== sources.length) {
    throw invalidInput(key === 'snapshot_id' ? 'Input volumes or snapshots are invalid.' : 'Input volumes or source volumes are invalid.');
  }
  return volumes.map((v) => {
    const found = sources.find((s) => s.id === v[key]);
    if (!found) throw key === 'snapshot_id' ? snapshotNotFound(String(v.snapshot_id)) : volumeNotFound(String(v.source_volid));
    return found;
  });
}

export async function createGroupFromSrc(deps: FlowDeps, _ctx: Record<string, unknown>, args: RpcArguments<'create_group_from_src'>): Promise<void> {
  const group = await deps.db.groups.get(args.group.data.id);
  const log = deps.logger.child({ group_id: group.id });
  let sourceName: string | null = null;
  let volumes: Volume[] = [];
  try {
    volumes = await deps.db.groups.volumes(group.id);
    let pairs: Array<{ vol: Volume; snap?: Snapshot; src?: Volume }> = [];
    let gs: GroupSnapshot | null = null;
    if (args.group_snapshot) {
      gs = await deps.db.groups.getSnapshot(args.group_snapshot.data.id);
      sourceName = `snapshot-${gs.id}`;
      const snaps = await deps.db.groups.snapshots(gs.id);
      for (const s of snaps) {
        if (s.status !== 'available') {
          throw invalidGroup(`Cannot create group ${group.id} because snapshot ${s.id} is not in a valid state. Valid states are: ${pyTuple(['available'])}.`);
        }
      }
      if (snaps.length) {
        const sorted = pairSources(volumes, snaps, 'snapshot_id');
        pairs = volumes.map((vol, i) => ({ vol, snap: sorted[i]! }));
      }
    }
    if (args.source_group) {
      const src = await deps.db.groups.get(args.source_group.data.id);
      sourceName = `group-${src.id}`;
      const srcVols = await deps.db.groups.volumes(src.id);
      for (const sv of srcVols) {
        if (sv.status !== 'available') {
          throw invalidGroup(`Cannot create group ${group.id} because source volume ${sv.id} is not in a valid state. Valid states are: ${pyTuple(['available'])}.`);
        }
      }
      if (srcVols.length) {
        const sorted = pairSources(volumes, srcVols, 'source_volid');
        pairs = volumes.map((vol, i) => ({ vol, src: sorted[i]! }));
      }
    }
    requireDriver(deps);
    if (await deps.db.groups.isDefaultCgsnapshotType(group.group_type_id)) throw noConsistencyGroupSupport('create_consistencygroup_from_src');
    // _create_group_from_src_generic: one driver clone per member volume.
    let status = 'available';
    for (const { vol, snap, src } of pairs) {
      try {
        const dv = driverVolume(vol);
        let model;
        if (snap) {
          const origin = await deps.db.volumes.get(snap.volume_id, { readDeleted: 'yes' });
          model = await deps.driver.createVolumeFromSnapshot(dv, driverSnapshot(snap, origin));
        } else if (src) {
          model = await deps.driver.createClonedVolume(dv, { id: src.id, name: driverVolume(src).name, size: src.size ?? 0 });
        }
        await deps.db.volumes.update(vol.id, { ...(model ?? {}), status: 'available' });
      } catch (err) {
        log.error({ err, volume_id: vol.id }, `create_group_from_src: member volume ${vol.id} failed: ${errorMessage(err)}`);
        await deps.db.volumes.update(vol.id, { status: 'error' });
        status = 'error';
      }
    }
    await deps.db.groups.update(group.id, { status });
  } catch (err) {
    await deps.db.groups.update(group.id, { status: 'error' });
    log.error({ err }, `Create group from source ${String(sourceName)} failed.`);
    for (const v of volumes) await deps.db.volumes.update(v.id, { status: 'error' });
    throw err;
  }

  const now = deps.db.now();
  for (const vol of volumes) await updateVolumeFromSrc(deps, vol, group, now);
  await deps.db.groups.update(group.id, { status: 'available', created_at: now });
  log.info(`Create group from source-${String(sourceName)} completed successfully.`);
}

/** _update_volume_from_src: bootable and image metadata (and multiattach) follow the source. */
async function updateVolumeFromSrc(deps: FlowDeps, vol: Volume, group: Group, now: Date): Promise<void> {
  const update: Partial<Volume> = { status: 'available', created_at: now };
  const fail = async (err: unknown): Promise<never> => {
    await deps.db.volumes.update(vol.id, { status: 'error' });
    await deps.db.groups.update(group.id, { status: 'error' });
    throw err;
  };
  try {
    if (vol.snapshot_id) {
      const snap = await deps.db.snapshots.get(vol.snapshot_id);
      const origin = await deps.db.volumes.get(snap.volume_id);
      if (origin.bootable) {
        update.bootable = true;
        await deps.db.glanceMetadata.copyToVolume(vol.id, snap.id);
      }
    }
    if (vol.source_volid) {
      const src = await deps.db.volumes.get(vol.source_volid);
      if (src.bootable) {
        update.bootable = true;
        await deps.db.glanceMetadata.copyFromVolumeToVolume(src.id, vol.id);
      }
      if (src.multiattach) update.multiattach = true;
    }
  } catch (err) {
    // anything but cinder's own exceptions goes back untouched, as in cinder
    if (!isCinderException(err)) throw err;
    const cls = err.className;
    if (cls === 'SnapshotNotFound' || cls === 'VolumeNotFound') await fail(err);
    deps.logger.error({ err, volume_id: vol.id }, `Failed to update ${vol.id} metadata using the provided snapshot ${String(vol.snapshot_id)} metadata.`);
    await fail(metadataCopyFailure(errorMessage(err)));
  }
  await deps.db.volumes.update(vol.id, update);
}
