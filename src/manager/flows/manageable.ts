// get_manageable_volumes, get_manageable_snapshots (manager.py, with the LVM driver's
// _get_manageable_resource_info and volume_utils.paginate_entries_list) and
// manage_existing_snapshot (flows/manager/manage_existing_snapshot.py).
//
// The driver lists what is on the backend (drivers/driver.ts BackendObject); the entries are
// filled here as cinder's LVM driver fills them: an object whose name carries the id of one of
// this backend's volumes (or snapshots) is "already managed" with that cinder_id, an open one is
// "<volume|snapshot> in use", anything else is safe to manage; a snapshot's entry names its origin.
import type { BackendObject } from '../../../drivers/driver.js';
import { invalidInput, snapshotNotFound } from '../../errors.js';
import { logDropped } from '../../log.js';
import { VersionedObject } from '../../rpc/ovo.js';
import type { RpcArguments } from '../rpc-arguments.js';
import { driverSnapshot, errorMessage, requireDriver, type FlowDeps } from './common.js';

type Kind = 'volume' | 'snapshot';

export interface ManageableEntry {
  reference: { 'source-name': string };
  size: number;
  safe_to_manage: boolean;
  reason_not_safe: string | null;
  cinder_id: string | null;
  extra_info: Record<string, string | null> | null;
  /** snapshots only: the origin on the backend */
  source_reference?: { 'source-name': string | null };
}

/** volume_utils.extract_id_from_{volume,snapshot}_name: what follows the template's prefix. */
function idFromName(kind: Kind, cinderName: string): string | null {
  const prefix = `${kind}-`;
  return cinderName.startsWith(prefix) && cinderName.length > prefix.length ? cinderName.slice(prefix.length) : null;
}

/** The entries of one kind, before pagination, from the backend's objects and cinder's ids. */
export function manageableEntries(kind: Kind, objects: readonly BackendObject[], cinderIds: ReadonlySet<string>): ManageableEntry[] {
  const entries: ManageableEntry[] = [];
  for (const o of objects) {
    if (o.isSnapshot !== (kind === 'snapshot')) continue;
    const potentialId = idFromName(kind, o.cinderName);
    const entry: ManageableEntry = { reference: { 'source-name': o.name }, size: o.size, safe_to_manage: true, reason_not_safe: null, cinder_id: null, extra_info: null };
    if (potentialId !== null && cinderIds.has(potentialId)) {
      entry.safe_to_manage = false;
      entry.reason_not_safe = 'already managed';
      entry.cinder_id = potentialId;
    } else if (o.inUse) {
      entry.safe_to_manage = false;
      entry.reason_not_safe = `${kind} in use`;
    }
    if (kind === 'snapshot') entry.source_reference = { 'source-name': o.origin };
    entries.push(entry);
  }
  return entries;
}

/** Python's repr of a flat dict of strings, as cinder's "marker not found" message prints it. */
function pyDict(d: Record<string, unknown>): string {
  const v = (x: unknown) => (typeof x === 'string' ? `'${x}'` : x === null ? 'None' : String(x));
  return `{${Object.entries(d).map(([k, x]) => `'${k}': ${v(x)}`).join(', ')}}`;
}

/** A dict field compares by its smallest value, as paginate_entries_list does. */
function sortValue(v: unknown): unknown {
  if (v !== null && typeof v === 'object') return Object.values(v as Record<string, unknown>).map(String).sort()[0];
  return v;
}

function sameReference(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}

/**
 * volume_utils.paginate_entries_list: sorted by the keys (a direction other than 'asc' is
 * descending), then from just after the marker (a JSON reference), skipping `offset`, at most
 * `limit`. cinder-api always sends a limit; none here means all.
 */
export function paginateEntries<E extends { reference: Record<string, unknown> }>(
  entries: E[],
  marker: string | null,
  limit: number | null,
  offset: number | null,
  sortKeys: readonly string[] | null,
  sortDirs: readonly string[] | null,
): E[] {
  const keys = sortKeys ?? [];
  const dirs = sortDirs ?? [];
  const pairs = keys.slice(0, Math.min(keys.length, dirs.length)).map((k, i) => ({ key: k.trim(), asc: dirs[i] === 'asc' }));
  const sorted = [...entries].sort((l, r) => {
    for (const { key, asc } of pairs) {
      const a = sortValue((l as Record<string, unknown>)[key]) as string | number;
      const b = sortValue((r as Record<string, unknown>)[key]) as string | number;
      if (a === b) continue;
      return asc ? (a < b ? -1 : 1) : a > b ? -1 : 1;
    }
    return 0;
  });
  let start = 0;
  if (marker) {
    let ref: unknown;
    try {
      ref = JSON.parse(marker);
    } catch {
      throw invalidInput(`marker ${marker} can not be analysed, please use json like format`);
    }
    const i = ref !== null && typeof ref === 'object' ? sorted.findIndex((e) => sameReference(e.reference, ref as Record<string, unknown>)) : -1;
    if (i < 0) throw invalidInput(`marker not found: ${ref !== null && typeof ref === 'object' ? pyDict(ref as Record<string, unknown>) : marker}`);
    start = i + 1;
  }
  const from = start + (offset ?? 0);
  return limit === null ? sorted.slice(from) : sorted.slice(from, start + limit + (offset ?? 0));
}

