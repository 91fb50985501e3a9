// Cinder's reservation-based quotas (cinder/quota.py QUOTAS = VolumeTypeQuotaEngine with
// DbQuotaDriver; cinder/db/sqlalchemy/api.py quota_reserve, reservation_commit,
// reservation_rollback) as far as the volume service uses them:
//  - extend_volume: commit or roll back the reservations cinder-api made;
//  - delete_volume: reserve volumes -1, gigabytes -size (+ volumes_<type>, gigabytes_<type>) before
//    volume.destroy(), commit after;
//  - delete_snapshot: reserve snapshots -1 (+ gigabytes -volume_size unless no_snapshot_gb_quota,
//    + the per-type keys), commit after snapshot.destroy();
//  - retype/manage: commit/rollback of given reservations, positive reservations.
//
// Locking follows cinder: quota_usages rows first, then reservations, both SELECT … FOR UPDATE
// on MySQL (SQLite: the transaction itself holds the write lock, BEGIN IMMEDIATE). Deadlocks and
// duplicate usage rows (two reservers creating the same row) are retried as wrap_db_retry does.
import { randomUUID } from 'node:crypto';
import { sql, type Transaction } from 'kysely';
import type { DbHandle } from './connect.js';
import { isDeadlock, retryOnDeadlock } from './connect.js';
import { overQuota, quotaResourceUnknown } from '../errors.js';
import { getType } from './volume-types.js';
import type { CinderSchema, QuotaUsage, Reservation } from './schema.js';

export interface QuotaOptions {
  /** [DEFAULT] until_refresh (0: never count down to a refresh). */
  untilRefresh?: number;
  /** [DEFAULT] max_age in seconds (0: never refresh by age). */
  maxAge?: number;
  /** [DEFAULT] reservation_expire in seconds (86400). */
  reservationExpire?: number;
  /** [DEFAULT] use_default_quota_class (true). */
  useDefaultQuotaClass?: boolean;
  /** [DEFAULT] no_snapshot_gb_quota (false). */
  noSnapshotGbQuota?: boolean;
  /** [DEFAULT] quota_volumes / quota_snapshots / quota_gigabytes / quota_backups / quota_backup_gigabytes. */
  defaults?: Partial<Record<BaseResource, number>>;
}

// groups is GROUP_QUOTAS' one resource (cinder/quota.py GroupQuotaEngine); both engines share the tables.
type BaseResource = 'volumes' | 'snapshots' | 'gigabytes' | 'backups' | 'backup_gigabytes' | 'groups';

const BASE_DEFAULTS: Record<BaseResource, number> = { volumes: 10, snapshots: 10, gigabytes: 1000, backups: 10, backup_gigabytes: 1000, groups: 10 };

type SyncKind = 'volumes' | 'snapshots' | 'gigabytes' | 'backups' | 'backup_gigabytes' | 'groups';

interface ResourceDef {
  name: string;
  sync: SyncKind;
  /** VolumeTypeResource: usage counted for this type only. */
  volumeTypeId: string | null;
  /** CONF default for the resource (-1 for per-type resources). */
  default: number;
}

type Trx = Transaction<CinderSchema>;

export type Deltas = Record<string, number>;

/** The reservable resources: the global ones plus volumes_/gigabytes_/snapshots_<type> per live type. */
async function reservableResources(k: Trx | DbHandle['kysely'], opts: QuotaOptions): Promise<Map<string, ResourceDef>> {
  const out = new Map<string, ResourceDef>();
  const defaults = { ...BASE_DEFAULTS, ...(opts.defaults ?? {}) };
  for (const name of Object.keys(BASE_DEFAULTS) as BaseResource[]) out.set(name, { name, sync: name, volumeTypeId: null, default: defaults[name] });
  const types = await k.selectFrom('volume_types').select(['id', 'name']).where('deleted', '=', false).execute();
  for (const t of types) {
    for (const part of ['volumes', 'gigabytes', 'snapshots'] as const) {
      const name = `${part}_${t.name}`;
      out.set(name, { name, sync: part, volumeTypeId: t.id, default: -1 });
    }
  }
  return out;
}

