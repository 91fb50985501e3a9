// Errors that cross the RPC boundary. cinder's RPC client rebuilds an exception from the
// failure reply only when its module is in allowed_remote_exmods (cinder.exception) or builtins,
// so every error the agent means a caller to see carries cinder's own class name.

export interface CinderErrorOptions {
  /** cinder.exception class name, e.g. 'InvalidInput', 'VolumeNotFound'. */
  className: string;
  /** Module the caller rebuilds the class from; 'cinder.exception' unless it is a builtin. */
  module?: string;
  /** Keyword arguments cinder's exception class takes (reason=, volume_id=, ...). */
  kwargs?: Record<string, unknown>;
  cause?: unknown;
}

export class CinderError extends Error {
  readonly className: string;
  readonly module: string;
  readonly kwargs: Record<string, unknown>;

  constructor(message: string, opts: CinderErrorOptions) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = opts.className;
    this.className = opts.className;
    this.module = opts.module ?? 'cinder.exception';
    this.kwargs = opts.kwargs ?? {};
  }
}

/** Whether `err` or one of its causes (a wrapped error's `cause`, a few levels deep) matches. */
export function someCause(err: unknown, match: (e: unknown) => boolean): boolean {
  for (let e = err, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    if (match(e)) return true;
  }
  return false;
}

// ---- the catalog --------------------------------------------------------------------------------
// One factory per cinder.exception class the agent raises, with cinder 21.3's class name, message
// template and kwargs. cinder's CinderException adds `code` to kwargs (its class's HTTP code:
// CinderException 500, Invalid 400, NotFound 404), and the RPC failure carries kwargs, so every
// factory does too. Nothing else in the tree constructs a CinderError for a cinder class.

function raise(className: string, code: number, message: string, kwargs: Record<string, unknown>, cause?: unknown): CinderError {
  return new CinderError(message, { className, kwargs: { ...kwargs, code }, ...(cause === undefined ? {} : { cause }) });
}

// Invalid (400) and its subclasses

/** cinder.exception.Invalid raised with a reason (the manager's "Unacceptable parameters."). */
export const invalid = (reason: string): CinderError => raise('Invalid', 400, `Unacceptable parameters.: ${reason}`, { reason });
/** cinder.exception.InvalidInput: "Invalid input received: %(reason)s" */
export const invalidInput = (reason: string): CinderError => raise('InvalidInput', 400, `Invalid input received: ${reason}`, { reason });
export const invalidVolume = (reason: string): CinderError => raise('InvalidVolume', 400, `Invalid volume: ${reason}`, { reason });
export const invalidSnapshot = (reason: string): CinderError => raise('InvalidSnapshot', 400, `Invalid snapshot: ${reason}`, { reason });
export const invalidVolumeAttachMode = (mode: string, volumeId: string): CinderError =>
  raise('InvalidVolumeAttachMode', 400, `Invalid attaching mode '${mode}' for volume ${volumeId}.`, { mode, volume_id: volumeId });
export const volumeAttached = (volumeId: string): CinderError =>
  raise('VolumeAttached', 400, `Volume ${volumeId} is still attached, detach volume first.`, { volume_id: volumeId });
export const invalidUuid = (uuid: string): CinderError => raise('InvalidUUID', 400, `Expected a UUID but received ${uuid}.`, { uuid });
export const invalidParameterValue = (err: string): CinderError => raise('InvalidParameterValue', 400, err, { err });
export const invalidConfigurationValue = (option: string, value: unknown): CinderError =>
  raise('InvalidConfigurationValue', 400, `Value "${String(value)}" is not valid for configuration option "${option}"`, { option, value });
