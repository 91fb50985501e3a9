// User-visible messages (`cinder message-list`), written as cinder/message/api.py API.create does:
// event_id 'VOLUME_<resource_type>_<action_id>_<detail_id>', message_level 'ERROR' by default,
// expires_at = now + message_ttl (2592000 s).
import { randomUUID } from 'node:crypto';
import type { DbHandle } from './connect.js';

/** message_field.Resource */
export const MessageResource = { VOLUME: 'VOLUME', VOLUME_SNAPSHOT: 'VOLUME_SNAPSHOT', VOLUME_BACKUP: 'VOLUME_BACKUP' } as const;

/** message_field.Action ids. */
export const MessageAction = {
  SCHEDULE_ALLOCATE_VOLUME: '001',
  ATTACH_VOLUME: '002',
  COPY_VOLUME_TO_IMAGE: '003',
  UPDATE_ATTACHMENT: '004',
  COPY_IMAGE_TO_VOLUME: '005',
  UNMANAGE_VOLUME: '006',
  EXTEND_VOLUME: '007',
  CREATE_VOLUME_FROM_BACKEND: '008',
  SNAPSHOT_CREATE: '009',
  SNAPSHOT_DELETE: '010',
  SNAPSHOT_UPDATE: '011',
  SNAPSHOT_METADATA_UPDATE: '012',
  BACKUP_CREATE: '013',
  BACKUP_DELETE: '014',
  BACKUP_RESTORE: '015',
  REIMAGE_VOLUME: '016',
} as const;

/** message_field.Detail ids. */
export const MessageDetail = {
  UNKNOWN_ERROR: '001',
  DRIVER_NOT_INITIALIZED: '002',
  NO_BACKEND_AVAILABLE: '003',
  FAILED_TO_UPLOAD_VOLUME: '004',
  VOLUME_ATTACH_MODE_INVALID: '005',
  QUOTA_EXCEED: '006',
  NOT_ENOUGH_SPACE_FOR_IMAGE: '007',
  UNMANAGE_ENC_NOT_SUPPORTED: '008',
  NOTIFY_COMPUTE_SERVICE_FAILED: '009',
  DRIVER_FAILED_EXTEND: '010',
  SIGNATURE_VERIFICATION_FAILED: '011',
  DRIVER_FAILED_CREATE: '012',
  SNAPSHOT_CREATE_ERROR: '013',
  SNAPSHOT_UPDATE_METADATA_FAILED: '014',
  SNAPSHOT_IS_BUSY: '015',
  SNAPSHOT_DELETE_ERROR: '016',
  BACKUP_INVALID_STATE: '017',
  BACKUP_SERVICE_DOWN: '018',
  BACKUP_CREATE_DEVICE_ERROR: '019',
  BACKUP_CREATE_DRIVER_ERROR: '020',
  ATTACH_ERROR: '021',
  DETACH_ERROR: '022',
  BACKUP_CREATE_CLEANUP_ERROR: '023',
  BACKUP_SCHEDULE_ERROR: '024',
  BACKUP_DELETE_DRIVER_ERROR: '025',
  BACKUP_RESTORE_ERROR: '026',
  VOLUME_INVALID_STATE: '027',
  REIMAGE_VOLUME_FAILED: '028',
  IMAGE_FORMAT_UNACCEPTABLE: '029',
} as const;

const EXCEPTION_DETAIL: Record<string, string> = {
  DriverNotInitialized: MessageDetail.DRIVER_NOT_INITIALIZED,
  NoValidBackend: MessageDetail.NO_BACKEND_AVAILABLE,
  InvalidVolumeAttachMode: MessageDetail.VOLUME_ATTACH_MODE_INVALID,
  ImageLimitExceeded: MessageDetail.QUOTA_EXCEED,
  BackupLimitExceeded: MessageDetail.QUOTA_EXCEED,
  SnapshotLimitExceeded: MessageDetail.QUOTA_EXCEED,
  ImageTooBig: MessageDetail.NOT_ENOUGH_SPACE_FOR_IMAGE,
  SnapshotIsBusy: MessageDetail.SNAPSHOT_IS_BUSY,
};

const KNOWN_DETAILS = new Set<string>(Object.values(MessageDetail));

/**
 * message_field.translate_detail_id: an exception class in the mapping wins, then a known detail,
 * else UNKNOWN_ERROR.
 */
export function translateDetailId(exceptionClassName?: string | null, detailId?: string | null): string {
  if (exceptionClassName && EXCEPTION_DETAIL[exceptionClassName]) return EXCEPTION_DETAIL[exceptionClassName]!;
  if (detailId && KNOWN_DETAILS.has(detailId)) return detailId;
  return MessageDetail.UNKNOWN_ERROR;
}

export interface CreateMessage {
  /** context.project_id */
  projectId: string;
  /** context.request_id */
  requestId: string | null;
  /** MessageAction id, e.g. '007' for extend volume. */
  actionId: string;
  resourceType?: string;
  resourceUuid?: string | null;
  /** MessageDetail id (already translated), default UNKNOWN_ERROR. */
  detailId?: string;
  /** Name of the exception the failure raised; mapped as translate_detail_id does. */
  exceptionClass?: string | null;
  level?: 'ERROR' | 'WARNING' | 'INFO' | string;
  /** [message] message_ttl seconds (2592000). */
  ttlSeconds?: number;
}

/** message_api.create → db.message_create. Returns the new message id. */
export async function create(db: DbHandle, m: CreateMessage): Promise<string> {
  const now = db.now();
  const resourceType = m.resourceType ?? MessageResource.VOLUME;
  const detailId = translateDetailId(m.exceptionClass, m.detailId);
  const id = randomUUID();
  await db.kysely
    .insertInto('messages')
    .values({
      id,
      created_at: now,
      updated_at: null,
      deleted_at: null,
      deleted: false,
      project_id: m.projectId,
      request_id: m.requestId,
      resource_type: resourceType,
      resource_uuid: m.resourceUuid ?? null,
      action_id: m.actionId,
      message_level: m.level ?? 'ERROR',
      event_id: `VOLUME_${resourceType}_${m.actionId}_${detailId}`,
      detail_id: detailId,
      expires_at: new Date(now.getTime() + (m.ttlSeconds ?? 2592000) * 1000),
    })
    .execute();
  return id;
}

/** message_get (live rows). */
export async function get(db: DbHandle, id: string) {
  return db.kysely.selectFrom('messages').selectAll().where('id', '=', id).where('deleted', '=', false).executeTakeFirst();
}
