// Read-only queries for the operator's debug CLI (`cinderblock status`, `volume show|list`,
// `doctor`). cinder-volume never asks these; they answer "what does the database say about this
// host's backends" with the same host matching cinder uses (_filter_host).
import { sql } from 'kysely';
import type { DbHandle } from './connect.js';
import { and, deletedFilter, filterHost } from './common.js';
import type { Service, Volume, VolumeAttachment } from './schema.js';
import { VOLUME_BINARY } from './services.js';

/** The live cinder-volume services rows of these backends (`host@backend`), in the order asked. */
export async function volumeServices(db: DbHandle, hosts: readonly string[]): Promise<Service[]> {
  if (hosts.length === 0) return [];
  const rows = await db.kysely
    .selectFrom('services')
    .selectAll()
    .where(and([deletedFilter('deleted', 'no'), sql`${sql.ref('binary')} = ${VOLUME_BINARY}`]))
    .where('host', 'in', [...hosts])
    .execute();
  return hosts.flatMap((h) => rows.filter((r) => r.host === h));
}

/** {status: count} of the live volumes on a backend (every pool of it). */
export async function volumeCountsByStatus(db: DbHandle, backendHost: string): Promise<Record<string, number>> {
  const rows = await db.kysely
    .selectFrom('volumes')
    .select(['status', sql<number>`count(*)`.as('n')])
    .where(and([deletedFilter('deleted', 'no'), filterHost(db, 'host', backendHost, 'backend')]))
    .groupBy('status')
    .execute();
  return Object.fromEntries(rows.map((r) => [r.status ?? 'null', Number(r.n)]));
}

export interface VolumeListFilter {
  /** `host`, `host@backend` or `host@backend#pool`, matched as cinder matches it */
  hosts?: readonly string[];
  status?: string;
  limit?: number;
}

/** Live volumes, newest first. */
export async function listVolumes(db: DbHandle, f: VolumeListFilter = {}): Promise<Volume[]> {
  let q = db.kysely.selectFrom('volumes').selectAll().where(and([deletedFilter('deleted', 'no')]));
  if (f.hosts && f.hosts.length > 0) q = q.where(sql<boolean>`(${sql.join(f.hosts.map((h) => filterHost(db, 'host', h)), sql` OR `)})`);
  if (f.status) q = q.where('status', '=', f.status);
  q = q.orderBy('created_at', 'desc').orderBy('id');
  if (f.limit) q = q.limit(f.limit);
  return q.execute();
}

/** A volume by id, or else by display name (every live match, so the caller can say it is ambiguous). */
export async function findVolumes(db: DbHandle, idOrName: string): Promise<Volume[]> {
  const byId = await db.kysely.selectFrom('volumes').selectAll().where('id', '=', idOrName).where('deleted', '=', false).execute();
  if (byId.length > 0) return byId;
  return db.kysely.selectFrom('volumes').selectAll().where('display_name', '=', idOrName).where('deleted', '=', false).orderBy('created_at').execute();
}

/** Live attachments of the live volumes on a backend, with their volume's id. */
export async function attachmentsOnBackend(db: DbHandle, backendHost: string): Promise<VolumeAttachment[]> {
  return db.kysely
    .selectFrom('volume_attachment as a')
    .innerJoin('volumes as v', 'v.id', 'a.volume_id')
    .selectAll('a')
    .where('a.deleted', '=', false)
    .where('v.deleted', '=', false)
    .where(filterHost(db, 'v.host', backendHost, 'backend'))
    .orderBy('a.attach_time')
    .execute();
}

/** Live workers rows (cleanable operations cinder tracks) of one service. */
export async function workersOfService(db: DbHandle, serviceId: number): Promise<Array<{ resource_type: string; resource_id: string; status: string; updated_at: Date | null }>> {
  const rows = await db.kysely
    .selectFrom('workers')
    .select(['resource_type', 'resource_id', 'status', 'updated_at'])
    .where('service_id', '=', serviceId)
    .where('deleted', '=', false)
    .execute();
  return rows.map((r) => ({ resource_type: r.resource_type, resource_id: r.resource_id, status: r.status, updated_at: r.updated_at as Date | null }));
}

/** The database server's clock (UTC), for the skew check; null on SQLite (it is the local clock). */
export async function serverUtcNow(db: DbHandle): Promise<Date | null> {
  if (db.dialect !== 'mysql') return null;
  const r = await sql<{ now: Date | string }>`SELECT UTC_TIMESTAMP(3) AS ${sql.ref('now')}`.execute(db.kysely);
  const v = r.rows[0]?.now;
  if (v === undefined) return null;
  if (v instanceof Date) return v;
  return new Date(`${String(v).replace(' ', 'T')}Z`);
}

/** An image-volume cache entry with what the database says of its volume (null: the volume is gone). */
export interface ImageCacheEntryView {
  id: number;
  host: string;
  cluster_name: string | null;
  image_id: string;
  image_updated_at: Date | null;
  volume_id: string;
  size: number;
  last_used: Date;
  volume_status: string | null;
  volume_project_id: string | null;
}

/** The image-volume cache entries on these hosts (matched as cinder matches hosts), most recently used first. */
export async function imageCacheEntries(db: DbHandle, hosts: readonly string[]): Promise<ImageCacheEntryView[]> {
  let q = db.kysely
    .selectFrom('image_volume_cache_entries as e')
    .leftJoin('volumes as v', (j) => j.onRef('v.id', '=', 'e.volume_id').on('v.deleted', '=', false))
    .select(['e.id', 'e.host', 'e.cluster_name', 'e.image_id', 'e.image_updated_at', 'e.volume_id', 'e.size', 'e.last_used', 'v.status as volume_status', 'v.project_id as volume_project_id']);
  if (hosts.length > 0) q = q.where(sql<boolean>`(${sql.join(hosts.map((h) => filterHost(db, 'e.host', h)), sql` OR `)})`);
  return q.orderBy('e.last_used', 'desc').orderBy('e.id', 'desc').execute();
}