/** DbQuotaDriver.get_project_quotas(..., usages=False): the limit of each resource. */
async function quotaLimits(k: Trx | DbHandle['kysely'], projectId: string | null, resources: ResourceDef[], opts: QuotaOptions, quotaClass: string | null): Promise<Record<string, number>> {
  const names = resources.map((r) => r.name);
  const project = new Map<string, number | null>();
  if (projectId !== null && names.length) {
    const rows = await k.selectFrom('quotas').select(['resource', 'hard_limit']).where('project_id', '=', projectId).where('deleted', '=', false).execute();
    for (const r of rows) project.set(r.resource, r.hard_limit);
  }
  const classRows = async (className: string): Promise<Map<string, number | null>> => {
    const rows = await k.selectFrom('quota_classes').select(['resource', 'hard_limit']).where('class_name', '=', className).where('deleted', '=', false).execute();
    return new Map(rows.filter((r) => r.resource !== null).map((r) => [r.resource as string, r.hard_limit]));
  };
  const cls = quotaClass ? await classRows(quotaClass) : new Map<string, number | null>();
  let defaults: Map<string, number | null> | null = null;
  const out: Record<string, number> = {};
  for (const r of resources) {
    let v = project.get(r.name) ?? null;
    if (v === null) v = cls.get(r.name) ?? null;
    if (v === null) {
      if (defaults === null) defaults = opts.useDefaultQuotaClass === false ? new Map() : await classRows('default');
      // get_defaults: default_quotas.get(name, resource.default) (a NULL hard_limit stays None → unlimited below)
      v = defaults.has(r.name) ? (defaults.get(r.name) ?? -1) : r.default;
    }
    out[r.name] = v;
  }
  return out;
}

/** The _sync_* functions: current usage of one resource computed from the resource tables. */
async function syncUsage(k: Trx | DbHandle['kysely'], projectId: string | null, r: ResourceDef, opts: QuotaOptions): Promise<number> {
  const proj = projectId === null ? sql<boolean>`project_id IS NULL` : sql<boolean>`project_id = ${projectId}`;
  const volumeData = async (): Promise<{ count: number; gigabytes: number }> => {
    let q = k
      .selectFrom('volumes as v')
      .select((eb) => [eb.fn.count<number>('v.id').as('count'), eb.fn.sum<number | null>('v.size').as('gigabytes')])
      .where('v.deleted', '=', false)
      .where(projectId === null ? sql<boolean>`v.project_id IS NULL` : sql<boolean>`v.project_id = ${projectId}`)
      // skip_internal: migration targets, use_quota = False and 'temporary' admin metadata are not counted
      .where(sql<boolean>`(v.migration_status IS NULL OR NOT (v.migration_status LIKE ${'target:%'}))`)
      .where(sql<boolean>`NOT (v.use_quota IS NOT NULL AND v.use_quota = ${false})`)
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('volume_admin_metadata as am')
              .select('am.id')
              .whereRef('am.volume_id', '=', 'v.id')
              .where('am.deleted', '=', false)
              .where('am.key', '=', 'temporary')
              .where('am.value', '=', 'True'),
          ),
        ),
      );
    if (r.volumeTypeId) q = q.where('v.volume_type_id', '=', r.volumeTypeId);
    const row = await q.executeTakeFirst();
    return { count: Number(row?.count ?? 0), gigabytes: Number(row?.gigabytes ?? 0) };
  };
  const snapshotData = async (): Promise<{ count: number; gigabytes: number }> => {
    let q = k
      .selectFrom('snapshots as s')
      .select((eb) => [eb.fn.count<number>('s.id').as('count'), eb.fn.sum<number | null>('s.volume_size').as('gigabytes')])
      .where('s.deleted', '=', false)
      .where(sql<boolean>`NOT (s.use_quota IS NOT NULL AND s.use_quota = ${false})`)
      .where(projectId === null ? sql<boolean>`s.project_id IS NULL` : sql<boolean>`s.project_id = ${projectId}`);
    if (r.volumeTypeId) q = q.innerJoin('volumes as sv', 'sv.id', 's.volume_id').where('sv.volume_type_id', '=', r.volumeTypeId);
    const row = await q.executeTakeFirst();
    return { count: Number(row?.count ?? 0), gigabytes: Number(row?.gigabytes ?? 0) };
  };
  switch (r.sync) {
    case 'volumes':
      return (await volumeData()).count;
    case 'snapshots':
      return (await snapshotData()).count;
    case 'gigabytes': {
      const v = (await volumeData()).gigabytes;
      return opts.noSnapshotGbQuota ? v : v + (await snapshotData()).gigabytes;
    }
    case 'backups':
    case 'backup_gigabytes': {
      const row = await k
        .selectFrom('backups')
        .select((eb) => [eb.fn.count<number>('id').as('count'), eb.fn.sum<number | null>('size').as('gigabytes')])
        .where('deleted', '=', false)
        .where(proj)
        .executeTakeFirst();
      return r.sync === 'backups' ? Number(row?.count ?? 0) : Number(row?.gigabytes ?? 0);
    }
    case 'groups': {
      // _sync_groups: the project's live groups.
      const row = await k.selectFrom('groups').select((eb) => eb.fn.count<number>('id').as('count')).where('deleted', '=', false).where(proj).executeTakeFirst();
      return Number(row?.count ?? 0);
    }
  }
}

