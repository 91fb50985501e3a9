// Typed views over the cinder objects the volume manager receives. Validation only: a view is the
// same VersionedObject (data untouched, unknown fields kept), so whatever the manager sends back
// re-encodes to what cinder sent. Field names, types and nullability follow the `fields` of
// cinder 21.3 objects (volume.py, snapshot.py, volume_attachment.py, volume_type.py,
// request_spec.py, qos_specs.py); a field may be absent (oslo only sends fields that are set).
// Checks are stricter than oslo's coercion (no int -> str) so a crafted message fails clearly.
import { z } from 'zod';
import { invalidInput, type CinderError } from '../errors.js';
import { isUuid } from '../validation/uuid.js';
import { OBJ_NAMESPACE, OBJ_VERSIONS, parseIsoDatetime, VersionedObject } from './ovo.js';

export { OBJ_VERSIONS, OBJ_VERSIONS_CURRENT } from './ovo.js';

export type Ovo<D> = VersionedObject & { data: D };

const uuid = z.string().refine(isUuid, 'must be a UUID');
const nUuid = uuid.nullable().optional();
const nStr = z.string().nullable().optional();
const nInt = z.number().int().nullable().optional();
const nBool = z.boolean().nullable().optional();
const nDate = z
  .string()
  .refine((s) => { try { parseIsoDatetime(s); return true; } catch { return false; } }, 'must be an ISO 8601 datetime')
  .nullable()
  .optional();
const nDictOfStrings = z.record(z.string()).nullable().optional();
const nDictOfNullable = z.record(z.unknown()).nullable().optional();
const nListOfStrings = z.array(z.string()).nullable().optional();

const ATTACH_STATUS = ['attached', 'attaching', 'detached', 'error_attaching', 'error_detaching', 'reserved', 'deleted'] as const;
const SNAPSHOT_STATUS = ['error', 'available', 'creating', 'deleting', 'deleted', 'updating', 'error_deleting', 'unmanaging', 'backing-up', 'restoring'] as const;

function versionOk(name: string, version: string): string | null {
  const known = OBJ_VERSIONS[name];
  if (known === undefined) return null;
  const [maj, min] = version.split('.').map(Number) as [number, number];
  const [kMaj, kMin] = known.split('.').map(Number) as [number, number];
  if (maj !== kMaj || min > kMin) return `${name} version ${version} is not supported (this agent handles ${kMaj}.0-${known})`;
  return null;
}

/** Adds issues for `v` not being a `name` object whose data matches `data` (when given). */
function checkObject(v: unknown, name: string, data: z.ZodTypeAny | undefined, ctx: z.RefinementCtx): void {
  if (!(v instanceof VersionedObject)) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `expected a ${name} object, got ${v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v}` });
    return;
  }
  if (v.name !== name) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `expected a ${name} object, got ${v.name}` });
    return;
  }
  if (v.namespace !== OBJ_NAMESPACE) ctx.addIssue({ code: z.ZodIssueCode.custom, message: `unsupported object namespace ${v.namespace}` });
  const bad = versionOk(name, v.version);
  if (bad) ctx.addIssue({ code: z.ZodIssueCode.custom, message: bad });
  if (!data) return;
  const r = data.safeParse(v.data);
  if (!r.success) for (const issue of r.error.issues) ctx.addIssue({ ...issue, path: issue.path } as z.IssueData);
}

/** A nested object field (ObjectField): a VersionedObject named `name`, data checked by `data`. */
function obj<D extends z.ZodTypeAny>(name: string, data?: D): z.ZodType<Ovo<z.infer<D>>> {
  return z.any().superRefine((v, ctx) => checkObject(v, name, data, ctx)) as unknown as z.ZodType<Ovo<z.infer<D>>>;
}

/** An ObjectListBase field: `{objects: [item...]}`. */
function list<D extends z.ZodTypeAny>(listName: string, itemName: string, item?: D): z.ZodType<Ovo<{ objects: Ovo<z.infer<D>>[] }>> {
  const data = z.object({ objects: z.array(obj(itemName, item)) }).passthrough();
  return obj(listName, data) as unknown as z.ZodType<Ovo<{ objects: Ovo<z.infer<D>>[] }>>;
}

const timestamps = { created_at: nDate, updated_at: nDate, deleted_at: nDate, deleted: nBool };

