// volume_attachment rows as the volume manager writes them: volume_attachment_update (connector,
// attach_status 'attaching'), volume_attached (attachment and volume marked attached / in-use),
// and the legacy detach path's volume_detached.
import { randomUUID } from 'node:crypto';
import type { DbHandle } from './connect.js';
import { retryOnDeadlock } from './connect.js';
import { assertColumns, isUuidLike } from './common.js';
import { invalidUuid, volumeAttachmentNotFound, volumeNotFound } from '../errors.js';
import type { NewVolumeAttachment, Volume, VolumeAttachment, VolumeAttachmentTable } from './schema.js';

export const ATTACHMENT_COLUMNS: ReadonlySet<string> = new Set<keyof VolumeAttachmentTable>([
  'created_at', 'updated_at', 'deleted_at', 'deleted', 'id', 'volume_id', 'instance_uuid', 'attached_host', 'mountpoint',
  'attach_time', 'detach_time', 'attach_status', 'attach_mode', 'connection_info', 'connector',
]);

export type AttachmentValues = Partial<Omit<VolumeAttachment, 'id'>>;

const notFound = (id: string) => volumeAttachmentNotFound(`attachment_id = ${id}`);

/** volume_attachment_get: the live row; throws VolumeAttachmentNotFound. */
export async function get(db: DbHandle, id: string): Promise<VolumeAttachment> {
  const row = await db.kysely.selectFrom('volume_attachment').selectAll().where('id', '=', id).where('deleted', '=', false).executeTakeFirst();
  if (!row) throw notFound(id);
  return row;
}

/**
 * volume_attachment_get_all_by_volume_id: live attachments whose attach_status is not 'detached'
 * (SQL `!=`, so rows with a NULL attach_status are not returned either).
 */
export async function listByVolume(db: DbHandle, volumeId: string): Promise<VolumeAttachment[]> {
  return db.kysely
    .selectFrom('volume_attachment')
    .selectAll()
    .where('volume_id', '=', volumeId)
    .where('deleted', '=', false)
    .where('attach_status', '!=', 'detached')
    .orderBy('created_at')
    .orderBy('id')
    .execute();
}

/** volume_attachment_get_all_by_host: live, not detached attachments with this attached_host. */
export async function listByAttachedHost(db: DbHandle, host: string): Promise<VolumeAttachment[]> {
  return db.kysely
    .selectFrom('volume_attachment')
    .selectAll()
    .where('attached_host', '=', host)
    .where('deleted', '=', false)
    .where('attach_status', '!=', 'detached')
    .orderBy('created_at')
    .execute();
}

/**
 * volume_attachment_update: writes `values` (e.g. `{attach_status: 'attaching', connector: JSON}`)
 * to the live row, updated_at = now unless given. Throws VolumeAttachmentNotFound.
 */
export async function update(db: DbHandle, id: string, values: AttachmentValues): Promise<void> {
  assertColumns('volume_attachment', ATTACHMENT_COLUMNS, Object.keys(values));
  const res = await db.kysely
    .updateTable('volume_attachment')
    .set({ ...values, updated_at: values.updated_at === undefined ? db.now() : values.updated_at })
    .where('id', '=', id)
    .where('deleted', '=', false)
    .executeTakeFirst();
  if (Number(res.numUpdatedRows) === 0) throw notFound(id);
}

/** volume_attach: inserts an attachment row (legacy attach path); returns it. */
export async function create(db: DbHandle, values: Omit<NewVolumeAttachment, 'id'> & { id?: string }): Promise<VolumeAttachment> {
  const id = values.id ?? randomUUID();
  assertColumns('volume_attachment', ATTACHMENT_COLUMNS, Object.keys(values));
  await db.kysely
    .insertInto('volume_attachment')
    .values({ created_at: db.now(), updated_at: null, deleted_at: null, deleted: false, ...values, id })
    .execute();
  return get(db, id);
}

export interface VolumeAttachedResult {
  volume: Volume;
  /** What was written to the attachment (cinder returns the same dict). */
  updatedValues: {
    mountpoint: string | null;
    attach_status: 'attached' | 'attaching';
    instance_uuid: string | null;
    attached_host: string | null;
    attach_time: Date;
    attach_mode: string | null;
  };
}

/**
 * db.volume_attached(attachment_id, instance_uuid, host_name, mountpoint, attach_mode,
 * mark_attached): the attachment gets mountpoint, attach_status 'attached' ('attaching' when
 * markAttached is false), instance_uuid, attached_host, attach_time = now, attach_mode; its volume
 * gets status 'in-use' ('attaching') and attach_status likewise. updated_at = now on both (what
 * cinder's ORM flush writes). One transaction. InvalidUUID for a malformed instance uuid.
 */