export const invalidGroup = (reason: string): CinderError => raise('InvalidGroup', 400, `Invalid Group: ${reason}`, { reason });
export const metadataCopyFailure = (reason: string): CinderError => raise('MetadataCopyFailure', 400, `Failed to copy metadata to volume: ${reason}`, { reason });
/** The manager's _check_is_our_resource: cinder.exception.Invalid raised with its own message. */
export const resourceNotLocal = (kind: string, id: string, backend: string): CinderError =>
  raise('Invalid', 400, `Invalid ${kind}: ${kind} ${id} is not local to ${backend}.`, {});
export const glanceMetadataExists = (key: string, volumeId: string): CinderError =>
  raise('GlanceMetadataExists', 400, `Glance metadata cannot be updated, key ${key} exists for volume id ${volumeId}`, { key, volume_id: volumeId });

/** ImageUnacceptable(Invalid): the image cannot become this volume (format, size, safety). */
export const imageUnacceptable = (imageId: string, reason: string): CinderError =>
  raise('ImageUnacceptable', 400, `Image ${imageId} is unacceptable: ${reason}`, { image_id: imageId, reason });
/** ImageTooBig(Invalid): no room for the image in image_conversion_dir. */
export const imageTooBig = (imageId: string, reason: string): CinderError =>
  raise('ImageTooBig', 400, `Image ${imageId} size exceeded available disk space: ${reason}`, { image_id: imageId, reason });
/** ImageCopyFailure(Invalid): writing the image onto the volume failed (never rescheduled). */
export const imageCopyFailure = (reason: string, cause?: unknown): CinderError =>
  raise('ImageCopyFailure', 400, `Failed to copy image to volume: ${reason}`, { reason }, cause);

// NotFound (404) and its subclasses

export const volumeNotFound = (volumeId: string): CinderError => raise('VolumeNotFound', 404, `Volume ${volumeId} could not be found.`, { volume_id: volumeId });
export const snapshotNotFound = (snapshotId: string): CinderError =>
  raise('SnapshotNotFound', 404, `Snapshot ${snapshotId} could not be found.`, { snapshot_id: snapshotId });
export const volumeAttachmentNotFound = (filter: string): CinderError =>
  raise('VolumeAttachmentNotFound', 404, `Volume attachment could not be found with filter: ${filter}.`, { filter });
export const serviceNotFound = (serviceId: string | number | null, host?: string | null): CinderError =>
  raise('ServiceNotFound', 404, host ? `Service ${serviceId} could not be found on host ${host}.` : `Service ${serviceId} could not be found.`, {
    service_id: serviceId,
    host: host ?? null,
  });
export const volumeTypeNotFound = (volumeTypeId: string): CinderError =>
  raise('VolumeTypeNotFound', 404, `Volume type ${volumeTypeId} could not be found.`, { volume_type_id: volumeTypeId });
export const volumeTypeNotFoundByName = (name: string): CinderError =>
  raise('VolumeTypeNotFoundByName', 404, `Volume type with name ${name} could not be found.`, { volume_type_name: name });
export const qosSpecsNotFound = (specsId: string): CinderError => raise('QoSSpecsNotFound', 404, `No such QoS spec ${specsId}.`, { specs_id: specsId });
export const groupNotFound = (groupId: string): CinderError => raise('GroupNotFound', 404, `Group ${groupId} could not be found.`, { group_id: groupId });
export const groupSnapshotNotFound = (groupSnapshotId: string): CinderError =>
  raise('GroupSnapshotNotFound', 404, `GroupSnapshot ${groupSnapshotId} could not be found.`, { group_snapshot_id: groupSnapshotId });
export const glanceMetadataNotFound = (id: string): CinderError =>
  raise('GlanceMetadataNotFound', 404, `Glance metadata for volume/snapshot ${id} cannot be found.`, { id });
export const workerNotFound = (filters: Record<string, unknown>): CinderError =>
  raise('WorkerNotFound', 404, `Worker with ${Object.entries(filters).map(([k, v]) => `${k}=${String(v)}`).join(', ')} could not be found.`, filters);

export const imageNotFound = (imageId: string): CinderError => raise('ImageNotFound', 404, `Image ${imageId} could not be found.`, { image_id: imageId });

