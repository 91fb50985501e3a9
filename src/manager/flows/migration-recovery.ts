// A migration its source agent did not live to finish. The source runs a generic migration
// (migrate-volume.ts) and marks the volume `migrating` while the destination is created and the
// data copied; a crash there leaves the volume in `maintenance` (or `retyping`) with
// migration_status `migrating`, which cinder-api refuses for every action but reset-state, and a
// temporary `target:<id>` row (with its backend object) that nothing ever deletes. cinder-volume
// leaves both as they are; at start-up the agent ends the migration as its own failure path would
// (_clean_temporary_volume while migrating, then migration_status error and the status back), so
// the volume is usable and migratable again and nothing is orphaned.
//
// `completing` is not touched: the rows may be half swapped, and which one holds the data is
// for the operator to read (cinderblock volume show), not to guess.
import type { Volume } from '../../db/index.js';
import { adminContext } from '../../rpc/context.js';
import { volumeObjectFromRow } from '../volume-object.js';
import { errorMessage, type FlowDeps } from './common.js';

export interface MigrationRecovery {
  /** source volumes whose interrupted migration was ended */
  ended: string[];
  /** volumes left `completing`, reported to the operator */
  completing: string[];
}

export async function recoverInterruptedMigrations(deps: FlowDeps, volumes: readonly Volume[]): Promise<MigrationRecovery> {
  const out: MigrationRecovery = { ended: [], completing: [] };
  for (const vol of volumes) {
    if (vol.migration_status === 'completing') {
      out.completing.push(vol.id);
      deps.logger.error(
        { volume_id: vol.id },
        `Volume ${vol.id} was left completing its migration by a crash: its row and the temporary volume's may be half swapped. Compare them (cinderblock volume show ${vol.id}) and fix with cinder reset-state --reset-migration-status.`,
      );
      continue;
    }
    if (vol.migration_status !== 'migrating') continue;
    const log = deps.logger.child({ volume_id: vol.id });
    const target = await deps.db.volumes.findMigrationTarget(vol.id);
    let targetNote = 'no temporary volume was made';
    if (target) {
      if (!deps.peers) {
        log.error(`Volume ${vol.id} was left migrating by a crash; its temporary volume ${target.id} on ${target.host} stays: this service has no RPC client to ask for its deletion. Delete it with cinder delete after reset-state.`);
        continue;
      }
      try {
        // through its own host's delete_volume, as the failure path does: the destination may be
        // another agent or cinder-volume, and only it may remove its backend object
        await deps.peers.deleteVolume(adminContext().toDict(), volumeObjectFromRow(target));
        targetNote = `its temporary volume ${target.id} on ${target.host} is being deleted`;
      } catch (err) {
        log.error({ err }, `Volume ${vol.id} was left migrating by a crash; asking ${target.host} to delete its temporary volume ${target.id} failed (${errorMessage(err)}): the migration stays as it is until the next start`);
        continue;
      }
    }
    const back = vol.status === 'maintenance' || vol.status === 'retyping' ? { status: vol.previous_status } : {};
    await deps.db.volumes.update(vol.id, { migration_status: 'error', ...back });
    out.ended.push(vol.id);
    log.warn(`Volume ${vol.id} was left migrating by a crash: ${targetNote}; migration_status error${back.status ? `, status ${back.status}` : ''}. It can be migrated again.`);
  }
  return out;
}
