// The arguments of every RPC method the volume manager serves, one zod schema per method, checked
// before the method runs: a flow receives typed, validated arguments and checks none itself.
// What cinder sends is in cinder/volume/rpcapi.py (API 3.18), what each method takes in
// cinder/volume/manager.py. Objects (Volume, Snapshot, RequestSpec) are checked by the views of
// src/rpc/ovo-schemas.ts and arrive as the very VersionedObject decoded off the wire, so what a
// flow changes on one and sends on (a reschedule) is what cinder sent.
//
// A bad argument is cinder's InvalidInput naming it: "new_size must be a positive integer number
// of GiB, got 2.5", "connector host must be a string", "volume.id: must be a UUID" (an object's
// field, as ovo-schemas words it). To add a method: a schema here, then its entry in the method
// table (volume-manager.ts); the table accepts no method without a schema.
import { z } from 'zod';
import type { Connector } from '../../drivers/exports.js';
import { CinderError, invalidInput } from '../errors.js';
import type { RpcHandler } from '../rpc/dispatcher.js';
import { parseIsoDatetime, VersionedObject } from '../rpc/ovo.js';
import { objectFromPrimitive, type RequestSpecObject, type SnapshotObject, type VolumeObject } from '../rpc/ovo-schemas.js';
import { assertInitiatorName } from '../iscsi/index.js';
import { isUuid } from '../validation/uuid.js';

/** An issue whose message is a whole reason already (from a check that words its own). */
const WHOLE_REASON = 'wholeReason';

/** An argument's value in a message, as JSON (never more than a line: JSON escapes newlines). */
function shown(value: unknown): string {
  try {
    const json = JSON.stringify(value) ?? 'nothing';
    return json.length > 80 ? `${json.slice(0, 80)}…` : json;
  } catch {
    return `a ${typeof value}`;
  }
}

function isDict(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && !(value instanceof VersionedObject);
}

const isAbsent = (value: unknown): value is null | undefined => value === undefined || value === null;

/** Runs a check that throws InvalidInput (the iSCSI name rule, the object views) as a zod issue. */
function fromCinderCheck(check: () => void, ctx: z.RefinementCtx): boolean {
  try {
    check();
    return true;
  } catch (err) {
    if (!(err instanceof CinderError) || err.className !== 'InvalidInput') throw err;
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: String(err.kwargs.reason ?? err.message), params: { [WHOLE_REASON]: true } });
    return false;
  }
}

// ---- argument rules ---------------------------------------------------------------------------
// z.custom keeps the value itself (no copy), so a dict or object a flow changes is the one sent.

const uuid = z.custom<string>(isUuid, (v: unknown) => ({ message: `must be a UUID, got ${shown(v)}` }));
const optionalUuid = uuid.nullish().transform((v) => v ?? null);

