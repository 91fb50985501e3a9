// objects/volume.py finish_volume_migration, on rows: the end of a generic migration swaps the two
// volumes' records so the volume keeps its id while pointing at the copy on the destination, and
// the temporary id now names the source's old data, which is then deleted.
import type { Volume } from '../../db/index.js';

type Values = Partial<Omit<Volume, 'id'>>;

/**
 * Columns never swapped: the ids, provider_location (update_migrated_volume has set it on both
 * rows already), use_quota (the temporary row never counts), and the bookkeeping. cinder swaps
 * created_at too, but its temporary row was created with the source's created_at, so the volume
 * keeps its own; here the temporary row has its own created_at, so it is left alone instead.
 */
const NOT_SWAPPED = new Set(['id', 'provider_location', 'use_quota', 'created_at', 'updated_at', 'deleted', 'deleted_at']);

/** The updates for each row; both are written, source first. */
export function finishVolumeMigration(src: Volume, dst: Volume): { source: Values; destination: Values } {
  const source: Record<string, unknown> = {};
  const destination: Record<string, unknown> = {};
  for (const key of Object.keys(dst) as Array<keyof Volume>) {
    if (NOT_SWAPPED.has(key)) continue;
    const value = dst[key];
    let valueToDst: unknown = src[key];
    switch (key) {
      case '_name_id':
        // The temporary row must name the source's old data. update_migrated_volume gave it the
        // source's old _name_id; without one, the old data is named by the source's id.
        if (!dst._name_id) destination._name_id = src.id;
        continue;
      case 'volume_type_id':
        // Only the kept volume needs the (possibly new) type; the other is deleted.
        source.volume_type_id = value;
        continue;
      case 'migration_status':
        source.migration_status = null;
        destination.migration_status = 'deleting';
        continue;
      case 'display_description':
        valueToDst = `migration src for ${src.id}`;
        break;
      case 'status':
        valueToDst = 'deleting';
        break;
    }
    source[key] = value;
    destination[key] = valueToDst;
  }
  return { source: source as Values, destination: destination as Values };
}