export async function volumeAttached(
  db: DbHandle,
  attachmentId: string,
  instanceUuid: string | null,
  hostName: string | null,
  mountpoint: string | null,
  mode: string | null,
  markAttached = true,
): Promise<VolumeAttachedResult> {
  if (instanceUuid && !isUuidLike(instanceUuid)) throw invalidUuid(instanceUuid);
  const attachStatus = markAttached ? 'attached' : 'attaching';
  const volumeStatus = markAttached ? 'in-use' : 'attaching';
  return retryOnDeadlock(() =>
    db.transaction(async (trx) => {
      const att = await trx.selectFrom('volume_attachment').selectAll().where('id', '=', attachmentId).where('deleted', '=', false).executeTakeFirst();
      if (!att) throw notFound(attachmentId);
      const now = db.now();
      const updatedValues = {
        mountpoint,
        attach_status: attachStatus,
        instance_uuid: instanceUuid,
        attached_host: hostName,
        attach_time: now,
        attach_mode: mode,
      } as const;
      await trx.updateTable('volume_attachment').set({ ...updatedValues, updated_at: now }).where('id', '=', attachmentId).execute();
      const res = await trx
        .updateTable('volumes')
        .set({ status: volumeStatus, attach_status: attachStatus, updated_at: now })
        .where('id', '=', att.volume_id)
        .where('deleted', '=', false)
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) === 0) throw volumeNotFound(att.volume_id);
      const volume = await trx.selectFrom('volumes').selectAll().where('id', '=', att.volume_id).executeTakeFirstOrThrow();
      return { volume, updatedValues: { ...updatedValues } };
    }),
  );
}

/** cinder's ATTACH_STATUS_MAP: attach_status → volume status where they differ. */
const ATTACH_STATUS_MAP: Record<string, string> = { attached: 'in-use', detached: 'available' };

export interface VolumeDetachedResult {
  /** What was written to the volume (cinder's volume_updates). */
  volumeUpdates: { attach_status: string; status?: string };
  /** What was written to the attachment, or null when it did not exist (cinder's attachment_updates). */
  attachmentUpdates: { deleted: true; deleted_at: Date; attach_status: 'detached'; detach_time: Date } | null;
}

/**
 * db.volume_detached(volume_id, attachment_id): soft-deletes the attachment (attach_status
 * 'detached', detach_time = deleted_at = now), then derives the volume's attach_status from the
 * remaining live attachments not in an error_* state (alphabetically first: attached > attaching >
 * detaching > reserved; none → 'detached') and its status (attached → in-use, detached → available,
 * else the same). The status is left alone while a migration or upload owns it, as in cinder. The
 * volume row is locked (FOR UPDATE on MySQL) for the duration.
 */
export async function volumeDetached(db: DbHandle, volumeId: string, attachmentId: string): Promise<VolumeDetachedResult> {
  return retryOnDeadlock(() =>
    db.transaction(async (trx) => {
      let vq = trx.selectFrom('volumes').selectAll().where('id', '=', volumeId).where('deleted', '=', false);
      if (db.dialect === 'mysql') vq = vq.forUpdate();
      const volume = await vq.executeTakeFirst();
      if (!volume) throw volumeNotFound(volumeId);
      const now = db.now();

      let attachmentUpdates: VolumeDetachedResult['attachmentUpdates'] = null;
      const att = await trx.selectFrom('volume_attachment').select('id').where('id', '=', attachmentId).where('deleted', '=', false).executeTakeFirst();
      if (att) {
        attachmentUpdates = { deleted: true, deleted_at: now, attach_status: 'detached', detach_time: now };
        await trx.updateTable('volume_attachment').set({ ...attachmentUpdates, updated_at: now }).where('id', '=', attachmentId).execute();
      }

      const first = await trx
        .selectFrom('volume_attachment')
        .select('attach_status')
        .where('volume_id', '=', volumeId)
        .where('deleted', '=', false)
        .where('attach_status', 'not like', 'error_%') // startswith('error_'): '_' unescaped, as cinder emits it
        .orderBy('attach_status', 'asc')
        .limit(1)
        .executeTakeFirst();
      const attachStatus = first?.attach_status || 'detached';
      const status = ATTACH_STATUS_MAP[attachStatus] ?? attachStatus;

      const volumeUpdates: VolumeDetachedResult['volumeUpdates'] = { attach_status: attachStatus };
      if (
        attachStatus !== 'detached' ||
        (!volume.migration_status && volume.status !== 'uploading') ||
        volume.migration_status === 'success' ||
        volume.migration_status === 'error'
      ) {
        volumeUpdates.status = status;
      }
      await trx.updateTable('volumes').set({ ...volumeUpdates, updated_at: now }).where('id', '=', volumeId).execute();
      return { volumeUpdates, attachmentUpdates };
    }),
  );
}

/**
 * attachment_destroy: attach_status 'deleted', deleted, deleted_at = now, updated_at kept; its
 * attachment_specs rows soft-deleted too. Returns the values written.
 */
export async function destroy(db: DbHandle, id: string): Promise<{ attach_status: 'deleted'; deleted: true; deleted_at: Date }> {
  const now = db.now();
  await db.transaction(async (trx) => {
    await trx
      .updateTable('volume_attachment')
      .set((eb) => ({ attach_status: 'deleted', deleted: true, deleted_at: now, updated_at: eb.ref('updated_at') }))
      .where('id', '=', id)
      .where('deleted', '=', false)
      .execute();
    await trx
      .updateTable('attachment_specs')
      .set((eb) => ({ deleted: true, deleted_at: now, updated_at: eb.ref('updated_at') }))
      .where('attachment_id', '=', id)
      .where('deleted', '=', false)
      .execute();
  });
  return { attach_status: 'deleted', deleted: true, deleted_at: now };
}