const sizeGiB = z.custom<number>(
  (v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 1,
  (v: unknown) => ({ message: `must be a positive integer number of GiB, got ${shown(v)}` }),
);

const dict = z.custom<Record<string, unknown>>(isDict, { message: 'must be a dict' });
const optionalDict = dict.nullish();

const bool = (dflt: boolean) =>
  z
    .custom<boolean>((v) => typeof v === 'boolean', { message: 'must be a boolean' })
    .nullish()
    .transform((v) => v ?? dflt);

const optionalString = z
  .custom<string>((v) => typeof v === 'string', { message: 'must be a string' })
  .nullish()
  .transform((v) => v ?? null);

/** Quota reservation ids; cinder sends None for none. */
const reservations = z
  .custom<string[]>((v) => Array.isArray(v) && v.every((x) => typeof x === 'string'), { message: 'must be a list of strings' })
  .nullish()
  .transform((v) => v ?? []);

/** `v` as the cinder object `kind`, checked by its ovo-schemas view under the argument's name. */
function checkedObject<T>(kind: 'Volume' | 'Snapshot' | 'RequestSpec', v: unknown, ctx: z.RefinementCtx): T {
  let o: unknown;
  if (!fromCinderCheck(() => (o = objectFromPrimitive(kind, v, ctx.path.join('.'))), ctx)) return z.NEVER;
  return o as T;
}
const volume = z.unknown().transform((v, ctx) => checkedObject<VolumeObject>('Volume', v, ctx));
const snapshot = z.unknown().transform((v, ctx) => checkedObject<SnapshotObject>('Snapshot', v, ctx));
/** request_spec: a RequestSpec, or none. */
const requestSpec = z.unknown().transform((v, ctx) => (isAbsent(v) ? null : checkedObject<RequestSpecObject>('RequestSpec', v, ctx)));

/** log_request: a LogLevel object (prefix, level); its fields are read leniently. */
const logRequest = z.custom<VersionedObject>((v) => v instanceof VersionedObject && v.name === 'LogLevel', { message: 'must be a LogLevel object' });

/** The connector fields the flows record on the attachment. */
const CONNECTOR_STRINGS = ['host', 'mountpoint', 'mode'] as const;

/**
 * nova's connector for a connection being made. A missing initiator is left to the driver's
 * validate_connector, which words it as cinder does ("Connector doesn't have required
 * information: initiator"); one that is given must be an iSCSI name by the project's one rule,
 * the very check the target helper makes before it admits the initiator.
 */
const connector = dict.superRefine((c, ctx) => {
  if (c.initiator !== undefined) fromCinderCheck(() => assertInitiatorName(c.initiator), ctx);
  for (const key of CONNECTOR_STRINGS) {
    const v = c[key];
    if (!isAbsent(v) && typeof v !== 'string') ctx.addIssue({ code: z.ZodIssueCode.custom, path: [key], message: 'must be a string' });
  }
}) as unknown as z.ZodType<Connector>;

/**
 * The connector of a connection being undone: a dict or none (force). Its initiator is not
 * checked: a detach is never refused, and a name that is not an iSCSI name was never admitted
 * (the target helper makes its revocation a no-op).
 */
const connectorToUndo = optionalDict.transform((v) => (v ?? null) as Connector | null);

/** An argument cinder sends that the method does not use (it reads the row by id instead). */
const unused = z.unknown();

/**
 * A cinder object the flow reads by id from the database (Group, GroupSnapshot, CleanupRequest
 * fields aside): checked to be that object with a UUID id, and kept as sent.
 */
function objectWithId(name: string) {
  return z.custom<VersionedObject & { data: { id: string } }>(
    (v) => v instanceof VersionedObject && v.name === name && isUuid(v.data.id),
    (v: unknown) => ({ message: `must be a ${name} object with a UUID id, got ${v instanceof VersionedObject ? `a ${v.name}` : shown(v)}` }),
  );
}
const group = objectWithId('Group');
/** The Backup cinder-backup sends: what get_backup_device reads of it is checked, the rest kept as sent. */
const backupObject = z.custom<VersionedObject & { data: { id: string; volume_id: string; snapshot_id?: string | null } }>(
  (v) =>
    v instanceof VersionedObject &&
    v.name === 'Backup' &&
    isUuid(v.data.id) &&
    isUuid(v.data.volume_id) &&
    (isAbsent(v.data.snapshot_id) || isUuid(v.data.snapshot_id)),
  (v: unknown) => ({ message: `must be a Backup object with UUID id, volume_id and snapshot_id, got ${v instanceof VersionedObject ? `a ${v.name}` : shown(v)}` }),
);
const groupSnapshot = objectWithId('GroupSnapshot');

/** A list of strings or none (sort keys and directions). */
const optionalStrings = z
  .custom<string[]>((v) => Array.isArray(v) && v.every((x) => typeof x === 'string'), { message: 'must be a list of strings' })
  .nullish()
  .transform((v) => v ?? null);

/** A count (limit, offset) or none. */
const optionalCount = z
  .custom<number>((v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0, (v: unknown) => ({ message: `must be a non-negative integer, got ${shown(v)}` }))
  .nullish()
  .transform((v) => v ?? null);

/** objects.CleanupRequest: which workers rows to clean (every field may be unset). */
const cleanupRequest = z
  .custom<VersionedObject>((v) => v instanceof VersionedObject && v.name === 'CleanupRequest', { message: 'must be a CleanupRequest object' })
  .transform((v, ctx) => {
    const d = v.data;
    const str = (k: string): string | null => (typeof d[k] === 'string' ? (d[k] as string) : null);
    const serviceId = d.service_id;
    if (!isAbsent(serviceId) && !(typeof serviceId === 'number' && Number.isSafeInteger(serviceId))) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['service_id'], message: 'must be an integer' });
      return z.NEVER;
    }
    const resourceId = str('resource_id');
    if (resourceId !== null && !isUuid(resourceId)) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['resource_id'], message: `must be a UUID, got ${shown(resourceId)}` });
      return z.NEVER;
    }
    let until: Date | null = null;
    if (!isAbsent(d.until)) {
      try {
        until = parseIsoDatetime(String(d.until));
      } catch {
        ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['until'], message: `must be a datetime, got ${shown(d.until)}` });
        return z.NEVER;
      }
    }
    return {
      service_id: (serviceId as number | null | undefined) ?? null,
      resource_type: str('resource_type'),
      resource_id: resourceId,
      until,
    };
  });

