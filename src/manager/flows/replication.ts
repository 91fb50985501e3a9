// freeze_host, thaw_host, failover, failover_completed and the replication-group methods
// (manager.py) for a backend without replication, which is what the LVM and file drivers are:
// their freeze_backend/thaw_backend are cinder's BaseVD no-ops and their failover_host,
// failover_completed, enable/disable/failover_replication are BaseVD's NotImplementedError. So
// each method does what cinder-volume does around that driver call, with the same outcome:
//  - freeze_host/thaw_host flip the services row (disabled, "frozen"); the scheduler then places
//    nothing here and cinder-api refuses changes to this backend's volumes until the thaw;
//  - failover marks this backend's non-replicated volumes and their snapshots error (as cinder
//    does before asking the driver), then the driver cannot fail over: the service ends disabled
//    with replication_status failover-error, and the operator's way back is cinder's (thaw and
//    `cinder-manage` to reset, or failover-host --backend_id default).
// cinder-api normally refuses a failover before it gets here (the service's replication_status
// is not enabled), so the failover path is only reached by a caller that skips that check.
import type { Group, Service, Volume } from '../../db/index.js';
import { invalidGroup, invalidVolume, notImplementedError, serviceNotFound, replicationGroupError, volumeBackendApiException } from '../../errors.js';
import { VOLUME_BINARY } from '../../db/index.js';
import type { RpcArguments } from '../rpc-arguments.js';
import { errorMessage, requireDriver, type FlowDeps } from './common.js';

/** cinder's FAILBACK_SENTINEL: failing back to the primary backend. */
const FAILBACK_SENTINEL = 'default';

/** The replication statuses of a volume that is not replicated. */
const NOT_REPLICATED = new Set(['disabled', 'not-capable']);

/** _get_service: this backend's live services row. */
async function ownService(deps: FlowDeps): Promise<Service> {
  const row = await deps.db.services.getByHostAndBinary(deps.service.host, VOLUME_BINARY);
  if (!row) throw serviceNotFound(null, deps.service.host);
  return row;
}

/**
 * init_host_with_rpc's part: a service that is not failed over records whether its driver
 * replicates. Neither driver does (their stats carry no replication_enabled), so the row says
 * `disabled`, as cinder-volume leaves it, where registration wrote `not-capable`. cinder-api
 * refuses failover-host on either, with the same error.
 */
export async function syncReplicationStatus(deps: FlowDeps): Promise<void> {
  const service = await deps.db.services.getByHostAndBinary(deps.service.host, VOLUME_BINARY);
  if (!service || service.replication_status === 'failed-over' || service.replication_status === 'disabled') return;
  await deps.db.services.update(service.id, { replication_status: 'disabled' });
}

export async function freezeHost(deps: FlowDeps): Promise<boolean> {
  // driver.freeze_backend: nothing for this backend to do (BaseVD returns True).
  const service = await ownService(deps);
  await deps.db.services.update(service.id, { disabled: true, disabled_reason: 'frozen' });
  deps.logger.info('Set backend status to frozen successfully.');
  return true;
}

export async function thawHost(deps: FlowDeps): Promise<boolean> {
  // driver.thaw_backend: nothing to do (BaseVD returns True), so the thaw always goes through.
  const service = await ownService(deps);
  await deps.db.services.update(service.id, { disabled: false, disabled_reason: '' });
  deps.logger.info('Thawed backend successfully.');
  return true;
}

export async function failover(deps: FlowDeps, _ctx: Record<string, unknown>, args: RpcArguments<'failover'>): Promise<void> {
  const secondary = args.secondary_backend_id;
  const service = await ownService(deps);
  const volumes: Volume[] = await deps.db.volumes.listByHost(deps.service.host);
  for (const vol of volumes) {
    // A volume whose replication_status is anything else (even unset) counts as replicated and
    // is left to the driver, as in cinder.
    if (!NOT_REPLICATED.has(vol.replication_status ?? '')) continue;
    if (secondary === FAILBACK_SENTINEL) continue;
    await deps.db.volumes.update(vol.id, { previous_status: vol.status, status: 'error', replication_status: 'not-capable' });
    for (const snap of await deps.db.snapshots.listByVolume(vol.id)) await deps.db.snapshots.update(snap.id, { status: 'error' });
  }
  // failover_host: this backend has no replication target to fail over to (BaseVD's
  // NotImplementedError), which cinder records as a failed failover.
  deps.logger.error(
    `Error encountered during failover on host: ${deps.service.host} to ${String(secondary)}: this backend has no replication. ` +
      'The service is left disabled with replication_status failover-error and its non-replicated volumes in error, as cinder-volume leaves them; ' +
      'to recover, `cinder reset-state` the volumes and snapshots, restart cinderblock (its start sets replication_status back to disabled, as cinder-volume does) and `cinder service-enable` the service',
  );
  await deps.db.services.update(service.id, { disabled: true, replication_status: 'failover-error' });
}