export const qosSpecsData = z
  .object({ id: uuid, name: z.string().optional(), consumer: z.enum(['back-end', 'front-end', 'both']).optional(), specs: nDictOfNullable, ...timestamps })
  .passthrough();

export const volumeTypeData = z
  .object({
    id: uuid,
    name: nStr,
    description: nStr,
    is_public: nBool,
    projects: nListOfStrings,
    extra_specs: z.record(z.string().nullable()).nullable().optional(),
    qos_specs_id: nUuid,
    qos_specs: obj('QualityOfServiceSpecs', qosSpecsData).nullable().optional(),
    ...timestamps,
  })
  .passthrough();

export const volumeAttachmentData = z
  .object({
    id: uuid,
    volume_id: uuid.optional(),
    instance_uuid: nUuid,
    attached_host: nStr,
    mountpoint: nStr,
    attach_time: nDate,
    detach_time: nDate,
    attach_status: z.enum(ATTACH_STATUS).nullable().optional(),
    attach_mode: nStr,
    // VolumeAttachment.volume -> Volume would be a cycle; only its name is checked.
    volume: obj('Volume').optional(),
    connection_info: nDictOfNullable,
    connector: nDictOfNullable,
    ...timestamps,
  })
  .passthrough();

export const volumeData = z
  .object({
    id: uuid,
    _name_id: nUuid,
    ec2_id: nUuid,
    user_id: nStr,
    project_id: nStr,
    use_quota: nBool,
    snapshot_id: nUuid,
    cluster_name: nStr,
    cluster: obj('Cluster').nullable().optional(),
    host: nStr,
    size: nInt,
    availability_zone: nStr,
    status: nStr,
    attach_status: z.enum(ATTACH_STATUS).nullable().optional(),
    migration_status: nStr,
    scheduled_at: nDate,
    launched_at: nDate,
    terminated_at: nDate,
    display_name: nStr,
    display_description: nStr,
    provider_id: nStr,
    provider_location: nStr,
    provider_auth: nStr,
    provider_geometry: nStr,
    volume_type_id: nUuid,
    source_volid: nUuid,
    encryption_key_id: nUuid,
    consistencygroup_id: nUuid,
    group_id: nUuid,
    bootable: nBool,
    multiattach: nBool,
    replication_status: nStr,
    replication_extended_status: nStr,
    replication_driver_data: nStr,
    previous_status: nStr,
    metadata: nDictOfStrings,
    admin_metadata: nDictOfStrings,
    glance_metadata: nDictOfStrings,
    volume_type: obj('VolumeType', volumeTypeData).nullable().optional(),
    volume_attachment: list('VolumeAttachmentList', 'VolumeAttachment', volumeAttachmentData).nullable().optional(),
    consistencygroup: obj('ConsistencyGroup').nullable().optional(),
    snapshots: list('SnapshotList', 'Snapshot').nullable().optional(),
    group: obj('Group').nullable().optional(),
    service_uuid: nStr,
    shared_targets: nBool,
    ...timestamps,
  })
  .passthrough();

export const snapshotData = z
  .object({
    id: uuid,
    user_id: nStr,
    project_id: nStr,
    use_quota: nBool,
    volume_id: nUuid,
    cgsnapshot_id: nUuid,
    group_snapshot_id: nUuid,
    status: z.enum(SNAPSHOT_STATUS).nullable().optional(),
    progress: nStr,
    volume_size: nInt,
    display_name: nStr,
    display_description: nStr,
    encryption_key_id: nUuid,
    volume_type_id: nUuid,
    provider_location: nStr,
    provider_id: nStr,
    metadata: z.record(z.string()).optional(),
    provider_auth: nStr,
    volume: obj('Volume', volumeData).nullable().optional(),
    cgsnapshot: obj('CGSnapshot').nullable().optional(),
    group_snapshot: obj('GroupSnapshot').nullable().optional(),
    ...timestamps,
  })
  .passthrough();

export const volumePropertiesData = z
  .object({
    attach_status: nStr, availability_zone: nStr, cgsnapshot_id: nUuid, consistencygroup_id: nUuid, group_id: nUuid,
    display_description: nStr, display_name: nStr, encryption_key_id: nUuid, metadata: nDictOfStrings, multiattach: nBool,
    project_id: nStr, qos_specs: nDictOfStrings, replication_status: nStr, reservations: nListOfStrings, size: nInt,
    snapshot_id: nUuid, source_replicaid: nUuid, source_volid: nUuid, status: nStr, user_id: nStr, volume_type_id: nUuid,
    group_type_id: nUuid,
  })
  .passthrough();