/**
 * The backend a volume migrates to, as rpcapi sends it: {host: 'host@backend#pool',
 * cluster_name (3.5+), capabilities: the pool's capabilities from the scheduler}.
 */
const destinationBackend = dict.transform((v, ctx) => {
  if (typeof v.host !== 'string' || !v.host) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['host'], message: `must be a host name, got ${shown(v.host)}` });
    return z.NEVER;
  }
  const cluster = typeof v.cluster_name === 'string' ? v.cluster_name : null;
  return { host: v.host, cluster_name: cluster, capabilities: isDict(v.capabilities) ? v.capabilities : {} };
});

// ---- one schema per method --------------------------------------------------------------------

/** get_manageable_volumes and get_manageable_snapshots take the same arguments. */
const manageableListArgs = z.object({
  marker: optionalString,
  limit: optionalCount,
  offset: optionalCount,
  sort_keys: optionalStrings,
  sort_dirs: optionalStrings,
  want_objects: bool(false),
});

/**
 * The image cinder-api casts with copy_volume_to_image and reimage (a Glance image dict, datetimes
 * as strings): the id and formats checked here, since they end up in URLs and qemu-img argv.
 */
const imageMeta = z
  .object({
    id: uuid,
    disk_format: z.enum(['ami', 'ari', 'aki', 'vhd', 'vhdx', 'vmdk', 'raw', 'qcow2', 'vdi', 'iso', 'ploop']),
    container_format: z.enum(['ami', 'ari', 'aki', 'bare', 'ovf', 'ova', 'docker', 'compressed']).nullish(),
  })
  .passthrough();

export const VOLUME_RPC_ARGUMENTS = {
  // discover asks cinder's driver to refresh its cached stats; ours are never cached.
  get_capabilities: z.object({ discover: unused }),
  secure_file_operations_enabled: z.object({ volume: unused }),
  publish_service_capabilities: z.object({}),
  get_log_levels: z.object({ log_request: logRequest }),
  set_log_levels: z.object({ log_request: logRequest }),
  create_volume: z.object({
    volume,
    request_spec: requestSpec,
    filter_properties: optionalDict.transform((v) => v ?? {}),
    allow_reschedule: bool(true),
  }),
  delete_volume: z.object({ volume, unmanage_only: bool(false), cascade: bool(false) }),
  extend_volume: z.object({ volume, new_size: sizeGiB, reservations }),
  initialize_connection: z.object({ volume, connector }),
  terminate_connection: z.object({ volume_id: uuid, connector: connectorToUndo, force: bool(false) }),
  attachment_update: z.object({ vref: volume, connector, attachment_id: uuid }),
  attachment_delete: z.object({ attachment_id: uuid, vref: volume }),
  remove_export: z.object({ volume_id: uuid }),
  create_snapshot: z.object({ snapshot }),
  delete_snapshot: z.object({ snapshot, unmanage_only: bool(false) }),
  revert_to_snapshot: z.object({ volume, snapshot }),
  retype: z.object({
    volume,
    new_type_id: uuid,
    host: destinationBackend,
    migration_policy: optionalString.transform((v) => v ?? 'never'),
    reservations,
    old_reservations: reservations,
  }),
  manage_existing: z.object({ volume, ref: dict }),
  migrate_volume: z.object({ volume, host: destinationBackend, force_host_copy: bool(false) }),
  migrate_volume_completion: z.object({ volume, new_volume: volume, error: bool(false) }),
  update_migrated_volume: z.object({ volume, new_volume: volume, volume_status: optionalString }),
  attach_volume: z.object({
    volume_id: uuid,
    instance_uuid: optionalUuid,
    host_name: optionalString,
    mountpoint: optionalString,
    mode: optionalString.transform((v) => v ?? 'rw').refine((v): v is 'rw' | 'ro' => v === 'rw' || v === 'ro', { message: 'must be rw or ro' }),
    volume: unused,
  }),
  detach_volume: z.object({ volume_id: uuid, attachment_id: optionalUuid, volume: unused }),
  // issue 14: cinder-backup's calls
  get_backup_device: z.object({ backup: backupObject, want_objects: bool(false), async_call: bool(false) }),
  initialize_connection_snapshot: z.object({ snapshot_id: uuid, connector }),
  terminate_connection_snapshot: z.object({ snapshot_id: uuid, connector: connectorToUndo, force: bool(false) }),
  remove_export_snapshot: z.object({ snapshot_id: uuid }),
  // issue 17: transfers, generic groups, manageable lists, cleanup, freeze/thaw and failover
  accept_transfer: z.object({ volume_id: uuid, new_user: optionalString, new_project: optionalString, no_snapshots: bool(false) }),
  create_group: z.object({ group }),
  update_group: z.object({ group, add_volumes: optionalString, remove_volumes: optionalString }),
  delete_group: z.object({ group }),
  create_group_from_src: z.object({ group, group_snapshot: groupSnapshot.nullish().transform((v) => v ?? null), source_group: group.nullish().transform((v) => v ?? null) }),
  create_group_snapshot: z.object({ group_snapshot: groupSnapshot }),
  delete_group_snapshot: z.object({ group_snapshot: groupSnapshot }),
  get_manageable_volumes: manageableListArgs,
  get_manageable_snapshots: manageableListArgs,
  manage_existing_snapshot: z.object({ snapshot, ref: optionalDict.transform((v) => v ?? {}) }),
  do_cleanup: z.object({ cleanup_request: cleanupRequest }),
  freeze_host: z.object({}),
  thaw_host: z.object({}),
  failover: z.object({ secondary_backend_id: optionalString }),
  // what VolumeAPI.failover sends when pinned below 3.8 (cinder's manager aliases it to failover)
  failover_host: z.object({ secondary_backend_id: optionalString }),
  failover_completed: z.object({ updates: dict }),
  enable_replication: z.object({ group }),
  disable_replication: z.object({ group }),
  failover_replication: z.object({ group, allow_attached_volume: bool(false), secondary_backend_id: optionalString }),
  list_replication_targets: z.object({ group }),
  // issue 13: Glance image paths
  copy_volume_to_image: z.object({ volume_id: uuid, image_meta: imageMeta }),
  reimage: z.object({ volume, image_meta: imageMeta }),
} satisfies Record<string, z.ZodTypeAny>;