// CinderException (500) and its other subclasses

export const volumeBackendApiException = (data: string, cause?: unknown): CinderError =>
  raise('VolumeBackendAPIException', 500, `Bad or unexpected response from the storage volume backend API: ${data}`, { data }, cause);
/** cinder.exception.VolumeDriverException: "Volume driver reported an error: %(message)s" */
export const volumeDriverException = (message: string): CinderError => raise('VolumeDriverException', 500, `Volume driver reported an error: ${message}`, { message });
export const replicationGroupError = (groupId: string, reason: string, cause?: unknown): CinderError =>
  raise('ReplicationGroupError', 500, `Group ${groupId} replication error: ${reason}.`, { group_id: groupId, reason }, cause);
export const driverNotInitialized = (driver: string): CinderError => raise('DriverNotInitialized', 500, 'Volume driver not ready.', { driver });
export const volumeIsBusy = (volumeName: string): CinderError =>
  raise('VolumeIsBusy', 500, `deleting volume ${volumeName} that has snapshot`, { volume_name: volumeName });
export const snapshotIsBusy = (snapshotName: string): CinderError =>
  raise('SnapshotIsBusy', 500, `deleting snapshot ${snapshotName} that has dependent volumes`, { snapshot_name: snapshotName });
export const volumeMigrationFailed = (reason: string): CinderError => raise('VolumeMigrationFailed', 500, `Volume migration failed: ${reason}`, { reason });
export const volumeGroupNotFound = (vgName: string): CinderError => raise('VolumeGroupNotFound', 500, `Unable to find Volume Group: ${vgName}`, { vg_name: vgName });
export const volumeDeviceNotFound = (device: string): CinderError => raise('VolumeDeviceNotFound', 500, `Volume device not found at ${device}.`, { device });
export const volumeNotDeactivated = (name: string): CinderError => raise('VolumeNotDeactivated', 500, `Volume ${name} was not deactivated in time.`, { name });
/** VolumeDriverException's subclass: "Connector doesn't have required information: %(missing)s" */
export const invalidConnectorException = (missing: string): CinderError =>
  raise('InvalidConnectorException', 500, `Connector doesn't have required information: ${missing}`, { missing });
export const iscsiTargetCreateFailed = (volumeId: string, cause?: unknown): CinderError =>
  raise('ISCSITargetCreateFailed', 500, `Failed to create iscsi target for volume ${volumeId}.`, { volume_id: volumeId }, cause);
export const iscsiTargetRemoveFailed = (volumeId: string, cause?: unknown): CinderError =>
  raise('ISCSITargetRemoveFailed', 500, `Failed to remove iscsi target for volume ${volumeId}.`, { volume_id: volumeId }, cause);
export const iscsiTargetAttachFailed = (volumeId: string, cause?: unknown): CinderError =>
  raise('ISCSITargetAttachFailed', 500, `Failed to attach iSCSI target for volume ${volumeId}.`, { volume_id: volumeId }, cause);
export const iscsiTargetDetachFailed = (volumeId: string, cause?: unknown): CinderError =>
  raise('ISCSITargetDetachFailed', 500, `Failed to detach iSCSI target for volume ${volumeId}.`, { volume_id: volumeId }, cause);
export const targetUpdateFailed = (volumeId: string, cause?: unknown): CinderError =>
  raise('TargetUpdateFailed', 500, `Failed to update target for volume ${volumeId}.`, { volume_id: volumeId }, cause);
export const manageExistingInvalidReference = (existingRef: unknown, reason: string): CinderError =>
  raise('ManageExistingInvalidReference', 500, `Manage existing volume failed due to invalid backend reference ${formatRef(existingRef)}: ${reason}`, {
    existing_ref: existingRef,
    reason,
  });
