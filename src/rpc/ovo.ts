// oslo.versionedobjects codec (oslo_versionedobjects/base.py obj_to_primitive/obj_from_primitive,
// VersionedObjectSerializer.{serialize,deserialize}_entity; cinder/objects/base.py).
// Objects are kept generically: `data` holds the primitive field values exactly as received
// (datetimes stay strings), so decode -> encode gives back the identical primitive, including
// fields and object names this agent does not know. Typed views live in ovo-schemas.ts.
import { invalidInput } from '../errors.js';

const NAME = 'versioned_object.name';
const NAMESPACE = 'versioned_object.namespace';
const VERSION = 'versioned_object.version';
const DATA = 'versioned_object.data';
const CHANGES = 'versioned_object.changes';

export const OBJ_NAMESPACE = 'cinder';
/** cinder 21.3 (Zed) objects/base.py OBJ_VERSIONS.get_current(); registered in services.object_current_version. */
export const OBJ_VERSIONS_CURRENT = '1.39';
/** OBJ_VERSIONS['1.39'] as printed by cinder 21.3.1: the versions this agent sends and understands. */
export const OBJ_VERSIONS: Readonly<Record<string, string>> = Object.freeze({
  Backup: '1.7', BackupDeviceInfo: '1.0', BackupImport: '1.7', BackupList: '1.0', CleanupRequest: '1.0',
  CGSnapshot: '1.1', CGSnapshotList: '1.0', Cluster: '1.1', ClusterList: '1.0', ConsistencyGroup: '1.4',
  ConsistencyGroupList: '1.1', Group: '1.2', GroupList: '1.0', GroupSnapshot: '1.0', GroupSnapshotList: '1.0',
  GroupType: '1.0', GroupTypeList: '1.0', LogLevel: '1.0', LogLevelList: '1.0', ManageableSnapshot: '1.0',
  ManageableSnapshotList: '1.0', ManageableVolume: '1.0', ManageableVolumeList: '1.0',
  QualityOfServiceSpecs: '1.0', QualityOfServiceSpecsList: '1.0', RequestSpec: '1.5', Service: '1.6',
  ServiceList: '1.1', Snapshot: '1.6', SnapshotList: '1.0', Volume: '1.9', VolumeAttachment: '1.3',
  VolumeAttachmentList: '1.1', VolumeList: '1.1', VolumeProperties: '1.1', VolumeType: '1.3', VolumeTypeList: '1.1',
});

export class VersionedObject {
  name: string;
  namespace: string;
  version: string;
  /** Field primitives by name; nested objects are VersionedObject, lists of objects live in `objects`. */
  data: Record<string, unknown>;
  /** versioned_object.changes; null when the primitive had none (oslo omits it for clean objects). */
  changes: string[] | null;

  constructor(name: string, data: Record<string, unknown> = {}, opts: { version?: string; namespace?: string; changes?: string[] | null } = {}) {
    const version = opts.version ?? OBJ_VERSIONS[name];
    if (version === undefined) throw new Error(`no known version for object ${name}; pass one`);
    this.name = name;
    this.namespace = opts.namespace ?? OBJ_NAMESPACE;
    this.version = version;
    this.data = data;
    this.changes = opts.changes ?? null;
  }

  has(field: string): boolean {
    return Object.prototype.hasOwnProperty.call(this.data, field);
  }

  get<T = unknown>(field: string): T | undefined {
    return this.data[field] as T | undefined;
  }

  /** Sets a field and marks it changed, as setattr on an oslo object does. */
  set(field: string, value: unknown): this {
    this.data[field] = value;
    if (this.changes === null) this.changes = [];
    if (!this.changes.includes(field)) this.changes.push(field);
    return this;
  }

  /** Members of an ObjectListBase (`data.objects`), empty for other objects. */
  get objects(): VersionedObject[] {
    const o = this.data.objects;
    return Array.isArray(o) ? o.filter((x): x is VersionedObject => x instanceof VersionedObject) : [];
  }

  toPrimitive(): Record<string, unknown> {
    return serializeEntity(this) as Record<string, unknown>;
  }

  static fromPrimitive(p: unknown, path = 'object'): VersionedObject {
    const v = deserializeEntity(p, path);
    if (!(v instanceof VersionedObject)) throw invalidInput(`${path}: expected a versioned object primitive`);
    return v;
  }
}

