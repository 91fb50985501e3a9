// The copy engine on real files and loop devices: the bytes arrive (sha256 of both ends), holes
// stay holes, zero blocks are not written where the destination already reads as zeros, and
// O_DIRECT is dropped where a filesystem refuses it. Loop devices and mounts need root.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { checksum, copy } from '../../../src/native/copy.js';
import { attachLoop, detachLoop, hasCommand, isRoot } from '../native/helpers.js';
import { MiB, allocatedBytes, isAllZero, mount, sha256, sha256Range, umount, writeRandom, writeSparse } from './helpers.js';

const canLoop = isRoot && hasCommand('losetup');
if (!canLoop) console.warn('copy tests on loop devices and mounts skipped: they need root and losetup');

/** tmpdir()'s filesystem is one where copy() skips copy_file_range (ext4 on this machine). */
const pageCacheCfr = ['ext2/ext3', 'tmpfs', 'ramfs', 'f2fs'].includes(execFileSync('stat', ['-f', '-c', '%T', tmpdir()], { encoding: 'utf8' }).trim());

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'cinderblock-copy-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('copy between regular files', () => {
  for (const ioBackend of ['io_uring', 'threads'] as const) {
    it(`copies a dense file byte for byte with the engine (${ioBackend}), O_DIRECT both ways`, async () => {
      const src = path.join(dir, `dense-${ioBackend}.src`);
      const dst = path.join(dir, `dense-${ioBackend}.dst`);
      writeRandom(src, 24 * MiB + 4096 * 3); // not a multiple of the 4 MiB block
      const r = await copy(src, dst, { offload: false, ioBackend, verify: true, blockSize: MiB, depth: 4 });
      expect(sha256(dst)).toBe(sha256(src));
      expect(r).toMatchObject({ method: 'engine', bytesCopied: 24 * MiB + 12288, bytesWritten: 24 * MiB + 12288, directIo: true, ioBackend });
      expect(r.checksum).toBe(await checksum(src));
      expect(r.checksum).toMatch(/^xxh64:[0-9a-f]{16}$/);
    });
  }

  it('copies a file whose length is not a multiple of 512 (unaligned tail written without O_DIRECT)', async () => {
    const src = path.join(dir, 'odd.src');
    const dst = path.join(dir, 'odd.dst');
    writeRandom(src, 5 * MiB + 777);
    const r = await copy(src, dst, { offload: false });
    expect(statSync(dst).size).toBe(5 * MiB + 777);
    expect(sha256(dst)).toBe(sha256(src));
    expect(r.directIo).toBe(true);
  });

  it('copies only `length` bytes when asked', async () => {
    const src = path.join(dir, 'len.src');
    const dst = path.join(dir, 'len.dst');
    writeRandom(src, 4 * MiB);
    const r = await copy(src, dst, { length: 3 * MiB + 512, offload: false });
    expect(r.bytesCopied).toBe(3 * MiB + 512);
    expect(sha256(dst)).toBe(sha256(src, 3 * MiB + 512));
  });

  it('between files on ext4/tmpfs uses the engine (copy_file_range there is only a page-cache copy)', async () => {
    const src = path.join(dir, 'cfr.src');
    const dst = path.join(dir, 'cfr.dst');
    writeRandom(src, 8 * MiB);
    const r = await copy(src, dst, { verify: true });
    expect(r.method).toBe(pageCacheCfr ? 'engine' : 'copy_file_range');
    expect(sha256(dst)).toBe(sha256(src));
    expect(r.checksum).toBe(await checksum(src));
  });

  it('a sparse source to a new file: holes are never read and stay holes; few bytes written', async () => {
    const src = path.join(dir, 'sparse.src');
    writeSparse(src, 64 * MiB, [
      [0, MiB],
      [20 * MiB, 2 * MiB],
      [63 * MiB, MiB],
    ]);
    for (const offload of [false, true]) {
      const dst = path.join(dir, `sparse-${offload}.dst`);
      const r = await copy(src, dst, { sparse: true, offload, verify: true });
      expect(sha256(dst)).toBe(sha256(src));
      expect(statSync(dst).size).toBe(64 * MiB);
      expect(r.bytesWritten).toBeLessThanOrEqual(4 * MiB + 64 * 1024);
      expect(r.bytesSkippedHoles).toBeGreaterThanOrEqual(60 * MiB - 64 * 1024);
      expect(allocatedBytes(dst)).toBeLessThanOrEqual(5 * MiB);
      expect(r.checksum).toBe(await checksum(src));
      expect(r.method).toBe(offload && !pageCacheCfr ? 'copy_file_range' : 'engine');
    }
  });

  it('zero blocks (allocated, not holes) are skipped in a fresh destination file (auto destinationIsZeroed)', async () => {
    const src = path.join(dir, 'zeros.src');
    writeSparse(src, 16 * MiB, [[0, MiB]], [MiB, 8 * MiB]); // 8 MiB of written zeros
    expect(allocatedBytes(src)).toBeGreaterThanOrEqual(9 * MiB);
    const dst = path.join(dir, 'zeros.dst');
    const r = await copy(src, dst, { offload: false, blockSize: MiB });
    expect(sha256(dst)).toBe(sha256(src));
    expect(r.bytesSkippedZero).toBeGreaterThanOrEqual(8 * MiB);
    expect(r.bytesWritten).toBeLessThanOrEqual(MiB);
    expect(allocatedBytes(dst)).toBeLessThanOrEqual(2 * MiB);
  });

  it('sparse into a destination that holds old data: zero runs are punched out, so the content is still exact', async () => {
    const src = path.join(dir, 'punch.src');
    writeSparse(src, 16 * MiB, [[4 * MiB, MiB]], [8 * MiB, 2 * MiB]);
    const dst = path.join(dir, 'punch.dst');
    writeRandom(dst, 16 * MiB); // old data everywhere
    const r = await copy(src, dst, { sparse: true, offload: false, blockSize: MiB });
    expect(sha256(dst)).toBe(sha256(src));
    expect(r.bytesWritten).toBe(MiB);
    expect(allocatedBytes(dst)).toBeLessThanOrEqual(2 * MiB);
  });

  it('not sparse into a destination with old data: holes are zeroed, content exact', async () => {
    const src = path.join(dir, 'dense-into.src');
    writeSparse(src, 8 * MiB, [[MiB, MiB]]);
    const dst = path.join(dir, 'dense-into.dst');
    writeRandom(dst, 8 * MiB);
    await copy(src, dst, { offload: false });
    expect(sha256(dst)).toBe(sha256(src));
  });

  it('checksum() equals xxhsum -H1 (XXH64) when xxhsum is installed', async () => {
    const f = path.join(dir, 'xxh.bin');
    writeRandom(f, 3 * MiB + 5);
    const ours = await checksum(f);
    if (hasCommand('xxhsum')) {
      const theirs = execFileSync('xxhsum', ['-H1', f], { encoding: 'utf8' }).split(/\s+/)[0];
      expect(ours).toBe(`xxh64:${theirs}`);
    }
    writeFileSync(path.join(dir, 'empty'), '');
    expect(await checksum(path.join(dir, 'empty'))).toBe('xxh64:ef46db3751d8e999'); // XXH64 of nothing
  });

  it('reports progress while copying', async () => {
    const src = path.join(dir, 'progress.src');
    writeRandom(src, 16 * MiB);
    const seen: number[] = [];
    await copy(src, path.join(dir, 'progress.dst'), {
      offload: false,
      bpsLimit: 32 * MiB,
      blockSize: MiB,
      progressIntervalMs: 50,
      onProgress: (p) => {
        expect(p.bytesTotal).toBe(16 * MiB);
        seen.push(p.bytesDone);
      },
    });
    expect(seen.length).toBeGreaterThan(3);
    expect(seen.at(-1)).toBe(16 * MiB);
    expect([...seen].sort((a, b) => a - b)).toEqual(seen); // never goes backwards
  });
});

