// The start-up sweep of exports a crash left behind. A kill -9 between two steps of an export
// (target made but provider_location not saved; CHAP account made but not bound yet; target
// removed but not its account) leaves objects nothing in the database points at, so no later
// flow removes them: delete_volume skips remove_export without a provider_location. Here, before
// the restore of exports, the target helper lists what it finds with our target_prefix (live on
// the daemon, or in its own record), the exports keep those whose backing device is one of this
// backend's volumes, and this removes the ones no volume needs:
//  - no live volume row has that name (absent, or deleted), or
//  - the volume is this backend's, `available` or `error`, with no attachment attached or
//    attaching (a volume in any other status is left alone: a backup, an upload or a migration
//    may be using its export).
// Then the helper deletes the CHAP accounts it recorded that no target uses. Other owners'
// targets and accounts are never touched: the backing device and the helper's record say whose.
import type { BackendExport } from '../../../drivers/exports.js';
import { attachedInitiators } from './attached-initiators.js';
import { uuidAfterPrefix } from '../../validation/uuid.js';
import { errorMessage, volumeNameOf, type FlowDeps } from './common.js';
import { volumeConnectionLockName } from './connection-locks.js';

const REMOVABLE = new Set(['available', 'error']);

export interface LeftoverReport {
  exports: number;
  accounts: number;
}

export async function removeLeftoverExports(deps: FlowDeps): Promise<LeftoverReport> {
  const report: LeftoverReport = { exports: 0, accounts: 0 };
  const found = await deps.exports.findExports();
  if (found.length > 0) {
    const mine = new Map((await deps.db.volumes.listByHost(deps.service.host)).map((v) => [volumeNameOf(v), v.id]));
    for (const f of found) {
      const uuid = uuidAfterPrefix(f.volumeName, 'volume-');
      if (!uuid) continue;
      const volumeId = mine.get(f.volumeName) ?? uuid;
      // decided and done holding the volume's connection lock: cinder-api may reserve it meanwhile
      await deps.locks.run(volumeConnectionLockName(volumeId), async () => {
        const why = await leftoverReason(deps, f, mine.has(f.volumeName) ? volumeId : null, uuid);
        if (!why) return;
        try {
          await deps.exports.removeExport({ id: volumeId, name: f.volumeName, size: 0, providerLocation: 'leftover', providerAuth: null, multiattach: false });
          report.exports += 1;
          deps.logger.warn({ volume_id: volumeId, iqn: f.iqn, live: f.live }, `Removed export ${f.iqn} that a crash left: ${why}`);
        } catch (err) {
          deps.logger.error(
            { err, volume_id: volumeId, iqn: f.iqn },
            `Could not remove export ${f.iqn} that a crash left (${why}): ${errorMessage(err)}. Remove it with the target tool (tgt-admin --delete / targetcli)`,
          );
        }
      });
    }
  }
  try {
    report.accounts = await deps.exports.removeOrphanAccounts();
  } catch (err) {
    deps.logger.error({ err }, `Could not remove the CHAP accounts a crash left: ${errorMessage(err)}`);
  }
  if (report.exports > 0 || report.accounts > 0) {
    deps.logger.warn({ exports: report.exports, accounts: report.accounts }, `start-up sweep removed ${report.exports} export(s) and ${report.accounts} CHAP account(s) that belonged to no volume`);
  }
  return report;
}

/** Why the export is not needed, or null to keep it. */
async function leftoverReason(deps: FlowDeps, f: BackendExport, ourVolumeId: string | null, uuid: string): Promise<string | null> {
  if (ourVolumeId) {
    const row = await deps.db.volumes.find(ourVolumeId);
    if (!row) return `volume ${ourVolumeId} is deleted`;
    if (volumeNameOf(row) !== f.volumeName || !REMOVABLE.has(row.status ?? '')) return null;
    if ((await attachedInitiators(deps, row.id)).live > 0) return null;
    return `volume ${row.id} is ${row.status} and attached nowhere`;
  }
  // Not a live volume of this backend by that name. A live row by that id (another service's,
  // or one whose data moved under another name) is not ours to judge.
  if (await deps.db.volumes.find(uuid)) return null;
  return (await deps.db.volumes.find(uuid, { readDeleted: 'yes' })) ? `volume ${uuid} is deleted` : `no volume ${uuid} exists`;
}