export type VolumeRpcMethod = keyof typeof VOLUME_RPC_ARGUMENTS;
export type RpcArguments<M extends VolumeRpcMethod> = z.output<(typeof VOLUME_RPC_ARGUMENTS)[M]>;

export function isVolumeRpcMethod(name: string): name is VolumeRpcMethod {
  return Object.prototype.hasOwnProperty.call(VOLUME_RPC_ARGUMENTS, name);
}

/** One reason per issue: the argument's path, then the rule ("connector host must be a string"). */
function argumentError(err: z.ZodError): CinderError {
  const reasons = err.issues.slice(0, 3).map((i) => {
    if (i.code === z.ZodIssueCode.custom && i.params?.[WHOLE_REASON]) return i.message;
    return `${i.path.join(' ')} ${i.message}`;
  });
  if (err.issues.length > 3) reasons.push(`(${err.issues.length - 3} more)`);
  return invalidInput(reasons.join('; '));
}

/** `kwargs` of `method` checked and typed; InvalidInput naming the argument otherwise. */
export function parseRpcArguments<M extends VolumeRpcMethod>(method: M, kwargs: Record<string, unknown>): RpcArguments<M> {
  const r = (VOLUME_RPC_ARGUMENTS[method] as z.ZodTypeAny).safeParse(kwargs);
  if (!r.success) throw argumentError(r.error);
  return r.data as RpcArguments<M>;
}

// ---- single arguments -------------------------------------------------------------------------

/** One value checked by one of the rules above, named `field` in the error. */
function parseArgument<T>(rule: z.ZodType<T, z.ZodTypeDef, unknown>, value: unknown, field: string): T {
  const r = z.object({ [field]: rule }).safeParse({ [field]: value });
  if (!r.success) throw argumentError(r.error);
  return r.data[field] as T;
}

export const requireUuid = (value: unknown, field: string): string => parseArgument(uuid, value, field);
export const requireSize = (value: unknown, field: string): number => parseArgument(sizeGiB, value, field);
export const requireDict = (value: unknown, field: string): Record<string, unknown> => parseArgument(dict, value, field);
export const optionalStringList = (value: unknown, field: string): string[] => parseArgument(reservations, value, field);

// ---- the table's side -------------------------------------------------------------------------

export type TypedHandler<M extends VolumeRpcMethod> = (ctx: Record<string, unknown>, args: RpcArguments<M>) => unknown;
export type TypedMethodTable = { [M in VolumeRpcMethod]?: TypedHandler<M> };

/** A method table as the RPC server takes it: each handler gets its kwargs parsed by its schema first. */
export function typedMethods(table: TypedMethodTable): Record<string, RpcHandler> {
  const out: Record<string, RpcHandler> = {};
  for (const [name, handler] of Object.entries(table) as Array<[VolumeRpcMethod, TypedHandler<VolumeRpcMethod>]>) {
    out[name] = async (ctx, kwargs) => handler(ctx, parseRpcArguments(name, kwargs));
  }
  return out;
}