export const workerExists = (type: string, id: string): CinderError => raise('WorkerExists', 500, `Worker for ${type} ${id} already exists.`, { type, id });
export const cleanableInUse = (type: string, id: string): CinderError =>
  raise('CleanableInUse', 400, `${type} with id ${id} is already being cleaned up or another host has taken over it.`, { type, id });
export const quotaResourceUnknown = (unknown: string[]): CinderError =>
  raise('QuotaResourceUnknown', 404, `Unknown quota resources ${pyList(unknown)}.`, { unknown });
export const overQuota = (overs: string[], quotas: Record<string, number>, usages: Record<string, { in_use: number; reserved: number }>): CinderError =>
  raise('OverQuota', 500, `Quota exceeded for resources: ${pyList(overs)}`, { overs, quotas, usages });
export const serviceTooOld = (message: string): CinderError => raise('ServiceTooOld', 400, message, {});
/** cinder.exception.ProgrammingError: a caller asked for something the schema cannot express. */
export const programmingError = (reason: string): CinderError => raise('ProgrammingError', 500, `Programming error in Cinder: ${reason}`, { reason });

export const imageNotAuthorized = (imageId: string): CinderError =>
  raise('ImageNotAuthorized', 500, `Not authorized for image ${imageId}.`, { image_id: imageId });
/** NotAuthorized (403): glance refused a call that names no image. */
export const notAuthorized = (): CinderError => raise('NotAuthorized', 403, 'Not authorized.', {});
export const glanceConnectionFailed = (reason: string, cause?: unknown): CinderError =>
  raise('GlanceConnectionFailed', 500, `Connection to glance failed: ${reason}`, { reason }, cause);
export const imageDownloadFailed = (imageHref: string, reason: string, cause?: unknown): CinderError =>
  raise('ImageDownloadFailed', 500, `Failed to download image ${imageHref}, reason: ${reason}`, { image_href: imageHref, reason }, cause);
export const imageConversionNotAllowed = (imageId: string, reason: string): CinderError =>
  raise('ImageConversionNotAllowed', 500, `Image Conversion disallowed for image ${imageId}: ${reason}`, { image_id: imageId, reason });
export const imageSignatureVerificationException = (reason: string): CinderError =>
  raise('ImageSignatureVerificationException', 500, `Failed to verify image signature, reason: ${reason}.`, { reason });
export const imageLimitExceeded = (reason: string): CinderError => raise('ImageLimitExceeded', 413, 'Image quota exceeded', { reason });
export const metadataUpdateFailure = (reason: string): CinderError => raise('MetadataUpdateFailure', 400, `Failed to update metadata for volume: ${reason}`, { reason });

/**
 * Python's NotImplementedError (module builtins, no kwargs). From revert_to_snapshot the manager
 * takes it as "use the generic revert", as cinder's manager does.
 */
export const notImplementedError = (message: string): CinderError => new CinderError(message, { className: 'NotImplementedError', module: 'builtins' });
export const isNotImplementedError = (err: unknown): boolean => err instanceof CinderError && err.className === 'NotImplementedError';
/** VolumeIsBusy or SnapshotIsBusy from a driver: the resource cannot go now; the manager keeps it. */
export const isBusyError = (err: unknown): boolean => err instanceof CinderError && (err.className === 'VolumeIsBusy' || err.className === 'SnapshotIsBusy');

/** Python's repr of a list of strings, as cinder's messages print them. */
function pyList(xs: string[]): string {
  return `[${xs.map((x) => `'${x}'`).join(', ')}]`;
}

/** A manage reference as Python prints the dict in ManageExistingInvalidReference. */
function formatRef(ref: unknown): string {
  if (ref === null || typeof ref !== 'object') return String(ref);
  return `{${Object.entries(ref as Record<string, unknown>).map(([k, v]) => `'${k}': ${typeof v === 'string' ? `'${v}'` : String(v)}`).join(', ')}}`;
}

/** Configuration problems stop start-up with a message naming file, section and option. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}