export function isObjectPrimitive(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && NAME in v;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

function objectFrom(p: Record<string, unknown>, path: string): VersionedObject {
  const name = p[NAME];
  const namespace = p[NAMESPACE];
  const version = p[VERSION];
  const data = p[DATA];
  const changes = p[CHANGES];
  if (typeof name !== 'string' || name === '') throw invalidInput(`${path}: versioned_object.name must be a non-empty string`);
  if (typeof namespace !== 'string') throw invalidInput(`${path}: ${name} has no versioned_object.namespace`);
  if (typeof version !== 'string' || !/^\d+\.\d+$/.test(version)) throw invalidInput(`${path}: ${name} has a bad versioned_object.version ${JSON.stringify(version)}`);
  if (!isPlainObject(data)) throw invalidInput(`${path}: ${name} versioned_object.data must be an object`);
  if (changes !== undefined && !(Array.isArray(changes) && changes.every((c) => typeof c === 'string'))) {
    throw invalidInput(`${path}: ${name} versioned_object.changes must be a list of field names`);
  }
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(data)) fields[k] = deserializeEntity(v, `${path}.${k}`);
  return new VersionedObject(name, fields, { version, namespace, changes: changes === undefined ? null : [...changes] });
}

/**
 * Primitives carrying versioned_object.name become VersionedObject, at any depth (inside args
 * dicts, object fields and ObjectList `objects`). Everything else is copied as is.
 * Throws a CinderError InvalidInput naming `path` for a malformed object primitive.
 */
export function deserializeEntity(value: unknown, path = 'value'): unknown {
  if (Array.isArray(value)) return value.map((v, i) => deserializeEntity(v, `${path}[${i}]`));
  if (isObjectPrimitive(value)) return objectFrom(value, path);
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = deserializeEntity(v, `${path}.${k}`);
    return out;
  }
  return value;
}

function serialize(value: unknown, objectField: boolean): unknown {
  if (value instanceof VersionedObject) {
    const data: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value.data)) if (v !== undefined) data[k] = serialize(v, true);
    const p: Record<string, unknown> = { [NAME]: value.name, [NAMESPACE]: value.namespace, [VERSION]: value.version, [DATA]: data };
    if (value.changes !== null) p[CHANGES] = [...value.changes];
    return p;
  }
  // A DateTimeField is written by oslo's isotime; a datetime anywhere else by jsonutils.
  if (value instanceof Date) return objectField ? formatOvoDatetime(value) : formatPerfectTime(value);
  if (Array.isArray(value)) return value.map((v) => serialize(v, false));
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = serialize(v, false);
    return out;
  }
  return value; // primitives and special values such as PyFloat are left to the JSON writer
}

/** Inverse of deserializeEntity; plain dicts/lists are copied recursively; Date -> oslo string. */
export function serializeEntity(value: unknown): unknown {
  return serialize(value, false);
}

// ---- datetimes -------------------------------------------------------------------------------

const ISO_RE = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

/**
 * Parses what iso8601.parse_date (oslo timeutils.parse_isotime) accepts in practice:
 * '2026-01-01T00:00:00Z', '...+00:00', with or without fraction, naive (taken as UTC, as
 * oslo's DateTime field does). Sub-millisecond digits are dropped. Throws on anything else.
 */
export function parseIsoDatetime(s: string): Date {
  const m = ISO_RE.exec(s);
  if (!m) throw new Error(`not an ISO 8601 datetime: ${JSON.stringify(s)}`);
  const [, y, mo, d, h = '0', mi = '0', sec = '0', frac = '', tz] = m;
  const ms = Number(frac.slice(0, 3).padEnd(3, '0'));
  let t = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(sec), ms);
  const check = new Date(t);
  if (check.getUTCDate() !== Number(d) || check.getUTCMonth() !== Number(mo) - 1 || Number(h) > 23 || Number(mi) > 59 || Number(sec) > 59) {
    throw new Error(`not a valid datetime: ${JSON.stringify(s)}`);
  }
  if (tz && tz.toUpperCase() !== 'Z') {
    const tm = /^([+-])(\d{2}):?(\d{2})?$/.exec(tz);
    const off = (Number(tm![2]) * 60 + Number(tm![3] ?? 0)) * 60_000;
    t -= tm![1] === '+' ? off : -off;
  }
  return new Date(t);
}

/** oslo_versionedobjects DateTime.to_primitive (_utils.isotime): seconds, 'Z'. */
export function formatOvoDatetime(d: Date): string {
  return `${d.toISOString().slice(0, 19)}Z`;
}

/** Python strftime('%Y-%m-%dT%H:%M:%S.%f') (oslo jsonutils.to_primitive of a datetime). */
export function formatPerfectTime(d: Date): string {
  return `${d.toISOString().slice(0, 23)}000`;
}

/**
 * Python datetime.isoformat() of a UTC datetime, naive (what cinder's RequestContext.to_dict
 * sends for a timeutils.utcnow() timestamp) or aware (`+00:00`). The fraction is omitted when
 * zero, as Python does.
 */
export function formatPyIsoformat(d: Date, opts: { aware?: boolean } = {}): string {
  const iso = d.toISOString();
  const ms = iso.slice(20, 23);
  const base = iso.slice(0, 19) + (ms === '000' ? '' : `.${ms}000`);
  return opts.aware ? `${base}+00:00` : base;
}
