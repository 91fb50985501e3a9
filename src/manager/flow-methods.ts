// The volume flows as RPC methods: each takes its kwargs as they come off the wire, has them
// checked and typed by its schema (rpc-arguments.ts), and runs its flow with the result. Exported
// under cinder's method names; volume-manager.ts serves FLOW_METHODS.
import { attachmentDelete, attachmentUpdate, attachVolume, detachVolume, initializeConnection, removeExport, terminateConnection } from './flows/connections.js';
import type { FlowDeps } from './flows/common.js';
import { createVolume } from './flows/create-volume.js';
import { deleteVolume, extendVolume } from './flows/delete-extend.js';
import { manageExisting, retype as retypeFlow } from './flows/retype-manage.js';
import { createSnapshot, deleteSnapshot, revertToSnapshot } from './flows/snapshots.js';
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
export const attach_volume = flowMethod('attach_volume', attachVolume);
export const detach_volume = flowMethod('detach_volume', detachVolume);

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
  attach_volume,
  detach_volume,
} satisfies { [M in VolumeRpcMethod]?: FlowMethod };
