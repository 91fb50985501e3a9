// The services row (and cluster row) of the volume service, as cinder/service.py writes them:
//  - Service.__init__: the row for (host, binary) is looked up; if found its rpc/object versions
//    are refreshed (and cluster_name set when the host was just added to a cluster); otherwise a
//    new row is created (_create_service_ref) with a fresh uuid.
//  - report_state every report_interval: report_count + 1 (updated_at = now is the heartbeat), and
//    availability_zone follows the configuration. A vanished row is re-created.
//  - stop()/kill(): cinder-volume leaves its row alone (only `cinder-manage service remove`
//    deletes it), so there is no "unregister" here.
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { DbHandle } from './connect.js';
import { and, deletedFilter, filterHost, type HostMatchLevel } from './common.js';
import { serviceNotFound, serviceTooOld } from '../errors.js';
import type { Cluster, Service, ServicesTable } from './schema.js';
import type { Updateable } from 'kysely';

/** What cinder-volume registers in Zed (cinder/service.py Service.start and _create_service_ref). */
export const VOLUME_RPC_API_VERSION = '3.18';
export const VOLUME_OBJECT_VERSION = '1.39';
export const VOLUME_BINARY = 'cinder-volume';
export const VOLUME_TOPIC = 'cinder-volume';

export interface RegisterServiceOptions {
  /** `host@backend` */
  host: string;
  binary?: string;
  topic?: string;
  availabilityZone: string;
  /** [DEFAULT] cluster + '@backend', or null. */
  clusterName: string | null;
  rpcCurrentVersion?: string;
  objectCurrentVersion?: string;
  /** [DEFAULT] enable_new_services (default true): false registers new rows disabled. */
  enableNewServices?: boolean;
}

export interface RegisteredService {
  service: Service;
  /** True when the row did not exist and was created. */
  created: boolean;
  /** cinder's added_to_cluster: resources must be moved into the cluster by init_host. */
  addedToCluster: boolean;
}

const REPLICATION_ERROR_STATES = new Set(['error', 'failover-error']);

/** service_get(host=, binary=): first live row whose host matches as _filter_host does. */
export async function getByHostAndBinary(db: DbHandle, host: string, binary: string = VOLUME_BINARY, matchLevel?: HostMatchLevel): Promise<Service | undefined> {
  return db.kysely
    .selectFrom('services')
    .selectAll()
    .where(and([deletedFilter('deleted', 'no'), filterHost(db, 'host', host, matchLevel), sql`${sql.ref('binary')} = ${binary}`]))
    .orderBy('id')
    .executeTakeFirst();
}

/** service_get(id): live row by id; throws ServiceNotFound. */
export async function getById(db: DbHandle, id: number): Promise<Service> {
  const row = await db.kysely.selectFrom('services').selectAll().where('id', '=', id).where('deleted', '=', false).executeTakeFirst();
  if (!row) throw serviceNotFound(id);
  return row;
}

/** service_get_by_uuid; throws ServiceNotFound. */
export async function getByUuid(db: DbHandle, uuid: string): Promise<Service> {
  const row = await db.kysely.selectFrom('services').selectAll().where('uuid', '=', uuid).where('deleted', '=', false).executeTakeFirst();
  if (!row) throw serviceNotFound(uuid);
  return row;
}

/**
 * service_update: writes `values`, updated_at = now (SQLAlchemy's onupdate). When `disabled` is
 * among them, modified_at = now and updated_at is kept, as cinder does for manual enable/disable.
 */
export async function update(db: DbHandle, id: number, values: Updateable<ServicesTable>): Promise<void> {
  const now = db.now();
  const res = await db.kysely
    .updateTable('services')
    .set((eb) =>
      'disabled' in values
        ? { ...values, modified_at: values.modified_at ?? now, updated_at: values.updated_at ?? eb.ref('updated_at') }
        : { ...values, updated_at: values.updated_at ?? now },
    )
    .where('id', '=', id)
    .where('deleted', '=', false)
    .executeTakeFirst();
  if (Number(res.numUpdatedRows) === 0) throw serviceNotFound(id);
}