export const requestSpecData = z
  .object({
    consistencygroup_id: nUuid, group_id: nUuid, cgsnapshot_id: nUuid, image_id: nUuid, snapshot_id: nUuid,
    source_replicaid: nUuid, source_volid: nUuid, volume_id: nUuid,
    volume: obj('Volume', volumeData).nullable().optional(),
    volume_type: obj('VolumeType', volumeTypeData).nullable().optional(),
    volume_properties: obj('VolumeProperties', volumePropertiesData).nullable().optional(),
    CG_backend: nStr, group_backend: nStr, resource_backend: nStr, backup_id: nUuid, operation: nStr,
    availability_zones: nListOfStrings,
  })
  .passthrough();

export type VolumeTypeData = z.infer<typeof volumeTypeData>;
export type VolumeAttachmentData = z.infer<typeof volumeAttachmentData>;
export type VolumeData = z.infer<typeof volumeData>;
export type SnapshotData = z.infer<typeof snapshotData>;
export type RequestSpecData = z.infer<typeof requestSpecData>;
export type VolumeTypeObject = Ovo<VolumeTypeData>;
export type VolumeAttachmentObject = Ovo<VolumeAttachmentData>;
export type VolumeAttachmentListObject = Ovo<{ objects: VolumeAttachmentObject[] }>;
export type VolumeObject = Ovo<VolumeData>;
export type SnapshotObject = Ovo<SnapshotData>;
export type RequestSpecObject = Ovo<RequestSpecData>;

const views = {
  Volume: obj('Volume', volumeData),
  Snapshot: obj('Snapshot', snapshotData),
  VolumeAttachment: obj('VolumeAttachment', volumeAttachmentData),
  VolumeAttachmentList: list('VolumeAttachmentList', 'VolumeAttachment', volumeAttachmentData),
  VolumeType: obj('VolumeType', volumeTypeData),
  RequestSpec: obj('RequestSpec', requestSpecData),
};
export type ViewName = keyof typeof views;
type ViewOf<K extends ViewName> = z.infer<(typeof views)[K]>;

function describeIssues(field: string, err: z.ZodError): CinderError {
  const parts = err.issues.slice(0, 3).map((i) => `${[field, ...i.path].join('.')}: ${i.message}`);
  if (err.issues.length > 3) parts.push(`(${err.issues.length - 3} more)`);
  return invalidInput(parts.join('; '));
}

/**
 * A primitive (or an already decoded VersionedObject) as the typed view `kind`. Throws a
 * CinderError InvalidInput naming the offending field, e.g. "volume.volume_type.id: must be a UUID".
 */
export function objectFromPrimitive<K extends ViewName>(kind: K, value: unknown, field: string): ViewOf<K> {
  const o = value instanceof VersionedObject ? value : VersionedObject.fromPrimitive(value, field);
  const r = views[kind].safeParse(o);
  if (!r.success) throw describeIssues(field, r.error);
  return o as ViewOf<K>;
}

export const volumeFromPrimitive = (v: unknown, field = 'volume'): VolumeObject => objectFromPrimitive('Volume', v, field);
export const snapshotFromPrimitive = (v: unknown, field = 'snapshot'): SnapshotObject => objectFromPrimitive('Snapshot', v, field);
export const volumeAttachmentFromPrimitive = (v: unknown, field = 'attachment'): VolumeAttachmentObject =>
  objectFromPrimitive('VolumeAttachment', v, field);
export const volumeTypeFromPrimitive = (v: unknown, field = 'volume_type'): VolumeTypeObject => objectFromPrimitive('VolumeType', v, field);
export const requestSpecFromPrimitive = (v: unknown, field = 'request_spec'): RequestSpecObject =>
  objectFromPrimitive('RequestSpec', v, field);

/** A DateTimeField value as a Date (null when unset). */
export function fieldDate(value: unknown): Date | null {
  return typeof value === 'string' ? parseIsoDatetime(value) : null;
}

/** Volume.name: volume_name_template % (_name_id or id). */
export function volumeName(v: VolumeObject, template = 'volume-%s'): string {
  return template.replace('%s', v.data._name_id ?? v.data.id);
}

/** Snapshot.name: snapshot_name_template % id. */
export function snapshotName(s: SnapshotObject, template = 'snapshot-%s'): string {
  return template.replace('%s', s.data.id);
}
