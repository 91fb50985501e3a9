// SchedulerNotifier over the RPC client. Capacity figures are floats in cinder's report; JSON
// from JavaScript would turn 3.0 into 3, so known float fields are marked as Python floats.
import { pyFloat } from '../rpc/envelope.js';
import { adminContext } from '../rpc/context.js';
import type { RpcClient, SchedulerRpcClient } from '../rpc/client.js';
import { SCHEDULER_TOPIC } from '../rpc/client.js';
import type { VersionedObject } from '../rpc/ovo.js';
import type { SchedulerCreateVolume } from '../manager/flows/common.js';
import type { SchedulerNotifier } from '../manager/ports.js';

const FLOAT_FIELDS = new Set(['total_capacity_gb', 'free_capacity_gb', 'provisioned_capacity_gb']);

function markFloats(capabilities: Record<string, unknown>): Record<string, unknown> {
  const mark = (o: Record<string, unknown>) =>
    Object.fromEntries(Object.entries(o).map(([k, v]) => [k, FLOAT_FIELDS.has(k) && typeof v === 'number' ? pyFloat(v) : v]));
  const out = mark(capabilities);
  if (Array.isArray(capabilities.pools)) {
    out.pools = capabilities.pools.map((p) => (p && typeof p === 'object' ? mark(p as Record<string, unknown>) : p));
  }
  return out;
}

/** timeutils.utcnow().isoformat(): naive, microseconds. */
function naiveIsoNow(): string {
  return new Date().toISOString().replace('Z', '000');
}

export class RpcSchedulerNotifier implements SchedulerNotifier {
  constructor(private readonly client: SchedulerRpcClient) {}

  async updateServiceCapabilities(a: { host: string; capabilities: Record<string, unknown>; clusterName: string | null }): Promise<void> {
    await this.client.updateServiceCapabilities(adminContext().toDict(), {
      host: a.host,
      clusterName: a.clusterName,
      capabilities: markFloats(a.capabilities),
      timestamp: naiveIsoNow(),
    });
  }

  async notifyServiceCapabilities(a: { backend: string; capabilities: Record<string, unknown> }): Promise<void> {
    await this.client.notifyServiceCapabilities(adminContext().toDict(), {
      host: a.backend,
      clusterName: null,
      capabilities: markFloats(a.capabilities),
      timestamp: naiveIsoNow(),
    });
  }
}

/**
 * scheduler rpcapi.create_volume v3.0 (cast, topic cinder-scheduler): what OnFailureRescheduleTask
 * sends back for another attempt. snapshot_id/image_id/backup_id are None on a reschedule.
 */
export class RpcSchedulerCreateVolume implements SchedulerCreateVolume {
  constructor(
    private readonly client: RpcClient,
    private readonly topic: string = SCHEDULER_TOPIC,
  ) {}

  async createVolume(
    ctx: Record<string, unknown>,
    a: { volume: VersionedObject; requestSpec: unknown; filterProperties: Record<string, unknown> },
  ): Promise<void> {
    await this.client.cast(
      { topic: this.topic },
      'create_volume',
      { snapshot_id: null, image_id: null, request_spec: a.requestSpec, filter_properties: a.filterProperties, volume: a.volume, backup_id: null },
      ctx,
      '3.0',
    );
  }
}