async function manageable(
  deps: FlowDeps,
  kind: Kind,
  args: RpcArguments<'get_manageable_volumes'> | RpcArguments<'get_manageable_snapshots'>,
): Promise<Array<ManageableEntry | VersionedObject>> {
  try {
    requireDriver(deps);
  } catch (err) {
    deps.logger.error({ err }, `Listing manageable ${kind}s failed, due to uninitialized driver.`);
    throw err;
  }
  const rows = kind === 'volume' ? await deps.db.volumes.listByHost(deps.service.host) : await deps.db.snapshots.listByHost(deps.service.host);
  const ids = new Set(rows.map((r) => r.id));
  let page: ManageableEntry[];
  try {
    page = paginateEntries(manageableEntries(kind, await deps.driver.listBackendObjects(), ids), args.marker, args.limit, args.offset, args.sort_keys, args.sort_dirs);
  } catch (err) {
    deps.logger.error({ err }, `Listing manageable ${kind}s failed, due to driver error.`);
    throw err;
  }
  if (!args.want_objects) return page;
  // ManageableVolumeList.from_primitives hands back a plain list of the objects, every field set.
  const name = kind === 'volume' ? 'ManageableVolume' : 'ManageableSnapshot';
  return page.map((e) => new VersionedObject(name, { ...e }));
}

export async function getManageableVolumes(deps: FlowDeps, _ctx: Record<string, unknown>, args: RpcArguments<'get_manageable_volumes'>): Promise<Array<ManageableEntry | VersionedObject>> {
  return manageable(deps, 'volume', args);
}

export async function getManageableSnapshots(deps: FlowDeps, _ctx: Record<string, unknown>, args: RpcArguments<'get_manageable_snapshots'>): Promise<Array<ManageableEntry | VersionedObject>> {
  return manageable(deps, 'snapshot', args);
}

/**
 * manage_existing_snapshot: the size from the driver, a quota reservation for the size change
 * against the snapshot's volume_size (cinder-api reserved the snapshot itself), the driver's
 * rename, then volume_size and available. Any failure leaves the snapshot in error and the
 * reservation rolled back, as the flow's reverts do.
 */
export async function manageExistingSnapshot(deps: FlowDeps, ctx: Record<string, unknown>, args: RpcArguments<'manage_existing_snapshot'>): Promise<string> {
  const id = args.snapshot.data.id;
  const log = deps.logger.child({ snapshot_id: id });
  log.debug(`manage_existing_snapshot: managing ${JSON.stringify(args.ref)}.`);
  const snap = await deps.db.snapshots.find(id);
  if (!snap) throw snapshotNotFound(id);
  // the flow's quota calls run with the caller's project, as cinder's QUOTAS.reserve(context)
  const projectId = typeof ctx.project_id === 'string' ? ctx.project_id : snap.project_id;
  let reservations: string[] = [];
  try {
    requireDriver(deps);
    const vol = await deps.db.volumes.get(snap.volume_id);
    const size = await deps.driver.manageExistingSnapshotGetSize(args.ref);
    const deltas = await deps.db.quotas.addVolumeTypeOpts({ gigabytes: size - (snap.volume_size ?? 0) }, vol.volume_type_id);
    reservations = await deps.db.quotas.reserve(projectId, deltas);
    const model = await deps.driver.manageExistingSnapshot(driverSnapshot(snap, vol), args.ref);
    await deps.db.snapshots.update(id, { ...(model ?? {}), volume_size: size });
    await deps.db.quotas.commit(reservations, projectId);
    reservations = [];
  } catch (err) {
    log.error({ err }, `manage_existing_snapshot failed: ${errorMessage(err)}`);
    await deps.db.quotas
      .rollback(reservations, projectId)
      .catch(logDropped(deps.logger, 'quota rollback', 'the reservations expire by themselves after [DEFAULT] reservation_expire'));
    await deps.db.snapshots.update(id, { status: 'error' });
    throw err;
  }
  await deps.db.snapshots.update(id, { status: 'available' });
  log.info('Manage existing snapshot completed successfully.');
  return id;
}
