// Block-device queries and operations (Linux ioctls). Every call runs on a thread of its own
// in the addon and returns a Promise; none of them blocks the event loop, however slow the device.
import { addon, type FileRef } from './addon.js';
import { callAsync, describeRef, type Hints } from './errors.js';

export type { FileRef };

/** Size in bytes (BLKGETSIZE64); for a regular file, its st_size (file-backed volumes). */
export function blockDeviceSize(dev: FileRef): Promise<number> {
  return callAsync(() => addon().blkGetSize64(dev), `reading the size of ${describeRef(dev)}`);
}

/** Logical sector size in bytes (BLKSSZGET): the unit I/O, discard and zero-out ranges must align to. */
export function logicalSectorSize(dev: FileRef): Promise<number> {
  return callAsync(() => addon().blkSszGet(dev), `reading the logical sector size of ${describeRef(dev)}`);
}

/** Physical block size in bytes (BLKPBSZGET): what the device writes without read-modify-write. */
export function physicalBlockSize(dev: FileRef): Promise<number> {
  return callAsync(() => addon().blkPbszGet(dev), `reading the physical block size of ${describeRef(dev)}`);
}

/**
 * Writes back and drops the kernel's buffer cache of the device (BLKFLSBUF), so that what is
 * read next comes from the device itself (after another host or a target wrote to it).
 */
export function flushBufferCache(dev: FileRef): Promise<void> {
  return callAsync(() => addon().blkFlsBuf(dev), `flushing the buffer cache of ${describeRef(dev)}`);
}

/** Asks the kernel to re-read the partition table (BLKRRPART). */
export function rereadPartitionTable(dev: FileRef): Promise<void> {
  return callAsync(() => addon().blkRrPart(dev), `re-reading the partition table of ${describeRef(dev)}`, {
    EINVAL: 'The device cannot have partitions (a loop device needs `losetup -P`; a partition itself has none).',
    EBUSY: 'A partition of the device is in use (mounted or held open): release it and retry.',
  });
}

const RANGE_HINT =
  'Offset and length must be multiples of the logical sector size (see logicalSectorSize) and lie within the device.';

/**
 * Tells the device that bytes [offset, offset+length) are unused (BLKDISCARD): thin pools and
 * SSDs get the space back. What the range reads afterwards is device-specific: use
 * zeroOutRange when it must read as zeros. The range must be sector-aligned.
 */
export function discardRange(dev: FileRef, offset: number, length: number): Promise<void> {
  checkRange(offset, length);
  if (length === 0) return Promise.resolve();
  return callAsync(() => addon().blkDiscard(dev, offset, length), `discarding ${rangeText(offset, length)} of ${describeRef(dev)}`, {
    EOPNOTSUPP: 'The device does not support discard: skip it, or zero the range with zeroOutRange if it must read as zeros.',
    EINVAL: RANGE_HINT,
    EBADF: 'A device passed as an fd must be open for writing.',
  });
}

/**
 * Makes bytes [offset, offset+length) read as zeros (BLKZEROOUT): the kernel uses the device's
 * write-zeroes offload where it has one and writes zeros otherwise. The range must be sector-aligned.
 */
export function zeroOutRange(dev: FileRef, offset: number, length: number): Promise<void> {
  checkRange(offset, length);
  if (length === 0) return Promise.resolve();
  return callAsync(() => addon().blkZeroOut(dev, offset, length), `zeroing ${rangeText(offset, length)} of ${describeRef(dev)}`, {
    EINVAL: RANGE_HINT,
    EBADF: 'A device passed as an fd must be open for writing.',
  } satisfies Hints);
}

function checkRange(offset: number, length: number): void {
  for (const [what, v] of [['offset', offset], ['length', length]] as const) {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${what} must be a non-negative integer of bytes, got ${v}`);
  }
  if (!Number.isSafeInteger(offset + length)) throw new RangeError(`offset + length is too large: ${offset} + ${length}`);
}

function rangeText(offset: number, length: number): string {
  return `bytes ${offset}-${offset + length - 1}`;
}