/**
 * The service fields finish_failover sends (replication_status, active_backend_id, disabled,
 * disabled_reason); anything else in the dict is not a failover's to change and is dropped.
 */
function failoverUpdates(updates: Record<string, unknown>): Partial<Pick<Service, 'replication_status' | 'active_backend_id' | 'disabled' | 'disabled_reason'>> {
  const out: Partial<Pick<Service, 'replication_status' | 'active_backend_id' | 'disabled' | 'disabled_reason'>> = {};
  for (const key of ['replication_status', 'active_backend_id', 'disabled_reason'] as const) {
    const v = updates[key];
    if (typeof v === 'string' || v === null) out[key] = v;
  }
  if (typeof updates.disabled === 'boolean') out.disabled = updates.disabled;
  return out;
}

export async function failoverCompleted(deps: FlowDeps, _ctx: Record<string, unknown>, args: RpcArguments<'failover_completed'>): Promise<void> {
  const service = await ownService(deps);
  // driver.failover_completed is BaseVD's NotImplementedError: cinder records the driver error.
  const msg = 'Driver reported error during replication failover completion.';
  deps.logger.error(msg);
  await deps.db.services.update(service.id, { ...failoverUpdates(args.updates), disabled: true, disabled_reason: msg, replication_status: 'error' });
}

/** The group, refreshed, with the replication status `expected`, and its volumes in that status too. */
async function replicationGroup(deps: FlowDeps, groupId: string, expected: string, verb: string, allowAttached?: boolean): Promise<{ group: Group; volumes: Volume[] }> {
  const group = await deps.db.groups.get(groupId);
  if (group.replication_status !== expected) {
    throw invalidGroup(`Replication status in group ${group.id} is not ${expected}. Cannot ${verb} replication.`);
  }
  const volumes = await deps.db.groups.volumes(group.id);
  for (const vol of volumes) {
    if (allowAttached === false && vol.status === 'in-use') {
      throw invalidVolume(`Volume ${vol.id} is attached but allow_attached_volume flag is False. Cannot failover replication.`);
    }
    if (vol.replication_status !== expected) throw invalidVolume(`Replication status in volume ${vol.id} is not ${expected}. Cannot ${verb} replication.`);
  }
  return { group, volumes };
}

/**
 * What enable/disable/failover_replication share: the status checks, then the driver, which
 * cannot. A driver that is not initialised is a CinderException: cinder marks the group and its
 * volumes error and raises ReplicationGroupError; the driver's NotImplementedError is not one,
 * so it goes back unchanged and the group keeps its *-ing status, as with cinder-volume.
 */
async function replicationAction(deps: FlowDeps, groupId: string, expected: string, verb: string, label: string, allowAttached?: boolean): Promise<never> {
  const { group, volumes } = await replicationGroup(deps, groupId, expected, verb, allowAttached);
  try {
    requireDriver(deps);
  } catch (err) {
    await deps.db.groups.update(group.id, { status: 'error', replication_status: 'error' });
    for (const vol of volumes) await deps.db.volumes.update(vol.id, { status: 'error', replication_status: 'error' });
    const reason = `${label} replication group failed: ${errorMessage(err)}.`;
    throw replicationGroupError(group.id, reason, err);
  }
  deps.logger.error({ group_id: group.id }, `${label} replication of group ${group.id}: this backend has no replication`);
  throw notImplementedError('');
}

export async function enableReplication(deps: FlowDeps, _ctx: Record<string, unknown>, args: RpcArguments<'enable_replication'>): Promise<void> {
  await replicationAction(deps, args.group.data.id, 'enabling', 'enable', 'Enable');
}

export async function disableReplication(deps: FlowDeps, _ctx: Record<string, unknown>, args: RpcArguments<'disable_replication'>): Promise<void> {
  await replicationAction(deps, args.group.data.id, 'disabling', 'disable', 'Disable');
}

export async function failoverReplication(deps: FlowDeps, _ctx: Record<string, unknown>, args: RpcArguments<'failover_replication'>): Promise<void> {
  await replicationAction(deps, args.group.data.id, 'failing-over', 'failover', 'Failover', args.allow_attached_volume);
}

/** No replication_device is configured on this backend: no targets, once the group is known. */
export async function listReplicationTargets(deps: FlowDeps, _ctx: Record<string, unknown>, args: RpcArguments<'list_replication_targets'>): Promise<{ replication_targets: never[] }> {
  const id = args.group.data.id;
  if (!(await deps.db.groups.find(id))) throw volumeBackendApiException(`Get replication targets failed. Group ${id} not found.`);
  return { replication_targets: [] };
}
