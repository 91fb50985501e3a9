// The workers table: one row per in-flight cleanable operation (cinder/objects/cleanable.py,
// cinder/db/sqlalchemy/api.py worker_*). cinder-api creates the row (service_id NULL) before
// casting; the volume service claims it (set_worker) while it works and removes it when the status
// has moved on (unset_worker). At start, init_host cleans the rows still assigned to this service
// (do_cleanup: claim each row, redo/repair the operation, delete the row).
//
// Row identity and races: cinder filters updates on (status, service_id, race_preventer,
// updated_at) and bumps race_preventer on every update. updated_at is DATETIME(6) on MySQL and
// microsecond text on SQLite, finer than a JS Date, so every row read here also carries
// `updated_at_raw`, the stored value as text, and the filters compare against that: exactly the
// comparisons cinder makes.
import { sql, type Transaction } from 'kysely';
import type { DbHandle } from './connect.js';
import { retryOnDeadlock } from './connect.js';
import { and, expectedExpr } from './common.js';
import { cleanableInUse, workerExists, workerNotFound } from '../errors.js';
import type { CinderSchema, Worker } from './schema.js';

export interface WorkerRow extends Worker {
  /** updated_at exactly as stored ('YYYY-MM-DD HH:MM:SS.ffffff'), for exact comparisons. */
  updated_at_raw: string | null;
}

/** The SENTINEL row cinder's migration leaves in workers (sub-second precision probe); never ours. */
const SENTINEL = 'SENTINEL';

type K = DbHandle['kysely'] | Transaction<CinderSchema>;

function rawUpdatedAt(db: DbHandle) {
  return db.dialect === 'mysql'
    ? sql<string | null>`DATE_FORMAT(${sql.ref('updated_at')}, ${'%Y-%m-%d %H:%i:%s.%f'})`
    : sql<string | null>`CAST(${sql.ref('updated_at')} AS TEXT)`;
}

function selectWorkers(db: DbHandle, k: K = db.kysely) {
  return k
    .selectFrom('workers')
    .selectAll()
    .select(rawUpdatedAt(db).as('updated_at_raw'))
    .where('resource_type', '!=', SENTINEL)
    .where('deleted', '=', false);
}