/** Service._create_service_ref → Service.create → db.service_create. */
export async function create(
  db: DbHandle,
  opts: RegisterServiceOptions & { uuid?: string },
): Promise<Service> {
  const now = db.now();
  const uuid = opts.uuid ?? randomUUID();
  const result = await db.kysely
    .insertInto('services')
    .values({
      created_at: now,
      updated_at: now,
      deleted_at: null,
      deleted: false,
      uuid,
      cluster_name: opts.clusterName,
      host: opts.host,
      binary: opts.binary ?? VOLUME_BINARY,
      topic: opts.topic ?? VOLUME_TOPIC,
      report_count: 0,
      disabled: opts.enableNewServices === false,
      availability_zone: opts.availabilityZone,
      disabled_reason: null,
      modified_at: null,
      rpc_current_version: opts.rpcCurrentVersion ?? VOLUME_RPC_API_VERSION,
      object_current_version: opts.objectCurrentVersion ?? VOLUME_OBJECT_VERSION,
      replication_status: 'not-capable',
      active_backend_id: null,
      frozen: false,
    })
    .executeTakeFirstOrThrow();
  const id = Number(result.insertId);
  const row = await db.kysely.selectFrom('services').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw serviceNotFound(id);
  return row;
}

/** cluster_get(name=, binary=): live cluster matched as _filter_host does. */
export async function getCluster(db: DbHandle, name: string, binary: string = VOLUME_BINARY): Promise<Cluster | undefined> {
  return db.kysely
    .selectFrom('clusters')
    .selectAll()
    .where(and([deletedFilter('deleted', 'no'), filterHost(db, 'name', name), sql`${sql.ref('binary')} = ${binary}`]))
    .orderBy('id')
    .executeTakeFirst();
}

/**
 * Service._ensure_cluster_exists: an existing cluster imposes its replication fields on the
 * service (unless the service is in a replication error state); a missing one is created from the
 * service's. Returns the service fields that must change.
 */
async function ensureCluster(db: DbHandle, clusterName: string, binary: string, service: Service): Promise<Updateable<ServicesTable>> {
  const cluster = await getCluster(db, clusterName, binary);
  if (cluster) {
    const changes: Updateable<ServicesTable> = {};
    if (!REPLICATION_ERROR_STATES.has(service.replication_status ?? '')) {
      if (service.replication_status !== cluster.replication_status) changes.replication_status = cluster.replication_status;
      if (service.active_backend_id !== cluster.active_backend_id) changes.active_backend_id = cluster.active_backend_id;
      if (service.frozen !== cluster.frozen) changes.frozen = cluster.frozen;
    }
    return changes;
  }
  const now = db.now();
  try {
    await db.kysely
      .insertInto('clusters')
      .values({
        created_at: now,
        updated_at: null,
        deleted_at: null,
        deleted: false,
        name: clusterName,
        binary,
        disabled: service.disabled ?? false,
        disabled_reason: null,
        race_preventer: 0,
        replication_status: service.replication_status,
        active_backend_id: service.active_backend_id,
        frozen: service.frozen ?? false,
      })
      .execute();
  } catch (err) {
    // ClusterExists: another service created it first; that is fine.
    if (!(await getCluster(db, clusterName, binary))) throw err;
  }
  return {};
}

/**
 * What cinder/service.py Service.__init__ does with the services table at start. An existing row
 * keeps its id and uuid (a NULL uuid is filled in so volumes can reference it); rpc/object
 * versions are refreshed, which also refreshes updated_at.
 */
