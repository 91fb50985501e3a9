// Database rows as the oslo objects cinder sends (Volume 1.9, Snapshot 1.6, BackupDeviceInfo
// 1.0): what Volume._from_db_object / Snapshot._from_db_object set, every column field, so the
// receiver (cinder-backup) never has to lazy-load a plain field, which cinder's objects refuse.
// The optional relations (volume_type, attachments, metadata…) are left for the receiver to load.
import type { Snapshot, Volume } from '../db/index.js';
import { formatOvoDatetime, VersionedObject } from '../rpc/ovo.js';

const VOLUME_DATETIMES = ['created_at', 'updated_at', 'deleted_at', 'scheduled_at', 'launched_at', 'terminated_at'] as const;
const VOLUME_BOOLEANS = ['deleted', 'bootable', 'multiattach', 'use_quota', 'shared_targets'] as const;
const SNAPSHOT_DATETIMES = ['created_at', 'updated_at', 'deleted_at'] as const;
const SNAPSHOT_BOOLEANS = ['deleted', 'use_quota'] as const;

/** Snapshot object fields that are columns (scheduled_at is a column but no field). */
const SNAPSHOT_FIELDS = [
  'id', 'user_id', 'project_id', 'use_quota', 'volume_id', 'cgsnapshot_id', 'group_snapshot_id', 'status', 'progress',
  'volume_size', 'display_name', 'display_description', 'encryption_key_id', 'volume_type_id', 'provider_location',
  'provider_id', 'provider_auth', 'created_at', 'updated_at', 'deleted_at', 'deleted',
] as const;

function primitives(row: Record<string, unknown>, fields: readonly string[], datetimes: readonly string[], booleans: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of fields) {
    const v = row[f] ?? null;
    if (v === null) out[f] = null;
    else if (datetimes.includes(f)) out[f] = formatOvoDatetime(v instanceof Date ? v : new Date(String(v)));
    else if (booleans.includes(f)) out[f] = Boolean(v);
    else out[f] = v;
  }
  return out;
}

/** Every column of the row is a Volume field of the same name (ec2_id included). */
export function volumeObjectOf(row: Volume): VersionedObject {
  const fields = Object.keys(row);
  return new VersionedObject('Volume', primitives(row as unknown as Record<string, unknown>, fields, VOLUME_DATETIMES, VOLUME_BOOLEANS));
}

export function snapshotObjectOf(row: Snapshot): VersionedObject {
  return new VersionedObject('Snapshot', primitives(row as unknown as Record<string, unknown>, SNAPSHOT_FIELDS, SNAPSHOT_DATETIMES, SNAPSHOT_BOOLEANS));
}

/** BackupDeviceInfo: exactly one of volume or snapshot set (its is_snapshot), and secure_enabled. */
export function backupDeviceInfo(device: { volume: Volume } | { snapshot: Snapshot }, secureEnabled: boolean): VersionedObject {
  const data: Record<string, unknown> = { secure_enabled: secureEnabled };
  if ('volume' in device) data.volume = volumeObjectOf(device.volume);
  else data.snapshot = snapshotObjectOf(device.snapshot);
  return new VersionedObject('BackupDeviceInfo', data);
}
