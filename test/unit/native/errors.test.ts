// Native calls on plain files and missing paths: no root or devices needed. These fix the shape
// of errors the drivers will see (code, syscall, path, a message with what to do).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import {
  NativeError,
  blockDeviceSize,
  discardRange,
  flushBufferCache,
  logicalSectorSize,
  physicalBlockSize,
  rereadPartitionTable,
  zeroOutRange,
} from '../../../src/native/index.js';
import { errnoName, toNativeError } from '../../../src/native/errors.js';

const dir = mkdtempSync(path.join(tmpdir(), 'cinderblock-native-unit-'));
const file = path.join(dir, 'volume.img');
writeFileSync(file, Buffer.alloc(12345));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('block-device calls on a regular file', () => {
  it('size is the file size, by path and by fd', async () => {
    expect(await blockDeviceSize(file)).toBe(12345);
    const fh = await open(file, 'r');
    try {
      expect(await blockDeviceSize(fh.fd)).toBe(12345);
    } finally {
      await fh.close();
    }
  });

  const ioctls: Array<[string, string, () => Promise<unknown>]> = [
    ['BLKSSZGET', 'logical sector size', () => logicalSectorSize(file)],
    ['BLKPBSZGET', 'physical block size', () => physicalBlockSize(file)],
    ['BLKFLSBUF', 'flushing', () => flushBufferCache(file)],
    ['BLKRRPART', 'partition table', () => rereadPartitionTable(file)],
    ['BLKDISCARD', 'discarding bytes 0-4095', () => discardRange(file, 0, 4096)],
    ['BLKZEROOUT', 'zeroing bytes 0-4095', () => zeroOutRange(file, 0, 4096)],
  ];
  for (const [ioctl, what, call] of ioctls) {
    it(`${ioctl} fails with ENOTTY and says the path is not a block device`, async () => {
      const err = await call().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NativeError);
      expect(err).toMatchObject({ code: 'ENOTTY', errno: 25, syscall: `ioctl(${ioctl})` });
      const message = (err as Error).message;
      expect(message).toContain(file);
      expect(message.toLowerCase()).toContain(what.toLowerCase());
      expect(message).toMatch(/not a block device/);
    });
  }
});

describe('errors', () => {
  it('a missing path is ENOENT from open, naming the path', async () => {
    const err = await blockDeviceSize('/dev/cinderblock-does-not-exist').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ENOENT', syscall: 'open', path: '/dev/cinderblock-does-not-exist' });
    expect((err as Error).message).toMatch(/^Reading the size of \/dev\/cinderblock-does-not-exist failed \(open\): No such file or directory \[ENOENT\]\. Check the path/);
  });

  it('a closed fd is EBADF', async () => {
    const fh = await open(file, 'r');
    const fd = fh.fd;
    await fh.close();
    await expect(blockDeviceSize(fd)).rejects.toMatchObject({ code: 'EBADF', syscall: 'fstat', path: `fd ${fd}` });
  });

  it('bad ranges are RangeErrors before any syscall; an empty range is a no-op', async () => {
    expect(() => discardRange(file, -1, 512)).toThrow(RangeError);
    expect(() => zeroOutRange(file, 0, 1.5)).toThrow(RangeError);
    expect(() => zeroOutRange(file, Number.MAX_SAFE_INTEGER, 512)).toThrow(RangeError);
    await expect(zeroOutRange('/nonexistent', 0, 0)).resolves.toBeUndefined();
  });

  it('bad argument types are TypeErrors from the addon, passed through untouched', async () => {
    await expect(blockDeviceSize({} as unknown as string)).rejects.toBeInstanceOf(TypeError);
    await expect(blockDeviceSize(-1)).rejects.toBeInstanceOf(TypeError);
    await expect(blockDeviceSize('')).rejects.toBeInstanceOf(TypeError);
  });

  it('names errnos as the kernel documents them (EOPNOTSUPP, not libuv\'s ENOTSUP)', () => {
    expect(errnoName(95)).toBe('EOPNOTSUPP');
    expect(errnoName(25)).toBe('ENOTTY');
    expect(errnoName(99999)).toBe('E99999');
  });

  it('leaves errors that are not errno errors alone', () => {
    const e = new Error('x');
    expect(toNativeError(e, 'doing it')).toBe(e);
    expect(toNativeError('string', 'doing it')).toBe('string');
  });
});
