// Block-device ioctls against real loop devices (root only). Each loop device is backed by a
// sparse file in a temp dir and detached in afterAll.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { open, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

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
import { attachLoop, detachLoop, hasCommand, isRoot } from './helpers.js';

const MiB = 1024 * 1024;
const canLoop = isRoot && hasCommand('losetup');
if (!canLoop) console.warn('native blockdev tests skipped: they need root and losetup');

async function readRange(dev: string, offset: number, length: number): Promise<Buffer> {
  const fh = await open(dev, 'r');
  try {
    const buf = Buffer.alloc(length);
    await fh.read(buf, 0, length, offset);
    return buf;
  } finally {
    await fh.close();
  }
}

async function writePattern(dev: string, offset: number, length: number, byte: number): Promise<void> {
  const fh = await open(dev, 'r+');
  try {
    await fh.write(Buffer.alloc(length, byte), 0, length, offset);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

describe.skipIf(!canLoop)('block devices (loop)', () => {
  let dir: string;
  let backing: string;
  let loop: string; // 64 MiB, 512-byte sectors, partition scanning on
  let loop4k: string; // 8 MiB, 4096-byte sectors, no partition scanning

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'cinderblock-blk-'));
    backing = path.join(dir, 'disk.img');
    await writeFile(backing, '');
    await truncate(backing, 64 * MiB); // sparse
    loop = attachLoop(backing, ['-P']);
    const backing4k = path.join(dir, 'disk4k.img');
    await writeFile(backing4k, '');
    await truncate(backing4k, 8 * MiB);
    loop4k = attachLoop(backing4k, ['--sector-size', '4096']);
  });

  afterAll(() => {
    detachLoop(loop);
    detachLoop(loop4k);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('reads size, logical sector size and physical block size', async () => {
    expect(await blockDeviceSize(loop)).toBe(64 * MiB);
    expect(await blockDeviceSize(loop4k)).toBe(8 * MiB);
    expect(await logicalSectorSize(loop)).toBe(512);
    expect(await logicalSectorSize(loop4k)).toBe(4096);
    const pb = await physicalBlockSize(loop);
    expect(pb).toBeGreaterThanOrEqual(512);
    expect(Number.isInteger(Math.log2(pb))).toBe(true);
    expect(await physicalBlockSize(loop4k)).toBeGreaterThanOrEqual(4096);
  });

  it('accepts an fd the caller opened, and leaves it open', async () => {
    const fh = await open(loop, 'r');
    try {
      expect(await blockDeviceSize(fh.fd)).toBe(64 * MiB);
      expect(await logicalSectorSize(fh.fd)).toBe(512);
      expect((await fh.stat()).isBlockDevice()).toBe(true); // still open
    } finally {
      await fh.close();
    }
  });

  it('flushes the buffer cache', async () => {
    await expect(flushBufferCache(loop)).resolves.toBeUndefined();
  });

  it('zeroes out a range and leaves its neighbours alone', async () => {
    await writePattern(loop, 1 * MiB, 1 * MiB, 0xab);
    await zeroOutRange(loop, 1 * MiB + 4096, 64 * 1024);
    const after = await readRange(loop, 1 * MiB, 1 * MiB);
    expect(after.subarray(0, 4096).every((b) => b === 0xab)).toBe(true);
    expect(after.subarray(4096, 4096 + 64 * 1024).every((b) => b === 0)).toBe(true);
    expect(after.subarray(4096 + 64 * 1024).every((b) => b === 0xab)).toBe(true);
  });

  it('discards a range: the loop device punches a hole in its backing file', async () => {
    await writePattern(loop, 8 * MiB, 4 * MiB, 0x5a);
    const blocksBefore = statSync(backing).blocks;
    await discardRange(loop, 8 * MiB, 4 * MiB);
    // Discarded blocks of a loop device read back as zeros and are no longer allocated.
    expect((await readRange(loop, 8 * MiB, 4 * MiB)).every((b) => b === 0)).toBe(true);
    expect(statSync(backing).blocks).toBeLessThanOrEqual(blocksBefore - (4 * MiB) / 512);
  });

  it('rejects a misaligned range with EINVAL and says what alignment is needed', async () => {
    const err = await discardRange(loop4k, 512, 4096).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NativeError);
    expect(err).toMatchObject({ code: 'EINVAL', syscall: 'ioctl(BLKDISCARD)', path: loop4k });
    expect((err as Error).message).toMatch(/multiples of the logical sector size/);
    await expect(zeroOutRange(loop4k, 0, 1000)).rejects.toMatchObject({ code: 'EINVAL', syscall: 'ioctl(BLKZEROOUT)' });
  });

  it('needs a writable fd for discard (EBADF on a read-only fd)', async () => {
    const fh = await open(loop, 'r');
    try {
      await expect(discardRange(fh.fd, 0, 4096)).rejects.toMatchObject({ code: 'EBADF' });
    } finally {
      await fh.close();
    }
  });

  it('re-reads the partition table where the device can have partitions', async () => {
    await expect(rereadPartitionTable(loop)).resolves.toBeUndefined();
    const err = await rereadPartitionTable(loop4k).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'EINVAL', syscall: 'ioctl(BLKRRPART)' });
    expect((err as Error).message).toMatch(/losetup -P/);
  });
});
