// cinderblock's native functions, typed. Import from here rather than from the files beside it.
export { NativeAddonError, addonPath, findPackageRoot, type FileRef } from './addon.js';
export { NativeError } from './errors.js';
export {
  blockDeviceSize,
  logicalSectorSize,
  physicalBlockSize,
  flushBufferCache,
  rereadPartitionTable,
  discardRange,
  zeroOutRange,
} from './blockdev.js';
export { cloneFile, supportsReflink, isReflinkUnsupported, REFLINK_UNSUPPORTED_CODES, type CloneFileOptions } from './reflink.js';
export {
  acquireExternalLock,
  withExternalLock,
  externalLockFile,
  LockTimeoutError,
  type ExternalLockOptions,
  type ReleaseFn,
} from './lock.js';
export { sdNotify, notifyReady, notifyStopping, notifyStatus, notifyWatchdog, watchdogIntervalMs } from './systemd.js';
export { copy, clear, checksum, CopyError, CopyAbortedError, CHECKSUM_ALGORITHM } from './copy.js';
export type { CopyOptions, CopyResult, CopyProgress, ClearOptions, ClearResult, IoPriority } from './copy.js';
export { dmTable, dmMessage, assertDmName, DM_NAME_LEN, type DmTarget } from './dm.js';
export { readDirect, DIRECT_READ_ALIGN } from './direct-read.js';