export async function register(db: DbHandle, opts: RegisterServiceOptions): Promise<RegisteredService> {
  const binary = opts.binary ?? VOLUME_BINARY;
  const existing = await getByHostAndBinary(db, opts.host, binary);
  if (!existing) {
    let service = await create(db, opts);
    if (opts.clusterName) {
      const changes = await ensureCluster(db, opts.clusterName, binary, service);
      if (Object.keys(changes).length) {
        await update(db, service.id, changes);
        service = await getById(db, service.id);
      }
    }
    return { service, created: true, addedToCluster: Boolean(opts.clusterName) };
  }
  const changes: Updateable<ServicesTable> = {
    rpc_current_version: opts.rpcCurrentVersion ?? VOLUME_RPC_API_VERSION,
    object_current_version: opts.objectCurrentVersion ?? VOLUME_OBJECT_VERSION,
  };
  if (!existing.uuid) changes.uuid = randomUUID();
  const addedToCluster = !existing.cluster_name && Boolean(opts.clusterName);
  if (existing.cluster_name !== opts.clusterName) {
    db.logger.info(
      { cluster_svc: existing.cluster_name, cluster_cfg: opts.clusterName },
      `This service has been moved from cluster ${existing.cluster_name} to ${opts.clusterName}. Resources will ${addedToCluster ? '' : 'NOT '}be moved to the new cluster`,
    );
  }
  if (addedToCluster && opts.clusterName) {
    Object.assign(changes, await ensureCluster(db, opts.clusterName, binary, existing));
    changes.cluster_name = opts.clusterName;
  }
  await update(db, existing.id, changes);
  return { service: await getById(db, existing.id), created: false, addedToCluster };
}

/**
 * One heartbeat (Service.report_state): report_count + 1, updated_at = now, availability_zone
 * refreshed. Returns false when the row is gone (deleted by an operator); cinder then re-creates
 * it, which `register` does.
 */
export async function reportState(db: DbHandle, id: number, availabilityZone?: string): Promise<boolean> {
  const res = await db.kysely
    .updateTable('services')
    .set((eb) => ({
      report_count: eb('report_count', '+', 1),
      updated_at: db.now(),
      ...(availabilityZone !== undefined ? { availability_zone: availabilityZone } : {}),
    }))
    .where('id', '=', id)
    .where('deleted', '=', false)
    .executeTakeFirst();
  return Number(res.numUpdatedRows) > 0;
}

/** objects.Service.is_up: updated_at within service_down_time (seconds) of now. */
export function isUp(service: Pick<Service, 'updated_at'>, now: Date, serviceDownTime = 60): boolean {
  return service.updated_at !== null && service.updated_at.getTime() >= now.getTime() - serviceDownTime * 1000;
}

/** oslo_utils.versionutils.convert_version_to_tuple, compared element by element. */
function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * Service.get_minimum_rpc_version / get_minimum_obj_version over the live rows of `binary` (what
 * cinder's RPC clients use as version caps). Throws ServiceTooOld when a row has NULL versions.
 */
export async function minimumVersions(db: DbHandle, binary: string = VOLUME_BINARY): Promise<{ rpc: string | null; object: string | null }> {
  const rows = await db.kysely
    .selectFrom('services')
    .select(['rpc_current_version', 'object_current_version', 'binary'])
    .where('binary', '=', binary)
    .where('deleted', '=', false)
    .execute();
  let rpc: string | null = null;
  let object: string | null = null;
  for (const r of rows) {
    if (r.rpc_current_version === null || r.object_current_version === null) {
      throw serviceTooOld(
        `Service ${binary} is in Liberty version. We do not provide backward compatibility with Liberty now, so you need to upgrade it, release by release if live upgrade is required. After upgrade you may need to remove any stale service records via "cinder-manage service remove".`,
      );
    }
    if (rpc === null || compareVersions(r.rpc_current_version, rpc) < 0) rpc = r.rpc_current_version;
    if (object === null || compareVersions(r.object_current_version, object) < 0) object = r.object_current_version;
  }
  return { rpc, object };
}
