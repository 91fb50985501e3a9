// The volume flows as RPC methods: each takes its kwargs as they come off the wire, has them
// checked and typed by its schema (rpc-arguments.ts), and runs its flow with the result. Exported
// under cinder's method names; volume-manager.ts serves FLOW_METHODS.
import { attachmentDelete, attachmentUpdate, attachVolume, detachVolume, initializeConnection, removeExport, terminateConnection } from './flows/connections.js';
import type { FlowDeps } from './flows/common.js';
import { createVolume } from './flows/create-volume.js';
import { deleteVolume, extendVolume } from './flows/delete-extend.js';
import { manageExisting, retype as retypeFlow } from './flows/retype-manage.js';
import { migrateVolume, migrateVolumeCompletion, updateMigratedVolume } from './flows/migrate-volume.js';
import { createSnapshot, deleteSnapshot, revertToSnapshot } from './flows/snapshots.js';
import { doCleanup } from './flows/cleanup.js';
import { createGroup, createGroupFromSrc, createGroupSnapshot, deleteGroup, deleteGroupSnapshot, updateGroup } from './flows/groups.js';
import { getManageableSnapshots, getManageableVolumes, manageExistingSnapshot } from './flows/manageable.js';
import {
  disableReplication,
  enableReplication,
  failover as failoverFlow,
  failoverCompleted,
  failoverReplication,
  freezeHost,
  listReplicationTargets,
  thawHost,
} from './flows/replication.js';
import { acceptTransfer } from './flows/transfer.js';
import { copyVolumeToImage } from './flows/copy-volume-to-image.js';
import { reimage as reimageFlow } from './flows/reimage.js';
import { getBackupDevice, initializeConnectionSnapshot, removeExportSnapshot, terminateConnectionSnapshot } from './flows/backup.js';
import { parseRpcArguments, type RpcArguments, type VolumeRpcMethod } from './rpc-arguments.js';

export type FlowMethod<R = unknown> = (deps: FlowDeps, ctx: Record<string, unknown>, kwargs: Record<string, unknown>) => Promise<R>;

function flowMethod<M extends VolumeRpcMethod, R>(method: M, flow: (deps: FlowDeps, ctx: Record<string, unknown>, args: RpcArguments<M>) => Promise<R>): FlowMethod<R> {
  return async (deps, ctx, kwargs) => flow(deps, ctx, parseRpcArguments(method, kwargs));
}

export const create_volume = flowMethod('create_volume', createVolume);
export const delete_volume = flowMethod('delete_volume', deleteVolume);
export const extend_volume = flowMethod('extend_volume', extendVolume);
export const initialize_connection = flowMethod('initialize_connection', initializeConnection);
export const terminate_connection = flowMethod('terminate_connection', terminateConnection);
export const attachment_update = flowMethod('attachment_update', attachmentUpdate);
export const attachment_delete = flowMethod('attachment_delete', attachmentDelete);
export const remove_export = flowMethod('remove_export', removeExport);
export const create_snapshot = flowMethod('create_snapshot', createSnapshot);
export const delete_snapshot = flowMethod('delete_snapshot', deleteSnapshot);
export const revert_to_snapshot = flowMethod('revert_to_snapshot', revertToSnapshot);
export const retype = flowMethod('retype', retypeFlow);
export const manage_existing = flowMethod('manage_existing', manageExisting);
export const migrate_volume = flowMethod('migrate_volume', migrateVolume);
export const migrate_volume_completion = flowMethod('migrate_volume_completion', migrateVolumeCompletion);
export const update_migrated_volume = flowMethod('update_migrated_volume', updateMigratedVolume);
export const attach_volume = flowMethod('attach_volume', attachVolume);
export const detach_volume = flowMethod('detach_volume', detachVolume);

export const accept_transfer = flowMethod('accept_transfer', acceptTransfer);
export const create_group = flowMethod('create_group', createGroup);
export const update_group = flowMethod('update_group', updateGroup);
export const delete_group = flowMethod('delete_group', deleteGroup);
export const create_group_from_src = flowMethod('create_group_from_src', createGroupFromSrc);
export const create_group_snapshot = flowMethod('create_group_snapshot', createGroupSnapshot);
export const delete_group_snapshot = flowMethod('delete_group_snapshot', deleteGroupSnapshot);
export const get_manageable_volumes = flowMethod('get_manageable_volumes', getManageableVolumes);
export const get_manageable_snapshots = flowMethod('get_manageable_snapshots', getManageableSnapshots);
export const manage_existing_snapshot = flowMethod('manage_existing_snapshot', manageExistingSnapshot);
export const do_cleanup = flowMethod('do_cleanup', doCleanup);
export const freeze_host = flowMethod('freeze_host', (deps) => freezeHost(deps));
export const thaw_host = flowMethod('thaw_host', (deps) => thawHost(deps));
export const failover = flowMethod('failover', failoverFlow);
export const failover_host = flowMethod('failover_host', failoverFlow);
export const failover_completed = flowMethod('failover_completed', failoverCompleted);
export const enable_replication = flowMethod('enable_replication', enableReplication);
export const disable_replication = flowMethod('disable_replication', disableReplication);
export const failover_replication = flowMethod('failover_replication', failoverReplication);
export const list_replication_targets = flowMethod('list_replication_targets', listReplicationTargets);
export const copy_volume_to_image = flowMethod('copy_volume_to_image', copyVolumeToImage);
export const reimage = flowMethod('reimage', reimageFlow);

export const get_backup_device = flowMethod('get_backup_device', getBackupDevice);
export const initialize_connection_snapshot = flowMethod('initialize_connection_snapshot', initializeConnectionSnapshot);
export const terminate_connection_snapshot = flowMethod('terminate_connection_snapshot', terminateConnectionSnapshot);
export const remove_export_snapshot = flowMethod('remove_export_snapshot', removeExportSnapshot);

export const FLOW_METHODS = {
  create_volume,
  delete_volume,
  extend_volume,
  initialize_connection,
  terminate_connection,
  attachment_update,
  attachment_delete,
  remove_export,
  create_snapshot,
  delete_snapshot,
  revert_to_snapshot,
  retype,
  manage_existing,
  migrate_volume,
  migrate_volume_completion,
  update_migrated_volume,
  attach_volume,
  detach_volume,
  accept_transfer,
  create_group,
  update_group,
  delete_group,
  create_group_from_src,
  create_group_snapshot,
  delete_group_snapshot,
  get_manageable_volumes,
  get_manageable_snapshots,
  manage_existing_snapshot,
  do_cleanup,
  freeze_host,
  thaw_host,
  failover,
  failover_host,
  failover_completed,
  enable_replication,
  disable_replication,
  failover_replication,
  list_replication_targets,
  copy_volume_to_image,
  reimage,
  get_backup_device,
  initialize_connection_snapshot,
  terminate_connection_snapshot,
  remove_export_snapshot,
} satisfies { [M in VolumeRpcMethod]?: FlowMethod };
