// The cinder exceptions the LVM driver raises, with cinder's class names, messages and kwargs so
// the manager can report them exactly as cinder-volume would (src/errors.ts CinderError).
// (Candidates for src/errors.ts; kept here until the owner of that file adopts them.)
import { CinderError } from '../../src/errors.js';

/** cinder.exception.VolumeIsBusy: delete_volume of an LV that still has (thick) snapshots. */
export function volumeIsBusy(volumeName: string): CinderError {
  return new CinderError(`deleting volume ${volumeName} that has snapshot`, {
    className: 'VolumeIsBusy',
    kwargs: { volume_name: volumeName },
  });
}

/** cinder.exception.VolumeGroupNotFound */
export function volumeGroupNotFound(vgName: string): CinderError {
  return new CinderError(`Unable to find Volume Group: ${vgName}`, { className: 'VolumeGroupNotFound', kwargs: { vg_name: vgName } });
}

/** cinder.exception.VolumeDeviceNotFound: snapshot of an LV that does not exist. */
export function volumeDeviceNotFound(device: string): CinderError {
  return new CinderError(`Volume device not found at ${device}.`, { className: 'VolumeDeviceNotFound', kwargs: { device } });
}

/** cinder.exception.VolumeNotDeactivated: lvchange -a n did not take effect in time. */
export function volumeNotDeactivated(name: string): CinderError {
  return new CinderError(`Volume ${name} was not deactivated in time.`, { className: 'VolumeNotDeactivated', kwargs: { name } });
}

/** cinder.exception.InvalidConfigurationValue */
export function invalidConfigurationValue(option: string, value: unknown): CinderError {
  return new CinderError(`Value "${String(value)}" is not valid for configuration option "${option}"`, {
    className: 'InvalidConfigurationValue',
    kwargs: { option, value },
  });
}

/** cinder.exception.InvalidParameterValue */
export function invalidParameterValue(err: string): CinderError {
  return new CinderError(err, { className: 'InvalidParameterValue', kwargs: { err } });
}

/**
 * Python's NotImplementedError (module builtins). The manager treats it from revert_to_snapshot
 * as "use the generic revert" (copy from a temporary volume), as cinder's manager does.
 */
export function notImplemented(message: string): CinderError {
  return new CinderError(message, { className: 'NotImplementedError', module: 'builtins' });
}

export function isNotImplemented(err: unknown): boolean {
  return err instanceof CinderError && err.className === 'NotImplementedError';
}