function isDuplicate(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ER_DUP_ENTRY' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

export interface NewWorker {
  resourceType: string;
  resourceId: string;
  status: string;
  serviceId?: number | null;
}

/** worker_create: created_at = updated_at = now, race_preventer 0. Throws WorkerExists. */
export async function create(db: DbHandle, w: NewWorker): Promise<WorkerRow> {
  const now = db.now();
  try {
    const res = await db.kysely
      .insertInto('workers')
      .values({
        created_at: now,
        updated_at: now,
        deleted_at: null,
        deleted: false,
        resource_type: w.resourceType,
        resource_id: w.resourceId,
        status: w.status,
        service_id: w.serviceId ?? null,
        race_preventer: 0,
      })
      .executeTakeFirstOrThrow();
    return getById(db, Number(res.insertId));
  } catch (err) {
    if (isDuplicate(err)) throw workerExists(w.resourceType, w.resourceId);
    throw err;
  }
}

export async function getById(db: DbHandle, id: number): Promise<WorkerRow> {
  const row = await selectWorkers(db).where('id', '=', id).executeTakeFirst();
  if (!row) throw workerNotFound({ id });
  return row;
}

/** worker_get(resource_type=, resource_id=); undefined when absent. */
export async function find(db: DbHandle, resourceType: string, resourceId: string): Promise<WorkerRow | undefined> {
  return selectWorkers(db).where('resource_type', '=', resourceType).where('resource_id', '=', resourceId).executeTakeFirst();
}

/** worker_get; throws WorkerNotFound. */
export async function get(db: DbHandle, resourceType: string, resourceId: string): Promise<WorkerRow> {
  const row = await find(db, resourceType, resourceId);
  if (!row) throw workerNotFound({ resource_type: resourceType, resource_id: resourceId });
  return row;
}

export interface WorkerListFilters {
  /** null/undefined: any service (cinder drops None filters). */
  serviceId?: number | null;
  resourceType?: string | null;
  resourceId?: string | null;
  status?: string | null;
  /** Only rows with updated_at <= until. */
  until?: Date | null;
}

/**
 * worker_get_all: the rows matching the filters, SENTINEL excluded. init_host's cleanup is
 * `listByService(serviceId, { until: now })`.
 */
export async function list(db: DbHandle, filters: WorkerListFilters = {}): Promise<WorkerRow[]> {
  let q = selectWorkers(db);
  if (filters.serviceId !== undefined && filters.serviceId !== null) q = q.where('service_id', '=', filters.serviceId);
  if (filters.resourceType) q = q.where('resource_type', '=', filters.resourceType);
  if (filters.resourceId) q = q.where('resource_id', '=', filters.resourceId);
  if (filters.status) q = q.where('status', '=', filters.status);
  if (filters.until) q = q.where('updated_at', '<=', filters.until);
  return q.orderBy('id').execute();
}

/** The rows cinder's init_host cleans up: this service's, last updated no later than `until` (default now). */
export async function listByService(db: DbHandle, serviceId: number, opts: Omit<WorkerListFilters, 'serviceId'> = {}): Promise<WorkerRow[]> {
  return list(db, { ...opts, serviceId, until: opts.until ?? db.now() });
}

export interface WorkerUpdateFilters {
  serviceId?: number | null;
  status?: string;
  racePreventer?: number;
  /** Compared exactly against the stored text (use a row's updated_at_raw). */
  updatedAtRaw?: string | null;
  resourceType?: string;
  resourceId?: string;
}

/**
 * worker_update(id, filters, orm_worker, **values): sets values, updated_at = now unless given,
 * race_preventer = (worker's race_preventer, or the column) + 1. `id` null updates by the filters
 * alone (the API's create_worker path). Throws WorkerNotFound when nothing matched.
 */
export async function update(
  db: DbHandle,
  id: number | null,
  values: { status?: string; serviceId?: number | null; updatedAt?: Date | string },
  filters: WorkerUpdateFilters = {},
  worker?: WorkerRow,
): Promise<void> {
  const where = and([
    sql`${sql.ref('resource_type')} != ${SENTINEL}`,
    sql`${sql.ref('deleted')} = ${false}`,
    id !== null ? sql`${sql.ref('id')} = ${id}` : null,
    'serviceId' in filters ? expectedExpr('service_id', filters.serviceId ?? null) : null,
    filters.status !== undefined ? sql`${sql.ref('status')} = ${filters.status}` : null,
    filters.racePreventer !== undefined ? sql`${sql.ref('race_preventer')} = ${filters.racePreventer}` : null,
    'updatedAtRaw' in filters ? (filters.updatedAtRaw === null ? sql`${sql.ref('updated_at')} IS NULL` : sql`${sql.ref('updated_at')} = ${filters.updatedAtRaw}`) : null,
    filters.resourceType !== undefined ? sql`${sql.ref('resource_type')} = ${filters.resourceType}` : null,
    filters.resourceId !== undefined ? sql`${sql.ref('resource_id')} = ${filters.resourceId}` : null,
  ]);
  const res = await retryOnDeadlock(() =>
    db.kysely
      .updateTable('workers')
      .set((eb) => ({
        ...(values.status !== undefined ? { status: values.status } : {}),
        ...('serviceId' in values ? { service_id: values.serviceId ?? null } : {}),
        updated_at: (values.updatedAt ?? db.now()) as Date,
        race_preventer: worker ? worker.race_preventer + 1 : eb('race_preventer', '+', 1),
      }))
      .where(where)
      .executeTakeFirst(),
  );
  if (Number(res.numUpdatedRows) === 0) throw workerNotFound({ id, ...filters });
}

/**
 * worker_claim_for_cleanup: takes the row for `claimerId` only if nobody touched it since it was
 * read (same status, service_id, race_preventer, and updated_at not later). True when claimed; the
 * passed row is updated in place like cinder's orm_worker.
 */
export async function claimForCleanup(db: DbHandle, claimerId: number, worker: WorkerRow): Promise<boolean> {
  const now = db.now();
  const res = await retryOnDeadlock(() =>
    db.kysely
      .updateTable('workers')
      .set({ service_id: claimerId, race_preventer: worker.race_preventer + 1, updated_at: now })
      .where(
        and([
          sql`${sql.ref('resource_type')} != ${SENTINEL}`,
          sql`${sql.ref('deleted')} = ${false}`,
          sql`${sql.ref('id')} = ${worker.id}`,
          sql`${sql.ref('status')} = ${worker.status}`,
          expectedExpr('service_id', worker.service_id),
          sql`${sql.ref('race_preventer')} = ${worker.race_preventer}`,
          worker.updated_at_raw !== null ? sql`${sql.ref('updated_at')} <= ${worker.updated_at_raw}` : null,
        ]),
      )
      .executeTakeFirst(),
  );
  const claimed = Number(res.numUpdatedRows) > 0;
  if (claimed) {
    const fresh = await getById(db, worker.id);
    Object.assign(worker, { service_id: claimerId, race_preventer: worker.race_preventer + 1, updated_at: fresh.updated_at, updated_at_raw: fresh.updated_at_raw });
  }
  return claimed;
}

/**
 * worker_destroy(**filters): hard delete (no soft delete for workers). null/undefined filters are
 * dropped as cinder's _clean_filters does. Returns the number of rows deleted.
 */
export async function destroy(db: DbHandle, filters: { id?: number | null; status?: string | null; serviceId?: number | null; resourceType?: string | null; resourceId?: string | null }): Promise<number> {
  let q = db.kysely.deleteFrom('workers').where('resource_type', '!=', SENTINEL).where('deleted', '=', false);
  if (filters.id !== undefined && filters.id !== null) q = q.where('id', '=', filters.id);
  if (filters.status) q = q.where('status', '=', filters.status);
  if (filters.serviceId !== undefined && filters.serviceId !== null) q = q.where('service_id', '=', filters.serviceId);
  if (filters.resourceType) q = q.where('resource_type', '=', filters.resourceType);
  if (filters.resourceId) q = q.where('resource_id', '=', filters.resourceId);
  const res = await q.executeTakeFirst();
  return Number(res.numDeletedRows);
}

/**
 * CinderCleanableObject.set_worker: makes sure a workers row for the resource exists, belongs to
 * `serviceId` and records `status`. Creates it when cinder-api did not; claims/updates it when it
 * names another service or status. CleanableInUse when another operation won the race.
 * `current` is the worker this operation already holds, if any (a cleaning worker is left alone).
 */
export async function setWorker(
  db: DbHandle,
  resource: { resourceType: string; resourceId: string; status: string },
  serviceId: number,
  current?: WorkerRow & { cleaning?: boolean },
): Promise<WorkerRow> {
  if (current?.cleaning) return current;
  let worker = current ?? (await find(db, resource.resourceType, resource.resourceId));
  if (!worker) {
    try {
      return await create(db, { ...resource, serviceId });
    } catch (err) {
      if ((err as { className?: string }).className === 'WorkerExists') throw cleanableInUse(resource.resourceType, resource.resourceId);
      throw err;
    }
  }
  if (worker.service_id !== serviceId || worker.status !== resource.status) {
    try {
      await update(
        db,
        worker.id,
        { serviceId, status: resource.status },
        { serviceId: worker.service_id, status: worker.status, racePreventer: worker.race_preventer, updatedAtRaw: worker.updated_at_raw },
        worker,
      );
    } catch (err) {
      if ((err as { className?: string }).className === 'WorkerNotFound') throw cleanableInUse(resource.resourceType, resource.resourceId);
      throw err;
    }
    worker = await getById(db, worker.id);
  }
  return worker;
}

/** CinderCleanableObject.unset_worker: deletes the row this operation holds. */
export async function unsetWorker(db: DbHandle, worker: WorkerRow): Promise<number> {
  return destroy(db, { id: worker.id, status: worker.status, serviceId: worker.service_id });
}
