// A volumes row as the oslo Volume object cinder sends over RPC: every column as its field
// primitive (datetimes as oslo writes them), nothing lazy-loaded. A peer that needs more (a real
// cinder-volume reading volume_type or metadata) loads it from the database by id, as cinder's
// objects do with their context.
import type { Volume } from '../db/index.js';
import { formatOvoDatetime, VersionedObject } from '../rpc/ovo.js';

export function volumeObjectFromRow(row: Volume): VersionedObject {
  const data: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) data[k] = v instanceof Date ? formatOvoDatetime(v) : v;
  return new VersionedObject('Volume', data);
}

/** Volume.service_topic_queue then extract_host: the server a volume's RPCs go to. */
export function serviceQueueOf(volume: VersionedObject): string {
  const queue = volume.get('cluster_name') ?? volume.get('host');
  if (typeof queue !== 'string' || !queue) throw new Error(`volume ${String(volume.get('id'))} has neither a host nor a cluster to send to`);
  return queue.split('#')[0]!;
}
