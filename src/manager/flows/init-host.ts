// init_host recovery (manager.py init_host, do_cleanup, _do_cleanup): ensure_export of in-use
// volumes with the initiators the database says are attached, then the workers rows a crash left
// behind: creating -> error, deleting -> delete again.
import type { Connector } from '../../../drivers/driver.js';
import { driverVolume, errorMessage, type FlowDeps } from './common.js';
import { deleteVolumeById } from './delete-extend.js';
import { deleteSnapshotLocked } from './snapshots.js';
import { withLock } from './common.js';

export interface InitHostReport {
  exported: number;
  exportFailures: number;
  cleaned: Array<{ type: string; id: string; status: string; action: string }>;
}

export async function initHost(deps: FlowDeps): Promise<InitHostReport> {
  const report: InitHostReport = { exported: 0, exportFailures: 0, cleaned: [] };
  const log = deps.logger;
  const volumes = await deps.db.volumes.listByHost(deps.service.host);
  for (const vol of volumes) {
    if (vol.status !== 'in-use') continue;
    const initiators: string[] = [];
    for (const a of await deps.db.attachments.listByVolume(vol.id)) {
      if ((a.attach_status !== 'attached' && a.attach_status !== 'attaching') || !a.connector) continue;
      try {
        const c = JSON.parse(a.connector) as Connector;
        if (typeof c.initiator === 'string' && !initiators.includes(c.initiator)) initiators.push(c.initiator);
      } catch {
        // an unreadable connector grants nothing
      }
    }
    try {
      await deps.driver.ensureExport(driverVolume(vol), initiators);
      report.exported += 1;
    } catch (err) {
      report.exportFailures += 1;
      log.error({ err, volume_id: vol.id }, `Failed to re-export volume ${vol.id}: setting to error status (${errorMessage(err)})`);
      await deps.db.volumes.update(vol.id, { status: 'error' });
    }
  }
  await doCleanup(deps, report);
  log.info({ exported: report.exported, cleaned: report.cleaned.length }, 'init_host recovery done');
  return report;
}

async function doCleanup(deps: FlowDeps, report: InitHostReport): Promise<void> {
  const serviceId = deps.service.serviceRecord?.id;
  if (serviceId === undefined) return;
  const log = deps.logger;
  for (const worker of await deps.db.workers.listByService(serviceId)) {
    if (!(await deps.db.workers.claimForCleanup(serviceId, worker))) continue;
    const type = worker.resource_type;
    const id = worker.resource_id;
    let action = 'skipped';
    try {
      if (type === 'Volume') {
        const vol = await deps.db.volumes.find(id);
        if (vol && vol.status === worker.status) {
          if (vol.status === 'deleting') {
            await deps.db.workers.destroy({ id: worker.id });
            await deleteVolumeById(deps, id, { unmanageOnly: false, cascade: true });
            action = 'deleted';
          } else if (vol.status === 'creating' || vol.status === 'downloading') {
            await deps.db.volumes.update(id, { status: 'error' });
            action = 'error';
          }
        }
      } else if (type === 'Snapshot') {
        const snap = await deps.db.snapshots.find(id);
        if (snap && snap.status === worker.status) {
          if (snap.status === 'deleting') {
            await deps.db.workers.destroy({ id: worker.id });
            await withLock(deps, `${id}-delete_snapshot`, true, () => deleteSnapshotLocked(deps, id, false));
            action = 'deleted';
          } else if (snap.status === 'creating') {
            await deps.db.snapshots.update(id, { status: 'error' });
            action = 'error';
          }
        }
      }
    } catch (err) {
      log.error({ err, resource_type: type, resource_id: id }, `cleanup of ${type} ${id} failed: ${errorMessage(err)}`);
      action = 'failed';
    }
    await deps.db.workers.destroy({ id: worker.id }).catch(() => undefined);
    report.cleaned.push({ type, id, status: worker.status, action });
    log.info(`Cleaned ${type} with id ${id} and status ${worker.status}: ${action}`);
  }
}
