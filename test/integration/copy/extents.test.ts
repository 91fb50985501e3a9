// copy()'s sourceExtents: the caller's map of where a source holds data (a thin LV's mapped
// blocks: drivers/lvm/thin-map.ts), for block devices, which cannot answer SEEK_DATA. Outside the
// map nothing is read; those bytes are holes and end up as zeros in the destination however it
// started (skipped, zeroed out or written). Loop devices need root.
import { execFileSync } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { copy } from '../../../src/native/copy.js';
import { attachLoop, detachLoop, hasCommand, isRoot } from '../native/helpers.js';
import { MiB, allocatedBytes, isAllZero, sha256Range, writeRandom } from './helpers.js';

const canLoop = isRoot && hasCommand('losetup');

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'cinderblock-extents-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function hashOf(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Random bytes at `pieces`, zeros elsewhere: the content a device with that map reads as. */
function expected(size: number, pieces: Array<[number, number]>, from: Buffer): Buffer {
  const b = Buffer.alloc(size);
  for (const [off, len] of pieces) from.copy(b, off, off, off + len);
  return b;
}

function writeFile(file: string, content: Buffer): void {
  const fd = openSync(file, 'w');
  try {
    writeSync(fd, content);
  } finally {
    closeSync(fd);
  }
}

describe('sourceExtents option checks', () => {
  it('refuses unsorted, overlapping, empty or negative ranges before any I/O (thrown, like other bad options)', () => {
    const src = path.join(dir, 'opt-src');
    writeRandom(src, MiB);
    const dst = path.join(dir, 'opt-dst');
    expect(() => copy(src, dst, { sourceExtents: [[65536, 4096], [0, 4096]] })).toThrow(/sorted/);
    expect(() => copy(src, dst, { sourceExtents: [[0, 8192], [4096, 4096]] })).toThrow(/sorted/);
    expect(() => copy(src, dst, { sourceExtents: [[0, 0]] })).toThrow(RangeError);
    expect(() => copy(src, dst, { sourceExtents: [[-4096, 4096]] })).toThrow(RangeError);
  });

  it('between files on one filesystem: no offload (the map is the truth), holes never read', async () => {
    const src = path.join(dir, 'file-src');
    writeRandom(src, 4 * MiB);
    const dst = path.join(dir, 'file-dst');
    // The source is dense, but the map says only its second MiB is data: the rest is taken as
    // zeros, which shows those bytes were never read.
    const r = await copy(src, dst, { sourceExtents: [[MiB, MiB]], blockSize: MiB });
    expect(r.method).toBe('engine');
    expect(r.bytesWritten).toBe(MiB);
    expect(r.bytesSkippedHoles).toBe(3 * MiB);
    expect(sha256Range(dst, 4 * MiB)).toBe(hashOf(expected(4 * MiB, [[MiB, MiB]], readFileSync(src))));
  });
});

describe.skipIf(!canLoop)('sourceExtents from a loop device', () => {
  const SIZE = 32 * MiB;
  const pieces: Array<[number, number]> = [
    [0, MiB],
    [5 * MiB, 2 * MiB],
    [20 * MiB + 64 * 1024, 64 * 1024],
    [SIZE - MiB, MiB],
  ];
  const loops: string[] = [];
  let srcImg: string;
  let srcDev: string;
  let content: Buffer;
  let want: string;

  beforeAll(() => {
    // A dense device: random bytes everywhere, also outside the map. Whatever comes out as
    // zeros there proves the engine did not read it.
    content = Buffer.alloc(SIZE);
    randomFillSync(content);
    srcImg = path.join(dir, 'src.img');
    writeFile(srcImg, content);
    srcDev = attachLoop(srcImg);
    loops.push(srcDev);
    want = hashOf(expected(SIZE, pieces, content));
  });
  afterAll(() => {
    for (const l of loops) detachLoop(l);
  });

  function device(name: string, fill: 'zero' | 'old'): { dev: string; img: string } {
    const img = path.join(dir, name);
    if (fill === 'zero') execFileSync('truncate', ['-s', String(SIZE), img]);
    else writeRandom(img, SIZE);
    const dev = attachLoop(img);
    loops.push(dev);
    return { dev, img };
  }

  for (const ioBackend of ['io_uring', 'threads'] as const) {
    it(`into a zeroed device (${ioBackend}): only the mapped ranges are read and written`, async () => {
      const { dev, img } = device(`zero-${ioBackend}.img`, 'zero');
      const r = await copy(srcDev, dev, { sourceExtents: pieces, destinationIsZeroed: true, ioBackend, verify: true });
      const data = pieces.reduce((n, [, l]) => n + l, 0);
      expect(r).toMatchObject({ method: 'engine', bytesCopied: SIZE, bytesWritten: data, bytesSkippedHoles: SIZE - data, directIo: true });
      expect(sha256Range(dev, SIZE)).toBe(want);
      expect(r.checksum).toBeDefined();
      expect(allocatedBytes(img)).toBeLessThanOrEqual(data + 256 * 1024);
    });
  }

  it('into a device with old data, not sparse: the unmapped ranges are written as zeros', async () => {
    const { dev } = device('old-dense.img', 'old');
    const r = await copy(srcDev, dev, { sourceExtents: pieces });
    expect(r.bytesWritten).toBe(SIZE);
    expect(sha256Range(dev, SIZE)).toBe(want);
  });

  it('into a device with old data, sparse: the unmapped ranges are zeroed out (BLKZEROOUT), not written', async () => {
    const { dev } = device('old-sparse.img', 'old');
    const r = await copy(srcDev, dev, { sourceExtents: pieces, sparse: true });
    const data = pieces.reduce((n, [, l]) => n + l, 0);
    expect(r.bytesWritten).toBe(data);
    expect(sha256Range(dev, SIZE)).toBe(want);
  });

  it('ranges off 4 KiB boundaries are widened to whole blocks (reading a little more is harmless)', async () => {
    const { dev } = device('unaligned.img', 'zero');
    const r = await copy(srcDev, dev, { sourceExtents: [[5000, 100], [MiB + 4095, 2]], destinationIsZeroed: true });
    expect(r.bytesWritten).toBe(4096 + 8192);
    const out = expected(SIZE, [[4096, 4096], [MiB, 8192]], content);
    expect(sha256Range(dev, SIZE)).toBe(hashOf(out));
  });

  it('an empty map is all holes; ranges beyond the length are ignored', async () => {
    const { dev } = device('empty.img', 'old');
    const r = await copy(srcDev, dev, { sourceExtents: [], sparse: true });
    expect(r.bytesWritten).toBe(0);
    expect(isAllZero(dev, SIZE)).toBe(true);
    const { dev: dev2 } = device('short.img', 'zero');
    const r2 = await copy(srcDev, dev2, { length: 8 * MiB, sourceExtents: pieces, destinationIsZeroed: true });
    expect(r2.bytesWritten).toBe(3 * MiB);
    expect(sha256Range(dev2, 8 * MiB)).toBe(hashOf(expected(SIZE, pieces, content).subarray(0, 8 * MiB)));
  });
});
