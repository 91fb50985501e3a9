// init_host recovery (manager.py init_host, do_cleanup, _do_cleanup): ensure_export of in-use
// volumes with the initiators the database says are attached, then the workers rows a crash left
// behind: creating -> error, deleting -> delete again.
// Beyond cinder (which leaves both stuck):
//  - `extending` volumes (not cleanable in cinder: a crash mid-extend leaves them `extending`
//    forever) go back to available/in-use with the size the backend really has;
//  - `reserved` volumes (cinder-api's attachment reservation) keep no export a crashed
//    attachment_update made: cinder-api's attachment_delete of a `reserved` attachment never calls
//    the volume service, so an export/ACL left there would never be removed;
//  - exports, CHAP accounts and ACLs that belong to no volume are swept (leftover-exports.ts).
// And unlike cinder, which answers nothing until every export is back, only the quick part runs
// before RPC is served (extends a crash interrupted, the workers rows); the exports are restored
// in the background (export-restore.ts), and a connection call for a volume not restored yet
// restores that one first.
import { cleanupTemporaryFiles } from '../../image/conversion-dir.js';
import { logDropped } from '../../log.js';
import { forEachLimited } from '../../concurrency/for-each-limited.js';
import type { Volume } from '../../db/index.js';
import { attachedInitiators } from './attached-initiators.js';
import { driverVolume, errorMessage, isOurs, volumeNameOf, type FlowDeps } from './common.js';
import { volumeConnectionLockName } from './connection-locks.js';
import { cleanWorkers } from './cleanup.js';
import { syncReplicationStatus } from './replication.js';
import { ExportRestore, RECOVERY_CONCURRENCY, type RestoreOutcome } from './export-restore.js';
import { removeLeftoverExports } from './leftover-exports.js';
import { recoverInterruptedMigrations } from './migration-recovery.js';

export interface InitHostReport {
  exported: number;
  exportFailures: number;
  cleaned: Array<{ type: string; id: string; status: string; action: string }>;
  /** what the start-up sweep removed (known once the background restore has begun) */
  leftovers: { exports: number; accounts: number };
  /** resolves when the background restore of exports is done */
  restored: Promise<void>;
}

/**
 * Recovers what needs it before RPC is served, then starts the restore of exports on `restore`
 * (in the background) and returns. Without `restore`, everything is done before returning, as
 * cinder does.
 */
export async function initHost(deps: FlowDeps, restore?: ExportRestore): Promise<InitHostReport> {
  const report: InitHostReport = { exported: 0, exportFailures: 0, cleaned: [], leftovers: { exports: 0, accounts: 0 }, restored: Promise.resolve() };
  const log = deps.logger;
  const t0 = Date.now();
  const volumes = await deps.db.volumes.listByHost(deps.service.host);
  // An extend a crash interrupted is settled before RPC is served: its status and size are
  // rewritten, and the callers that read them (cinder-api, an operator) expect them final.
  const extending = volumes.filter((v) => v.status === 'extending');
  await forEachLimited(extending, RECOVERY_CONCURRENCY, (v) => deps.locks.run(volumeConnectionLockName(v.id), async () => void (await restoreAtStart(deps, v.id, report))));
  await doCleanup(deps, report);
  await recoverInterruptedMigrations(deps, volumes).catch(logDropped(log, 'ending the migrations a crash interrupted', 'they stay migrating until the next start; cinder reset-state ends them by hand'));
  await removeConversionLeftovers(deps);
  await syncReplicationStatus(deps).catch(logDropped(log, 'recording the replication status of the service', 'the services row keeps not-capable; failover-host is refused all the same'));

  const background = restore ?? new ExportRestore(deps);
  const rest = volumes.filter((v) => v.status !== 'extending');
  const round = background.startRound(
    'start',
    rest.map((v) => ({ volumeId: v.id, run: () => restoreAtStart(deps, v.id, report) })),
    {
      before: async () => {
        report.leftovers = await removeLeftoverExports(deps);
      },
    },
  );
  report.restored = round.then(
    (c) => {
      log.info(
        { exported: report.exported, failures: report.exportFailures, volumes: c.volumes, cleaned: report.cleaned.length, ms: Date.now() - t0 },
        'init_host recovery done',
      );
    },
    (err: unknown) => {
      log.error({ err }, `init_host restore of exports failed: ${errorMessage(err)}`);
    },
  );
  if (restore) {
    if (rest.length > 0) log.info({ volumes: rest.length }, `restoring the exports of ${rest.length} volume(s) in the background; serving RPC meanwhile`);
  } else {
    await report.restored;
  }
  return report;
}

