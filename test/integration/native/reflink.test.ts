// FICLONE and the reflink probe. The root filesystem here (/tmp, /work: ext4) cannot reflink,
// so the probe must say false there; to see a real clone we mkfs a small btrfs and XFS
// (reflink=1) image, loop-mount it, and clone inside it (root and mkfs.* needed).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { NativeError, cloneFile, isReflinkUnsupported, supportsReflink } from '../../../src/native/index.js';
import { hasCommand, isRoot } from './helpers.js';

const MiB = 1024 * 1024;

/** What coreutils says about reflinks in `dir`: the independent check of our probe. */
function cpCanReflink(dir: string): boolean {
  const a = path.join(dir, `.cp-reflink-a-${process.pid}`);
  const b = path.join(dir, `.cp-reflink-b-${process.pid}`);
  writeFileSync(a, 'x'.repeat(4096));
  try {
    execFileSync('cp', ['--reflink=always', a, b], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    rmSync(a, { force: true });
    rmSync(b, { force: true });
  }
}

describe('reflink on the filesystems this machine already has', () => {
  for (const dir of [tmpdir(), path.resolve(import.meta.dirname, '../../..')]) {
    it(`probe of ${dir} agrees with cp --reflink=always`, async () => {
      expect(await supportsReflink(dir)).toBe(cpCanReflink(dir));
    });
  }

  // Here /tmp is ext4; on a machine whose /tmp can reflink, the loop-mounted tests cover cloning.
  it.skipIf(cpCanReflink(tmpdir()))('cloneFile where reflink is unsupported fails with EOPNOTSUPP and leaves no destination', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'cinderblock-reflink-'));
    try {
      writeFileSync(path.join(dir, 'src'), 'data');
      const err = await cloneFile(path.join(dir, 'src'), path.join(dir, 'dst')).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NativeError);
      expect(err).toMatchObject({ code: 'EOPNOTSUPP', syscall: 'ioctl(FICLONE)' });
      expect((err as Error).message).toMatch(/copy the data instead/);
      expect(isReflinkUnsupported(err)).toBe(true);
      expect(existsSync(path.join(dir, 'dst'))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the probe rejects (rather than answering false) for a missing directory', async () => {
    await expect(supportsReflink('/nonexistent/cinderblock')).rejects.toMatchObject({ code: 'ENOENT', syscall: 'mkostemp' });
  });
});

const filesystems = [
  { type: 'btrfs', mkfs: 'mkfs.btrfs', args: ['-q'], size: 128 * MiB },
  { type: 'xfs', mkfs: 'mkfs.xfs', args: ['-q', '-m', 'reflink=1'], size: 320 * MiB },
];

for (const fs of filesystems) {
  const usable =
    isRoot &&
    hasCommand(fs.mkfs) &&
    existsSync('/proc/filesystems') &&
    readFileSync('/proc/filesystems', 'utf8').split('\n').some((l) => l.trim().split(/\s+/).pop() === fs.type);
  if (!usable) console.warn(`reflink tests on ${fs.type} skipped: they need root, ${fs.mkfs} and ${fs.type} in /proc/filesystems`);

  describe.skipIf(!usable)(`reflink on a loop-mounted ${fs.type}`, () => {
    let dir: string;
    let mnt: string;
    let mounted = false;

    beforeAll(async () => {
      dir = mkdtempSync(path.join(tmpdir(), `cinderblock-${fs.type}-`));
      const img = path.join(dir, 'fs.img');
      await writeFile(img, '');
      await truncate(img, fs.size);
      execFileSync(fs.mkfs, [...fs.args, img], { stdio: 'ignore' });
      mnt = path.join(dir, 'mnt');
      mkdirSync(mnt);
      execFileSync('mount', ['-o', 'loop', img, mnt], { stdio: 'ignore' }); // loop is auto-detached on umount
      mounted = true;
    });

    afterAll(() => {
      if (mounted) {
        try {
          execFileSync('umount', [mnt], { stdio: 'ignore' });
        } catch {
          execFileSync('umount', ['-l', mnt], { stdio: 'ignore' }); // something still open: detach lazily
        }
      }
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('the probe says true, as cp does', async () => {
      expect(cpCanReflink(mnt)).toBe(true);
      expect(await supportsReflink(mnt)).toBe(true);
    });

    it('clones by path: same content, copy-on-write afterwards, mode applied', async () => {
      const src = path.join(mnt, 'volume-a');
      const data = Buffer.alloc(2 * MiB);
      for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
      writeFileSync(src, data);
      const dst = path.join(mnt, 'volume-b');
      await cloneFile(src, dst, { mode: 0o600 });
      expect(readFileSync(dst).equals(data)).toBe(true);
      expect(statSync(dst).mode & 0o777).toBe(0o600);
      // Writing the clone leaves the source alone.
      const fh = await open(dst, 'r+');
      await fh.write(Buffer.from('changed'), 0, 7, 0);
      await fh.close();
      expect(readFileSync(src).equals(data)).toBe(true);
      expect(readFileSync(dst).subarray(0, 7).toString()).toBe('changed');
    });

    it('clones fd to fd', async () => {
      const src = path.join(mnt, 'fd-src');
      writeFileSync(src, 'y'.repeat(8192));
      const s = await open(src, 'r');
      const d = await open(path.join(mnt, 'fd-dst'), 'w');
      try {
        await cloneFile(s.fd, d.fd);
      } finally {
        await s.close();
        await d.close();
      }
      expect(readFileSync(path.join(mnt, 'fd-dst'), 'utf8')).toBe('y'.repeat(8192));
    });

    it('never overwrites an existing destination (EEXIST)', async () => {
      writeFileSync(path.join(mnt, 'keep-src'), 'new');
      writeFileSync(path.join(mnt, 'keep-dst'), 'precious');
      await expect(cloneFile(path.join(mnt, 'keep-src'), path.join(mnt, 'keep-dst'))).rejects.toMatchObject({
        code: 'EEXIST',
        syscall: 'open',
      });
      expect(readFileSync(path.join(mnt, 'keep-dst'), 'utf8')).toBe('precious');
    });

    it('cannot clone across filesystems: EXDEV, counted as unsupported, destination removed', async () => {
      const src = path.join(mnt, 'cross-src');
      writeFileSync(src, 'z'.repeat(4096));
      const dst = path.join(dir, 'cross-dst'); // on the root filesystem
      const err = await cloneFile(src, dst).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'EXDEV', syscall: 'ioctl(FICLONE)' });
      expect(isReflinkUnsupported(err)).toBe(true);
      expect(existsSync(dst)).toBe(false);
    });

    it('a missing source is ENOENT, not "unsupported"', async () => {
      const err = await cloneFile(path.join(mnt, 'nope'), path.join(mnt, 'nope-dst')).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'ENOENT', syscall: 'open', path: path.join(mnt, 'nope') });
      expect(isReflinkUnsupported(err)).toBe(false);
    });
  });
}