/** _get_quota_usages: live usage rows of the project (optionally some resources), locked. */
async function lockUsages(db: DbHandle, trx: Trx, projectId: string | null, resources: string[] | null): Promise<QuotaUsage[]> {
  let q = trx.selectFrom('quota_usages').selectAll().where('deleted', '=', false);
  q = projectId === null ? q.where('project_id', 'is', null) : q.where('project_id', '=', projectId);
  if (resources && resources.length) q = q.where('resource', 'in', resources);
  q = q.orderBy('id', 'asc');
  if (db.dialect === 'mysql') q = q.forUpdate();
  return q.execute();
}

function isDuplicate(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ER_DUP_ENTRY' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}

export interface ReserveOptions {
  /** Seconds from now, or an absolute time; default reservation_expire. */
  expire?: number | Date;
  /** The request context's quota_class (usually none). */
  quotaClass?: string | null;
}

/**
 * QUOTAS.reserve(context, project_id=…, **deltas) → reservation uuids. QuotaResourceUnknown for a
 * resource that is not reservable (e.g. the per-type key of a deleted volume type), OverQuota when
 * a positive delta does not fit (usage refreshes are kept, no reservation is made).
 */
export async function reserve(db: DbHandle, projectId: string | null, deltas: Deltas, opts: ReserveOptions = {}, qopts: QuotaOptions = {}): Promise<string[]> {
  const now = db.now();
  const expire =
    opts.expire instanceof Date ? opts.expire : new Date(now.getTime() + (opts.expire ?? qopts.reservationExpire ?? 86400) * 1000);
  const resources = await reservableResources(db.kysely, qopts);
  const unknown = Object.keys(deltas).filter((k) => !resources.has(k));
  if (unknown.length) throw quotaResourceUnknown(unknown.sort());
  const defs = Object.keys(deltas).map((k) => resources.get(k)!);
  const quotas = await quotaLimits(db.kysely, projectId, defs, qopts, opts.quotaClass ?? null);
  const untilRefresh = qopts.untilRefresh ?? 0;
  const maxAge = qopts.maxAge ?? 0;

  const outcome = await retryOnDeadlock(
    async () => {
      // Loop until every usage row exists and is locked (cinder creates missing ones in their own commit).
      for (;;) {
        const done = await db.transaction(async (trx) => {
          const rows = await lockUsages(db, trx, projectId, Object.keys(deltas));
          const usages = new Map<string, QuotaUsage>();
          for (const r of rows) if (r.resource !== null && !usages.has(r.resource)) usages.set(r.resource, r);
          const missing = defs.filter((d) => !usages.has(d.name));
          if (missing.length) {
            for (const d of missing) {
              const inUse = await syncUsage(trx, projectId, d, qopts);
              await trx
                .insertInto('quota_usages')
                .values({ created_at: db.now(), updated_at: null, deleted_at: null, deleted: false, project_id: projectId, resource: d.name, in_use: inUse, reserved: 0, until_refresh: untilRefresh || null, race_preventer: true })
                .execute();
            }
            return null; // committed; lock again
          }

          const changed = new Set<string>();
          const state = new Map<string, { in_use: number; reserved: number; until_refresh: number | null }>();
          for (const d of defs) {
            const u = usages.get(d.name)!;
            const s = { in_use: u.in_use, reserved: u.reserved, until_refresh: u.until_refresh };
            let refresh = false;
            if (s.in_use < 0) refresh = true;
            else if (s.until_refresh !== null) {
              s.until_refresh -= 1;
              changed.add(d.name);
              if (s.until_refresh <= 0) refresh = true;
            } else if (maxAge && u.updated_at !== null && (db.now().getTime() - u.updated_at.getTime()) / 1000 >= maxAge) refresh = true;

            if (refresh) {
              const inUse = await syncUsage(trx, projectId, d, qopts);
              if (inUse !== s.in_use || s.until_refresh !== (untilRefresh || null)) changed.add(d.name);
              s.in_use = inUse;
              s.until_refresh = untilRefresh || null;
            } else {
              const resUntil = s.until_refresh;
              if ((resUntil === null && untilRefresh) || (resUntil ?? 0) > (untilRefresh || 0)) {
                s.until_refresh = untilRefresh || null;
                changed.add(d.name);
              }
            }
            state.set(d.name, s);
          }

          const unders = defs.filter((d) => deltas[d.name]! < 0 && deltas[d.name]! + state.get(d.name)!.in_use < 0).map((d) => d.name);
          const overs = defs
            .filter((d) => {
              const q = quotas[d.name]!;
              const s = state.get(d.name)!;
              return q >= 0 && deltas[d.name]! >= 0 && q < deltas[d.name]! + s.in_use + s.reserved;
            })
            .map((d) => d.name);

          const uuids: string[] = [];
          if (!overs.length) {
            for (const d of defs) {
              const u = usages.get(d.name)!;
              const delta = deltas[d.name]!;
              const uuid = randomUUID();
              await trx
                .insertInto('reservations')
                .values({ created_at: db.now(), updated_at: null, deleted_at: null, deleted: false, uuid, usage_id: u.id, allocated_id: null, project_id: projectId, resource: d.name, delta, expire })
                .execute();
              uuids.push(uuid);
              if (delta > 0) {
                state.get(d.name)!.reserved += delta;
                changed.add(d.name);
              }
            }
          }
          for (const name of changed) {
            const u = usages.get(name)!;
            const s = state.get(name)!;
            await trx.updateTable('quota_usages').set({ in_use: s.in_use, reserved: s.reserved, until_refresh: s.until_refresh, updated_at: db.now() }).where('id', '=', u.id).execute();
          }
          const usageReport: Record<string, { in_use: number; reserved: number }> = {};
          for (const [k, s] of state) usageReport[k] = { in_use: s.in_use, reserved: s.reserved };
          return { uuids, overs, unders, usageReport };
        });
        if (done) return done;
      }
    },
    { retryIf: (err) => isDeadlock(err) || isDuplicate(err) },
  );
  if (outcome.unders.length) {
    db.logger.warn({ unders: outcome.unders }, `Reservation would make usage less than 0 for the following resources, so on commit they will be limited to prevent going below 0: ${outcome.unders.join(', ')}`);
  }
  if (outcome.overs.length) throw overQuota(outcome.overs.sort(), quotas, outcome.usageReport);
  return outcome.uuids;
}

async function settle(db: DbHandle, reservations: readonly string[], projectId: string | null, mode: 'commit' | 'rollback'): Promise<void> {
  if (!reservations.length) return;
  await retryOnDeadlock(() =>
    db.transaction(async (trx) => {
      // _get_reservation_resources (no lock), then usages locked, then the reservations locked.
      const resRows = await trx.selectFrom('reservations').select('resource').where('uuid', 'in', [...reservations]).where('deleted', '=', false).execute();
      const resources = [...new Set(resRows.map((r) => r.resource).filter((r): r is string => r !== null))];
      const usages = new Map((await lockUsages(db, trx, projectId, resources)).map((u) => [u.id, { ...u }]));
      let rq = trx.selectFrom('reservations').selectAll().where('uuid', 'in', [...reservations]).where('deleted', '=', false);
      if (db.dialect === 'mysql') rq = rq.forUpdate();
      const rows: Reservation[] = await rq.execute();
      const now = db.now();
      const dirty = new Set<number>();
      for (const r of rows) {
        const usage = r.usage_id === null ? undefined : usages.get(r.usage_id);
        if (!usage) {
          // cinder: KeyError on usages[reservation.usage_id] — the whole commit/rollback fails.
          throw new Error(`reservation ${r.uuid} (project ${r.project_id}, ${r.resource}) has no usage row in project ${projectId}`);
        }
        const before = { in_use: usage.in_use, reserved: usage.reserved };
        let delta = r.delta;
        if (delta >= 0) usage.reserved -= Math.min(delta, usage.reserved);
        if (mode === 'commit') {
          if (delta < 0 && -delta > usage.in_use) delta = -usage.in_use;
          usage.in_use += delta;
        }
        if (usage.in_use !== before.in_use || usage.reserved !== before.reserved) dirty.add(usage.id);
        await trx.updateTable('reservations').set({ deleted: true, deleted_at: now, updated_at: now }).where('id', '=', r.id).execute();
      }
      for (const id of dirty) {
        const u = usages.get(id)!;
        await trx.updateTable('quota_usages').set({ in_use: u.in_use, reserved: u.reserved, updated_at: now }).where('id', '=', id).execute();
      }
    }),
  );
}

/**
 * db.reservation_commit(reservations, project_id): for each live reservation, reserved -= delta
 * (positive deltas), in_use += delta (never below 0), reservation soft-deleted. Throws on failure.
 */
export async function reservationCommit(db: DbHandle, reservations: readonly string[], projectId: string | null): Promise<void> {
  await settle(db, reservations, projectId, 'commit');
}

/** db.reservation_rollback: reserved -= delta for positive deltas, reservations soft-deleted. Throws on failure. */
export async function reservationRollback(db: DbHandle, reservations: readonly string[], projectId: string | null): Promise<void> {
  await settle(db, reservations, projectId, 'rollback');
}

/**
 * QUOTAS.commit: reservation_commit, but like cinder's QuotaEngine a failure is only logged
 * (usage sync and reservation expiry repair it). Returns whether it succeeded.
 */
export async function commit(db: DbHandle, reservations: readonly string[] | null | undefined, projectId: string | null): Promise<boolean> {
  if (!reservations?.length) return true;
  try {
    await reservationCommit(db, reservations, projectId);
    return true;
  } catch (err) {
    db.logger.error({ err, reservations }, `Failed to commit reservations ${JSON.stringify(reservations)}`);
    return false;
  }
}

/** QUOTAS.rollback: reservation_rollback, failures only logged. */
export async function rollback(db: DbHandle, reservations: readonly string[] | null | undefined, projectId: string | null): Promise<boolean> {
  if (!reservations?.length) return true;
  try {
    await reservationRollback(db, reservations, projectId);
    return true;
  } catch (err) {
    db.logger.error({ err, reservations }, `Failed to roll back reservations ${JSON.stringify(reservations)}`);
    return false;
  }
}

/**
 * QUOTAS.add_volume_type_opts: for a volume type (soft-deleted types included), copies the
 * volumes/gigabytes/snapshots deltas to `<quota>_<type name>`. Returns a new object.
 * VolumeTypeNotFound when the type does not exist at all.
 */
export async function addVolumeTypeOpts(db: DbHandle, deltas: Deltas, volumeTypeId: string | null | undefined): Promise<Deltas> {
  const out = { ...deltas };
  if (!volumeTypeId) return out;
  const type = await getType(db, volumeTypeId, { inactive: true });
  for (const q of ['volumes', 'gigabytes', 'snapshots']) {
    if (q in deltas) out[`${q}_${type.name}`] = deltas[q]!;
  }
  return out;
}

/**
 * The reservation delete_volume makes (manager.py): volumes -1, gigabytes -size and the per-type
 * keys. Throws like QUOTAS.reserve; the manager logs "Failed to update usages deleting volume."
 * and goes on without reservations.
 */
export async function reserveForVolumeDelete(
  db: DbHandle,
  volume: { project_id: string | null; size: number | null; volume_type_id: string | null },
  qopts: QuotaOptions = {},
): Promise<string[]> {
  const deltas = await addVolumeTypeOpts(db, { volumes: -1, gigabytes: -(volume.size ?? 0) }, volume.volume_type_id);
  return reserve(db, volume.project_id, deltas, {}, qopts);
}

/**
 * The reservation delete_snapshot makes: snapshots -1 and gigabytes -volume_size (unless
 * no_snapshot_gb_quota), plus the per-type keys of the snapshot's volume's type.
 */
export async function reserveForSnapshotDelete(
  db: DbHandle,
  snapshot: { project_id: string | null; volume_size: number | null },
  volumeTypeId: string | null,
  qopts: QuotaOptions = {},
): Promise<string[]> {
  const base: Deltas = qopts.noSnapshotGbQuota ? { snapshots: -1 } : { snapshots: -1, gigabytes: -(snapshot.volume_size ?? 0) };
  const deltas = await addVolumeTypeOpts(db, base, volumeTypeId);
  return reserve(db, snapshot.project_id, deltas, {}, qopts);
}

/** quota_usage_get_all_by_project: resource → {in_use, reserved}. */
export async function usagesByProject(db: DbHandle, projectId: string): Promise<Record<string, { in_use: number; reserved: number }>> {
  const rows = await db.kysely.selectFrom('quota_usages').select(['resource', 'in_use', 'reserved']).where('project_id', '=', projectId).where('deleted', '=', false).execute();
  const out: Record<string, { in_use: number; reserved: number }> = {};
  for (const r of rows) if (r.resource !== null) out[r.resource] = { in_use: r.in_use, reserved: r.reserved };
  return out;
}
