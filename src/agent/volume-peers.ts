// VolumePeers over the RPC client: what cinder's volume rpcapi sends from one volume service to
// another during a migration, to whichever service (cinderblock or cinder-volume) owns the host.
import type { RpcClient } from '../rpc/client.js';
import { VOLUME_TOPIC } from '../rpc/topology.js';
import type { VersionedObject } from '../rpc/ovo.js';
import type { VolumePeers } from '../manager/flows/common.js';
import { serviceQueueOf } from '../manager/volume-object.js';

export class RpcVolumePeers implements VolumePeers {
  constructor(private readonly client: RpcClient) {}

  async createVolume(ctx: Record<string, unknown>, volume: VersionedObject): Promise<void> {
    await this.client.cast(
      { topic: VOLUME_TOPIC, server: serviceQueueOf(volume) },
      'create_volume',
      { volume, request_spec: null, filter_properties: null, allow_reschedule: false },
      ctx,
      '3.0',
    );
  }

  async deleteVolume(ctx: Record<string, unknown>, volume: VersionedObject): Promise<void> {
    await this.client.cast({ topic: VOLUME_TOPIC, server: serviceQueueOf(volume) }, 'delete_volume', { volume, unmanage_only: false, cascade: false }, ctx, '3.0');
  }

  async updateMigratedVolume(ctx: Record<string, unknown>, volume: VersionedObject, newVolume: VersionedObject, volumeStatus: string | null): Promise<void> {
    await this.client.call(
      { topic: VOLUME_TOPIC, server: serviceQueueOf(newVolume) },
      'update_migrated_volume',
      { volume, new_volume: newVolume, volume_status: volumeStatus },
      ctx,
      '3.0',
    );
  }
}