describe.skipIf(!canLoop)('copy with loop devices', () => {
  const loops: string[] = [];
  const mounts: string[] = [];
  let srcDev: string;
  let dstDev: string;
  let srcImg: string;

  beforeAll(() => {
    srcImg = path.join(dir, 'loop-src.img');
    writeRandom(srcImg, 32 * MiB);
    srcDev = attachLoop(srcImg);
    loops.push(srcDev);
    const dstImg = path.join(dir, 'loop-dst.img');
    writeRandom(dstImg, 40 * MiB);
    dstDev = attachLoop(dstImg);
    loops.push(dstDev);
  });

  afterAll(() => {
    for (const m of mounts) umount(m);
    for (const l of loops) detachLoop(l);
  });

  for (const ioBackend of ['io_uring', 'threads'] as const) {
    it(`device to device (${ioBackend}): every byte arrives, O_DIRECT, synced`, async () => {
      const r = await copy(srcDev, dstDev, { ioBackend, verify: true });
      expect(r).toMatchObject({ method: 'engine', bytesCopied: 32 * MiB, bytesWritten: 32 * MiB, directIo: true, ioBackend });
      expect(sha256Range(dstDev, 32 * MiB)).toBe(sha256Range(srcDev, 32 * MiB));
      expect(r.checksum).toBe(await checksum(srcDev));
    });
  }

  it('device to file and file to device', async () => {
    const f = path.join(dir, 'from-dev.img');
    await copy(srcDev, f);
    expect(sha256(f)).toBe(sha256(srcImg));
    const r = await copy(f, dstDev, { length: 16 * MiB });
    expect(r.bytesCopied).toBe(16 * MiB);
    expect(sha256Range(dstDev, 16 * MiB)).toBe(sha256(srcImg, 16 * MiB));
  });

  it('destinationIsZeroed: zero blocks are read but not written (a new thin LV, after a discard)', async () => {
    const img = path.join(dir, 'zsrc.img');
    writeSparse(img, 16 * MiB, [[0, MiB], [15 * MiB, MiB]]);
    const src = attachLoop(img);
    loops.push(src);
    const zimg = path.join(dir, 'zdst.img');
    execFileSync('truncate', ['-s', String(16 * MiB), zimg]);
    const dst = attachLoop(zimg);
    loops.push(dst);
    const r = await copy(src, dst, { destinationIsZeroed: true, blockSize: MiB });
    expect(r.bytesWritten).toBe(2 * MiB);
    expect(r.bytesSkippedZero).toBe(14 * MiB);
    expect(r.bytesSkippedHoles).toBe(0); // a device has no holes to seek
    expect(sha256Range(dst, 16 * MiB)).toBe(sha256(img));
    expect(allocatedBytes(zimg)).toBeLessThanOrEqual(2 * MiB + 64 * 1024);
  });

  it('sparse into a device with old data: zero runs become BLKZEROOUT, content exact', async () => {
    const img = path.join(dir, 'bzsrc.img');
    writeSparse(img, 16 * MiB, [[2 * MiB, MiB]]);
    const r = await copy(img, dstDev, { sparse: true, blockSize: MiB });
    expect(r.bytesWritten).toBe(MiB);
    expect(sha256Range(dstDev, 16 * MiB)).toBe(sha256(img));
  });

  it('without sparse/zeroed, a sparse file source is written densely to a device (holes as zeros)', async () => {
    const img = path.join(dir, 'holes-to-dev.img');
    writeSparse(img, 8 * MiB, [[MiB, MiB]]);
    const r = await copy(img, dstDev);
    expect(r.bytesWritten).toBe(8 * MiB);
    expect(sha256Range(dstDev, 8 * MiB)).toBe(sha256(img));
  });

  it('falls back from O_DIRECT where the filesystem refuses it at open (ramfs)', async () => {
    const m = path.join(dir, 'ramfs');
    mount('ramfs', 'none', m);
    mounts.push(m);
    const dst = path.join(m, 'copy.img');
    const r = await copy(srcDev, dst, { offload: false });
    expect(r.directIoSource).toBe(true);
    expect(r.directIoDestination).toBe(false);
    expect(r.directIo).toBe(false);
    expect(sha256(dst)).toBe(sha256(srcImg));
    const back = await copy(dst, path.join(dir, 'from-ramfs.img'), { offload: false });
    expect(back.directIoSource).toBe(false);
    expect(sha256(path.join(dir, 'from-ramfs.img'))).toBe(sha256(srcImg));
  });

  it('falls back from O_DIRECT when the first write is refused with EINVAL (test-only fault injection)', async () => {
    const dst = path.join(dir, 'einval.img');
    const r = await copy(srcDev, dst, { offload: false, testOnlyFault: 'einval-first-direct-write' });
    expect(r.directIoDestination).toBe(false);
    expect(sha256(dst)).toBe(sha256(srcImg));
  });

  it('FICLONE between files on a reflink filesystem (XFS, reflink=1)', async () => {
    if (!hasCommand('mkfs.xfs')) return;
    const img = path.join(dir, 'xfs-reflink.img');
    execFileSync('truncate', ['-s', String(300 * MiB), img]);
    execFileSync('mkfs.xfs', ['-q', '-f', '-m', 'reflink=1', img]);
    const m = path.join(dir, 'xfs-reflink');
    mount('xfs', img, m, 'loop');
    mounts.push(m);
    const a = path.join(m, 'a.img');
    writeRandom(a, 8 * MiB);
    const r = await copy(a, path.join(m, 'b.img'), { verify: true });
    expect(r.method).toBe('ficlone');
    expect(r.bytesWritten).toBe(0);
    expect(sha256(path.join(m, 'b.img'))).toBe(sha256(a));
    expect(r.checksum).toBe(await checksum(a));
    // A partial length cannot be a whole-file clone: copy_file_range instead.
    const p = await copy(a, path.join(m, 'c.img'), { length: 4 * MiB });
    expect(p.method).toBe('copy_file_range');
    expect(sha256(path.join(m, 'c.img'))).toBe(sha256(a, 4 * MiB));
  });

  it('copy_file_range on XFS without reflink: holes skipped, checksum of what arrived, bandwidth limit kept', async () => {
    if (!hasCommand('mkfs.xfs')) return;
    const img = path.join(dir, 'xfs-noreflink.img');
    execFileSync('truncate', ['-s', String(300 * MiB), img]);
    execFileSync('mkfs.xfs', ['-q', '-f', '-m', 'reflink=0', img]);
    const m = path.join(dir, 'xfs-noreflink');
    mount('xfs', img, m, 'loop');
    mounts.push(m);
    const src = path.join(m, 'sparse.img');
    writeSparse(src, 32 * MiB, [[0, MiB], [16 * MiB, MiB]]);
    const r = await copy(src, path.join(m, 'copy.img'), { verify: true, sparse: true });
    expect(r.method).toBe('copy_file_range');
    expect(r.bytesWritten).toBe(2 * MiB);
    expect(r.bytesSkippedHoles).toBe(30 * MiB);
    expect(sha256(path.join(m, 'copy.img'))).toBe(sha256(src));
    expect(r.checksum).toBe(await checksum(src));
    expect(allocatedBytes(path.join(m, 'copy.img'))).toBeLessThanOrEqual(3 * MiB);
    // Into a file with old data, not sparse: the holes are zeroed in place.
    writeRandom(path.join(m, 'old.img'), 32 * MiB);
    await copy(src, path.join(m, 'old.img'));
    expect(sha256(path.join(m, 'old.img'))).toBe(sha256(src));
    // Limited: 10 MiB at 10 MiB/s (in bps/4 chunks, the first at once) takes most of a second.
    writeRandom(path.join(m, 'dense.img'), 10 * MiB);
    const t0 = Date.now();
    const l = await copy(path.join(m, 'dense.img'), path.join(m, 'limited.img'), { bpsLimit: 10 * MiB });
    expect(l.method).toBe('copy_file_range');
    expect((Date.now() - t0) / 1000).toBeGreaterThan(0.6);
  });

  it('a 4096-byte-sector device: copies in whole sectors', async () => {
    const img = path.join(dir, 'dst4k.img');
    execFileSync('truncate', ['-s', String(8 * MiB), img]);
    const dev = attachLoop(img, ['--sector-size', '4096']);
    loops.push(dev);
    const r = await copy(srcDev, dev, { length: 8 * MiB });
    expect(r.directIo).toBe(true);
    expect(sha256Range(dev, 8 * MiB)).toBe(sha256(srcImg, 8 * MiB));
    expect(isAllZero(dev, 0)).toBe(true);
  });
});
