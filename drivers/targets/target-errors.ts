// The cinder exceptions a target helper raises, with cinder's own class names and messages
// (cinder/exception.py) so the RPC caller rebuilds the same exception class.
import { CinderError } from '../../src/errors.js';

/** cinder.exception.InvalidConnectorException */
export function invalidConnector(missing: string): CinderError {
  return new CinderError(`Connector doesn't have required information: ${missing}`, {
    className: 'InvalidConnectorException',
    kwargs: { missing },
  });
}

/** cinder.exception.InvalidVolume */
export function invalidVolume(reason: string): CinderError {
  return new CinderError(`Invalid volume: ${reason}`, { className: 'InvalidVolume', kwargs: { reason } });
}

function volumeError(className: string, message: string, volumeId: string, cause?: unknown): CinderError {
  return new CinderError(message, { className, kwargs: { volume_id: volumeId }, cause });
}

export function iscsiTargetCreateFailed(volumeId: string, cause?: unknown): CinderError {
  return volumeError('ISCSITargetCreateFailed', `Failed to create iscsi target for volume ${volumeId}.`, volumeId, cause);
}

export function iscsiTargetRemoveFailed(volumeId: string, cause?: unknown): CinderError {
  return volumeError('ISCSITargetRemoveFailed', `Failed to remove iscsi target for volume ${volumeId}.`, volumeId, cause);
}

export function iscsiTargetAttachFailed(volumeId: string, cause?: unknown): CinderError {
  return volumeError('ISCSITargetAttachFailed', `Failed to attach iSCSI target for volume ${volumeId}.`, volumeId, cause);
}

export function iscsiTargetDetachFailed(volumeId: string, cause?: unknown): CinderError {
  return volumeError('ISCSITargetDetachFailed', `Failed to detach iSCSI target for volume ${volumeId}.`, volumeId, cause);
}

export function targetUpdateFailed(volumeId: string, cause?: unknown): CinderError {
  return volumeError('TargetUpdateFailed', `Failed to update target for volume ${volumeId}.`, volumeId, cause);
}
