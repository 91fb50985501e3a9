// Errors of the database layer. Lookups that find nothing raise cinder's own exception classes
// (cinder/exception.py, same messages and kwargs) so the manager can let them cross the RPC
// boundary unchanged; connection problems raise DatabaseConnectionError.
import { CinderError, volumeNotFound } from '../errors.js';

export { volumeNotFound };

function ce(className: string, message: string, kwargs: Record<string, unknown>): CinderError {
  return new CinderError(message, { className, kwargs });
}

export const snapshotNotFound = (snapshotId: string): CinderError =>
  ce('SnapshotNotFound', `Snapshot ${snapshotId} could not be found.`, { snapshot_id: snapshotId });

export const volumeAttachmentNotFound = (filter: string): CinderError =>
  ce('VolumeAttachmentNotFound', `Volume attachment could not be found with filter: ${filter}.`, { filter });

export const serviceNotFound = (serviceId: string | number | null, host?: string | null): CinderError =>
  ce(
    'ServiceNotFound',
    host ? `Service ${serviceId} could not be found on host ${host}.` : `Service ${serviceId} could not be found.`,
    { service_id: serviceId, host: host ?? null },
  );

export const volumeTypeNotFound = (volumeTypeId: string): CinderError =>
  ce('VolumeTypeNotFound', `Volume type ${volumeTypeId} could not be found.`, { volume_type_id: volumeTypeId });

export const volumeTypeNotFoundByName = (name: string): CinderError =>
  ce('VolumeTypeNotFoundByName', `Volume type with name ${name} could not be found.`, { volume_type_name: name });

export const qosSpecsNotFound = (specsId: string): CinderError =>
  ce('QoSSpecsNotFound', `No such QoS spec ${specsId}.`, { specs_id: specsId });

export const glanceMetadataNotFound = (id: string): CinderError =>
  ce('GlanceMetadataNotFound', `Glance metadata for volume/snapshot ${id} cannot be found.`, { id });

export const invalidUuid = (uuid: string): CinderError =>
  ce('InvalidUUID', `Expected a UUID but received ${uuid}.`, { uuid });

export const workerExists = (type: string, id: string): CinderError =>
  ce('WorkerExists', `Worker for ${type} ${id} already exists.`, { type, id });

export const workerNotFound = (filters: Record<string, unknown>): CinderError =>
  ce('WorkerNotFound', `Worker with ${Object.entries(filters).map(([k, v]) => `${k}=${String(v)}`).join(', ')} could not be found.`, filters);

export const cleanableInUse = (type: string, id: string): CinderError =>
  ce('CleanableInUse', `${type} with id ${id} is already being cleaned up or another host has taken over it.`, { type, id });

/** Python's repr of a list of strings, as cinder's messages print them. */
const pyList = (xs: string[]): string => `[${xs.map((x) => `'${x}'`).join(', ')}]`;

export const quotaResourceUnknown = (unknown: string[]): CinderError =>
  ce('QuotaResourceUnknown', `Unknown quota resources ${pyList(unknown)}.`, { unknown });

export const overQuota = (overs: string[], quotas: Record<string, number>, usages: Record<string, { in_use: number; reserved: number }>): CinderError =>
  ce('OverQuota', `Quota exceeded for resources: ${pyList(overs)}`, { overs, quotas, usages });

export const serviceTooOld = (message: string): CinderError => ce('ServiceTooOld', message, {});

/** cinder.exception.ProgrammingError: a caller asked for something the schema cannot express. */
export const programmingError = (reason: string): CinderError =>
  ce('ProgrammingError', `Programming error in Cinder: ${reason}`, { reason });

/**
 * The database cannot be reached (oslo.db's DBConnectionError). `attempts` is how many connection
 * attempts were made before giving up.
 */
export class DatabaseConnectionError extends Error {
  readonly attempts: number;
  constructor(message: string, attempts: number, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'DBConnectionError';
    this.attempts = attempts;
  }
}

/** The database is reachable but holds no Cinder schema (or one we cannot use). */
export class DatabaseSchemaError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DatabaseSchemaError';
  }
}
