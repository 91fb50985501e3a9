// Volume types, their extra specs, QoS specs and encryption, read as cinder's volume_type_get,
// volume_type_extra_specs_get, volume_type_qos_specs_get, qos_specs_get and
// volume_type_encryption_get return them (admin context).
import type { DbHandle } from './connect.js';
import { qosSpecsNotFound, volumeTypeNotFound, volumeTypeNotFoundByName } from '../errors.js';
import type { Encryption, VolumeType } from './schema.js';

export interface VolumeTypeWithSpecs extends VolumeType {
  extra_specs: Record<string, string | null>;
}

/** volume_type_extra_specs_get: live extra specs of a type. */
export async function extraSpecs(db: DbHandle, volumeTypeId: string): Promise<Record<string, string | null>> {
  const rows = await db.kysely
    .selectFrom('volume_type_extra_specs')
    .select(['key', 'value'])
    .where('volume_type_id', '=', volumeTypeId)
    .where('deleted', '=', false)
    .orderBy('id')
    .execute();
  const out: Record<string, string | null> = {};
  for (const r of rows) if (r.key !== null) out[r.key] = r.value;
  return out;
}

/**
 * volume_type_get(id, inactive): the type with its extra specs; `inactive` also finds soft-deleted
 * types (what QUOTAS.add_volume_type_opts uses). VolumeTypeNotFound otherwise.
 */
export async function getType(db: DbHandle, id: string, opts: { inactive?: boolean } = {}): Promise<VolumeTypeWithSpecs> {
  let q = db.kysely.selectFrom('volume_types').selectAll().where('id', '=', id);
  if (!opts.inactive) q = q.where('deleted', '=', false);
  const row = await q.executeTakeFirst();
  if (!row) throw volumeTypeNotFound(id);
  return { ...row, extra_specs: await extraSpecs(db, row.id) };
}

/** volume_type_get_by_name (live types). VolumeTypeNotFoundByName. */
export async function getTypeByName(db: DbHandle, name: string): Promise<VolumeTypeWithSpecs> {
  const row = await db.kysely.selectFrom('volume_types').selectAll().where('name', '=', name).where('deleted', '=', false).executeTakeFirst();
  if (!row) throw volumeTypeNotFoundByName(name);
  return { ...row, extra_specs: await extraSpecs(db, row.id) };
}

export interface QosSpecs {
  id: string;
  name: string | null;
  /** 'front-end', 'back-end' or 'both' (absent when the spec has no children). */
  consumer?: string | null;
  /** key → value of the live child rows (consumer excluded). */
  specs?: Record<string, string | null>;
  created_at: Date | null;
  /** Latest updated_at of the children, when any has one. */
  updated_at?: Date;
}

async function qosFromRoot(db: DbHandle, root: { id: string; key: string | null; value: string | null; created_at: Date | null }): Promise<QosSpecs> {
  const children = await db.kysely
    .selectFrom('quality_of_service_specs')
    .select(['key', 'value', 'updated_at', 'deleted'])
    .where('specs_id', '=', root.id)
    .orderBy('created_at')
    .orderBy('id')
    .execute();
  const member: QosSpecs = { name: root.value, id: root.id, created_at: root.created_at };
  if (children.length) {
    const specs: Record<string, string | null> = {};
    let updated: Date | undefined;
    for (const c of children) {
      if (c.deleted) continue;
      if (c.updated_at && (!updated || c.updated_at > updated)) updated = c.updated_at;
      if (c.key !== null) specs[c.key] = c.value;
    }
    member.consumer = specs.consumer ?? null;
    delete specs.consumer;
    if (updated) member.updated_at = updated;
    member.specs = specs;
  }
  return member;
}

/** qos_specs_get(qos_specs_id): {id, name, consumer, specs, created_at}. QoSSpecsNotFound. */
export async function qosSpecsGet(db: DbHandle, qosSpecsId: string, opts: { inactive?: boolean } = {}): Promise<QosSpecs> {
  let q = db.kysely.selectFrom('quality_of_service_specs').select(['id', 'key', 'value', 'created_at']).where('id', '=', qosSpecsId);
  if (!opts.inactive) q = q.where('deleted', '=', false);
  const root = await q.executeTakeFirst();
  if (!root || root.key !== 'QoS_Specs_Name') throw qosSpecsNotFound(qosSpecsId);
  return qosFromRoot(db, root);
}

/**
 * volume_type_qos_specs_get(type_id): {qos_specs: {...} | null} — the QoS spec associated with
 * the type (what initialize_connection puts in connection_info after filtering by consumer).
 */
export async function qosSpecsForType(db: DbHandle, volumeTypeId: string): Promise<{ qos_specs: QosSpecs | null }> {
  const type = await getType(db, volumeTypeId);
  if (!type.qos_specs_id) return { qos_specs: null };
  const root = await db.kysely
    .selectFrom('quality_of_service_specs')
    .select(['id', 'key', 'value', 'created_at'])
    .where('id', '=', type.qos_specs_id)
    .where('deleted', '=', false)
    .executeTakeFirst();
  if (!root || root.key !== 'QoS_Specs_Name') return { qos_specs: null };
  return { qos_specs: await qosFromRoot(db, root) };
}

/** volume_type_encryption_get: the live encryption row of a type, if any. */
export async function encryptionGet(db: DbHandle, volumeTypeId: string): Promise<Encryption | undefined> {
  return db.kysely.selectFrom('encryption').selectAll().where('volume_type_id', '=', volumeTypeId).where('deleted', '=', false).executeTakeFirst();
}
