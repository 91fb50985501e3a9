// The backups columns the volume service writes: get_backup_device records the temporary volume
// or snapshot it made (backup.temp_volume_id / temp_snapshot_id, backup.save()), which
// cinder-backup deletes once the backup is done. Everything else of a backup is cinder-backup's.
import type { DbHandle } from './connect.js';

export async function setTemporaryResource(db: DbHandle, backupId: string, values: { temp_volume_id?: string; temp_snapshot_id?: string }): Promise<void> {
  await db.kysely
    .updateTable('backups')
    .set({ ...values, updated_at: db.now() })
    .where('id', '=', backupId)
    .execute();
}
