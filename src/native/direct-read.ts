// Block reads that bypass the page cache (O_DIRECT; native/direct_read.cc), for on-disk
// structures written by someone who does not go through this device's page cache: the kernel
// writes a thin pool's metadata device through dm-bufio, so a buffered read could return blocks
// from before. Files on a filesystem without O_DIRECT are read through the page cache, which is
// coherent for them.
import { addon, type FileRef } from './addon.js';
import { callAsync, describeRef } from './errors.js';

/** Offsets and lengths must be multiples of this (covers 512- and 4096-byte sectors). */
export const DIRECT_READ_ALIGN = 4096;

/**
 * Reads `length` bytes at each of `offsets` of `dev`, on a thread of the addon's own, and returns
 * one Buffer per offset, in order. Offsets and length must be multiples of 4096; length at most
 * 1 MiB, at most 65536 offsets a call. A read past the end fails (ENXIO) rather than come back short.
 */
export function readDirect(dev: FileRef, offsets: readonly number[], length: number): Promise<Buffer[]> {
  if (offsets.length === 0) return Promise.resolve([]);
  return callAsync(() => addon().readDirect(dev, [...offsets], length), `reading ${offsets.length} block(s) of ${length} bytes from ${describeRef(dev)}`, {
    ENXIO: 'A block is past the end of the device: the structure read points outside it (wrong device, or a damaged or truncated one).',
    EINVAL: 'The device refused an O_DIRECT read (offsets and length must be multiples of its logical block size).',
  });
}
