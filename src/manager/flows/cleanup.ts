// do_cleanup (cinder/manager.py CleanableManager.do_cleanup with volume/manager.py _do_cleanup):
// the workers rows a request names are claimed by this service and their resources cleaned as
// init_host does at start: a volume or snapshot left `creating` goes to error, one left `deleting`
// is deleted again. cinder-api's `cinder work-cleanup` (3.24) casts it here; init_host runs the
// same loop for this service's own rows.
import type { WorkerListFilters, WorkerRow } from '../../db/index.js';
import { logDropped } from '../../log.js';
import type { RpcArguments } from '../rpc-arguments.js';
import { errorMessage, withLock, type FlowDeps } from './common.js';
import { deleteVolumeById } from './delete-extend.js';
import { deleteSnapshotLocked } from './snapshots.js';

export interface CleanedResource {
  type: string;
  id: string;
  status: string;
  /** error, deleted, skipped (gone or status moved on), failed (the row went back to its owner) */
  action: string;
}

/**
 * The cleanup loop for the workers rows matching `filters` (updated no later than `until`).
 * Each row is claimed first, so two services cleaning at once never both act on one resource.
 */
export async function cleanWorkers(deps: FlowDeps, filters: WorkerListFilters): Promise<CleanedResource[]> {
  const claimer = deps.service.serviceRecord?.id;
  if (claimer === undefined) return [];
  const log = deps.logger;
  const cleaned: CleanedResource[] = [];
  const rows = await deps.db.workers.list({ ...filters, until: filters.until ?? deps.db.now() });
  for (const worker of rows) {
    if (!(await deps.db.workers.claimForCleanup(claimer, worker))) continue;
    const { resource_type: type, resource_id: id, status } = worker;
    let action: string;
    try {
      action = await cleanResource(deps, worker);
    } catch (err) {
      log.error({ err, resource_type: type, resource_id: id }, `Could not perform cleanup of ${type} ${id}: ${errorMessage(err)}`);
      // As cinder: the row goes back to the service that held it, so a later cleanup retries it.
      await deps.db.workers
        .update(worker.id, { serviceId: worker.service_id, updatedAt: worker.updated_at_raw ?? worker.updated_at ?? deps.db.now() })
        .catch(logDropped(log, `returning the workers row of ${type} ${id} to service ${String(worker.service_id)}`, 'the row stays claimed by this service; run cinder work-cleanup again'));
      cleaned.push({ type, id, status, action: 'failed' });
      continue;
    }
    if (action !== 'deleted') {
      // a delete that ran removed its own row (it holds one while it works)
      await deps.db.workers.destroy({ id: worker.id }).catch(logDropped(log, `removing the workers row of ${type} ${id}`, 'it is cleaned again at the next start or cleanup'));
    }
    cleaned.push({ type, id, status, action });
    log.info(`Cleaned ${type} with id ${id} and status ${status}: ${action}`);
  }
  return cleaned;
}

/** _do_cleanup for one claimed row; what was done. */
async function cleanResource(deps: FlowDeps, worker: WorkerRow): Promise<string> {
  const { resource_type: type, resource_id: id } = worker;
  if (type === 'Volume') {
    const vol = await deps.db.volumes.find(id);
    if (!vol || vol.status !== worker.status) return 'skipped';
    if (vol.status === 'deleting') {
      await deps.db.workers.destroy({ id: worker.id });
      await deleteVolumeById(deps, id, { unmanageOnly: false, cascade: true });
      return 'deleted';
    }
    if (vol.status === 'uploading') {
      await deps.db.volumes.updateStatusBasedOnAttachment(id);
      return 'restored';
    }
    if (vol.status === 'creating' || vol.status === 'downloading') {
      await deps.db.volumes.update(id, { status: 'error' });
      return 'error';
    }
    return 'skipped';
  }
  if (type === 'Snapshot') {
    const snap = await deps.db.snapshots.find(id);
    if (!snap || snap.status !== worker.status) return 'skipped';
    if (snap.status === 'deleting') {
      await deps.db.workers.destroy({ id: worker.id });
      await withLock(deps, `${id}-delete_snapshot`, true, () => deleteSnapshotLocked(deps, id, false));
      return 'deleted';
    }
    if (snap.status === 'creating') {
      await deps.db.snapshots.update(id, { status: 'error' });
      return 'error';
    }
  }
  return 'skipped';
}

/** The RPC method: the request's filters as cinder-api built them (service, resource, until). */
export async function doCleanup(deps: FlowDeps, _ctx: Record<string, unknown>, args: RpcArguments<'do_cleanup'>): Promise<void> {
  const req = args.cleanup_request;
  deps.logger.info(`Initiating service ${String(req.service_id)} cleanup`);
  await cleanWorkers(deps, { serviceId: req.service_id, resourceType: req.resource_type, resourceId: req.resource_id, until: req.until });
  deps.logger.info(`Service ${String(req.service_id)} cleanup completed.`);
}
