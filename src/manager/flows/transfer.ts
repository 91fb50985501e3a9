// accept_transfer (manager.py accept_transfer). cinder-api moves the volume and its snapshots to
// the new project and user and settles the quotas itself (transfer/api.py accept); the volume
// service's part is the driver's hook for drivers that tie provider data (CHAP) to a project.
// Neither the LVM nor the file driver does, so the hook has nothing to change and the reply is
// cinder's None.
import type { RpcArguments } from '../rpc-arguments.js';
import { getVolume, requireDriver, type FlowDeps } from './common.js';

export async function acceptTransfer(deps: FlowDeps, _ctx: Record<string, unknown>, args: RpcArguments<'accept_transfer'>): Promise<null> {
  requireDriver(deps);
  // VolumeNotFound reaches cinder-api, which then rolls the transfer back, as with cinder-volume.
  await getVolume(deps, args.volume_id);
  deps.logger.child({ volume_id: args.volume_id }).info(`Transfer volume completed successfully (to project ${args.new_project}).`);
  return null;
}
