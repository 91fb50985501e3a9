// Public surface of the LVM backend: the driver (cinder's LVMVolumeDriver), the volume-group
// layer it stands on, and the command layer (argv builders, report parsers, runner).
export {
  LvmVolumeDriver,
  LVM_DRIVER_VERSION,
  mirrorFreeSpace,
  nativeBlockDeviceOps,
  type BlockDeviceOps,
  type CloneSource,
  type LvmDriverOptions,
  type LvmType,
} from './lvm-driver.js';
export { LvmVolumeGroup, type LvmVolumeGroupOptions } from './lvm-vg.js';
export * from './lvm-commands.js';
export * from './lvm-report.js';
export * from './lvm-names.js';
export {
  DEFAULT_LVM_CONF_FILE,
  LVM_FAILED_EXIT,
  LVM_SEGFAULT_EXIT,
  LvmCommandError,
  lvmCommandRunner,
  lvmEnvironment,
  lvmMissing,
  runChecked,
  withSegfaultRetry,
  type LvmCommandRunnerOptions,
  type LvmCommandResult,
  type LvmEnvironmentOptions,
  type LvmRunOptions,
  type LvmRunner,
  type SegfaultRetryOptions,
} from './lvm-runner.js';
export { simpleCopy, parseBlocksize, type VolumeCopyFn, type VolumeCopyOptions } from './volume-copy.js';