/**
 * One volume at start-up, holding its connection lock: init_host's rules, with the row and its
 * attachments read now (an attach may have come first through restoreFirst).
 */
async function restoreAtStart(deps: FlowDeps, volumeId: string, report: InitHostReport): Promise<RestoreOutcome> {
  const log = deps.logger;
  let vol = await deps.db.volumes.find(volumeId);
  if (!vol || !isOurs(deps, vol.host)) return 'skipped';
  const { live, initiators, hostNqns, connectors, given } = await attachedInitiators(deps, vol.id);
  let grown = false;
  if (vol.status === 'extending') {
    const r = await recoverExtending(deps, vol, live > 0);
    if (!r) return 'failed';
    ({ vol, grown } = r);
  }
  if (vol.status === 'reserved' && initiators.length === 0 && hostNqns.length === 0) {
    // nothing attached or attaching: an export here is what a killed attachment_update left
    // A crash between create_export and the provider_* save leaves a target but no
    // provider_location, and the drivers skip remove_export without one (as cinder's tgt does):
    // the removal is asked for by the volume's name whatever provider_location says.
    const dv = driverVolume(vol);
    try {
      await deps.exports.removeExport({ ...dv, providerLocation: dv.providerLocation ?? 'unsaved-export' });
    } catch (err) {
      log.error({ err, volume_id: vol.id }, `Failed to remove the export a crash left on reserved volume ${vol.id}: ${errorMessage(err)}`);
    }
    return 'skipped';
  }
  if (vol.status !== 'in-use' && vol.status !== 'reserved') return 'skipped';
  try {
    await deps.exports.ensureExport(driverVolume(vol), initiators, connectors, given);
    report.exported += 1;
  } catch (err) {
    report.exportFailures += 1;
    log.error({ err, volume_id: vol.id }, `Failed to re-export volume ${vol.id}: setting to error status (${errorMessage(err)})`);
    await deps.db.volumes.update(vol.id, { status: 'error' });
    return 'failed';
  }
  if (grown) {
    const v = vol;
    await deps.exports.extendTarget(driverVolume(v)).catch((err: unknown) => log.warn({ err, volume_id: v.id }, 'extend_target after extend recovery failed'));
  }
  return 'restored';
}

/**
 * A volume left `extending` by a crash: the backend's real size tells whether the extend happened.
 * The API's quota reservation is unknown here (it came in the lost RPC message) and expires.
 */
async function recoverExtending(deps: FlowDeps, vol: Volume, attached: boolean): Promise<{ vol: Volume; grown: boolean } | null> {
  const log = deps.logger;
  const dbSize = vol.size ?? 0;
  let real: number;
  try {
    real = await deps.driver.manageExistingGetSize({ 'source-name': volumeNameOf(vol) });
  } catch (err) {
    log.error({ err, volume_id: vol.id }, `Volume ${vol.id} was left extending and its backend size cannot be read: setting to error_extending (${errorMessage(err)})`);
    await deps.db.volumes.update(vol.id, { status: 'error_extending' });
    return null;
  }
  const size = Math.max(real, dbSize);
  const status = attached ? 'in-use' : 'available';
  await deps.db.volumes.update(vol.id, { size, status });
  log.warn(
    { volume_id: vol.id, db_size: dbSize, backend_size: real, size, status },
    `Volume ${vol.id} was left extending by a crash: the backend has ${real} GiB, so the extend ${size > dbSize ? 'happened' : 'did not happen'}; size ${size} GiB, status ${status}`,
  );
  return { vol: { ...vol, size, status }, grown: size > dbSize };
}

async function doCleanup(deps: FlowDeps, report: InitHostReport): Promise<void> {
  const serviceId = deps.service.serviceRecord?.id;
  if (serviceId === undefined) return;
  report.cleaned.push(...(await cleanWorkers(deps, { serviceId })));
}

/**
 * cinder's init_host cleanup_temporary_file(backend_name): image downloads and upload conversions
 * a crash interrupted leave files in image_conversion_dir that nothing else removes.
 */
async function removeConversionLeftovers(deps: FlowDeps): Promise<void> {
  if (!deps.images) return;
  const { conversionDir, backendName } = deps.images.options;
  try {
    const removed = await cleanupTemporaryFiles(conversionDir, backendName);
    if (removed.length) deps.logger.info(`removed ${removed.length} temporary image file(s) left in ${conversionDir}: ${removed.join(', ')}`);
  } catch (err) {
    deps.logger.warn({ err }, `could not clean ${conversionDir}: ${errorMessage(err)}; the files stay until the next start`);
  }
}
