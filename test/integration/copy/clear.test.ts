// clear() (volume_clear=zero) on a loop device and on files: afterwards the range reads as
// zeros, by the cheapest method the target offers, and bad ranges are refused up front.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { CopyError, clear } from '../../../src/native/copy.js';
import { attachLoop, detachLoop, hasCommand, isRoot } from '../native/helpers.js';
import { MiB, allocatedBytes, isAllZero, mount, sha256Range, umount, writeRandom } from './helpers.js';

const canLoop = isRoot && hasCommand('losetup');

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'cinderblock-clear-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('clear a file', () => {
  it('punches a hole by default: reads as zeros, blocks freed, size kept', async () => {
    const f = path.join(dir, 'punch.img');
    writeRandom(f, 8 * MiB);
    const r = await clear(f, 8 * MiB);
    expect(r).toMatchObject({ method: 'punch_hole', bytesCleared: 8 * MiB, bytesWritten: 0 });
    expect(isAllZero(f, 8 * MiB)).toBe(true);
    expect(statSync(f).size).toBe(8 * MiB);
    expect(allocatedBytes(f)).toBe(0);
  });

  it('keepAllocated zeroes the range in place (FALLOC_FL_ZERO_RANGE)', async () => {
    const f = path.join(dir, 'zr.img');
    writeRandom(f, 8 * MiB);
    const r = await clear(f, 4 * MiB, { keepAllocated: true });
    expect(r.method).toBe('zero_range');
    expect(isAllZero(f, 4 * MiB)).toBe(true);
    expect(isAllZero(f, 8 * MiB)).toBe(false); // only the first 4 MiB
  });

  it.skipIf(!isRoot)('writes zeros where the filesystem cannot deallocate (ramfs)', async () => {
    const m = path.join(dir, 'ramfs');
    mount('ramfs', 'none', m);
    try {
      const f = path.join(m, 'w.img');
      writeRandom(f, 4 * MiB + 100);
      const r = await clear(f, 4 * MiB + 100, { blockSize: MiB });
      expect(r).toMatchObject({ method: 'write', bytesWritten: 4 * MiB + 100, directIo: false });
      expect(isAllZero(f, 4 * MiB + 100)).toBe(true);
    } finally {
      umount(m);
    }
  });

  it('refuses to clear past the end', async () => {
    const f = path.join(dir, 'small.img');
    writeRandom(f, MiB);
    const err = await clear(f, 2 * MiB).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CopyError);
    expect(err).toMatchObject({ code: 'EINVAL', reason: 'range-beyond-end' });
  });

  it('a path that does not exist is an error (clear never creates)', async () => {
    await expect(clear(path.join(dir, 'nope.img'), MiB)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe.skipIf(!canLoop)('clear a loop device', () => {
  let dev: string;
  let img: string;
  beforeAll(() => {
    img = path.join(dir, 'dev.img');
    writeRandom(img, 32 * MiB);
    dev = attachLoop(img);
  });
  afterAll(() => detachLoop(dev));

  it('uses BLKZEROOUT (the loop device offloads write-zeroes) and the device reads as zeros', async () => {
    const before = sha256Range(dev, 32 * MiB);
    const progress: number[] = [];
    const r = await clear(dev, 24 * MiB, { onProgress: (p) => progress.push(p.bytesDone) });
    expect(r).toMatchObject({ method: 'zeroout', bytesCleared: 24 * MiB, bytesWritten: 0 });
    expect(isAllZero(dev, 24 * MiB)).toBe(true);
    expect(isAllZero(dev, 32 * MiB)).toBe(false);
    expect(sha256Range(dev, 32 * MiB)).not.toBe(before);
    expect(progress.at(-1)).toBe(24 * MiB);
  });

  it('refuses a length that is not a multiple of the sector size', async () => {
    const err = await clear(dev, MiB + 1).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'EINVAL', reason: 'unaligned-length' });
    expect((err as Error).message).toMatch(/512-byte logical sector/);
  });

  it('refuses to clear past the end of the device', async () => {
    await expect(clear(dev, 64 * MiB)).rejects.toMatchObject({ reason: 'range-beyond-end' });
  });

  it('can be aborted', async () => {
    execFileSync('dd', [`if=${img}`, `of=${dev}`, 'bs=1M', 'count=1', 'conv=notrunc', 'status=none']);
    const ac = new AbortController();
    ac.abort();
    await expect(clear(dev, 32 * MiB, { signal: ac.signal })).rejects.toMatchObject({ name: 'AbortError' });
  });
});
