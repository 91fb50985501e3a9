// How copy() and clear() fail: each failure is a clear error (code, reason, message saying what
// to do), a partial copy is never reported as a success, a destination file the copy created is
// removed again, and no file descriptor or thread is left behind. EIO is real: an XFS image is
// shut down (XFS_IOC_GOINGDOWN via xfs_io) in the middle of a copy from or to it.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { CopyAbortedError, CopyError, clear, copy } from '../../../src/native/copy.js';
import { NativeError } from '../../../src/native/errors.js';
import { attachLoop, detachLoop, hasCommand, isRoot } from '../native/helpers.js';
import { MiB, mount, openFdCount, sleep, threadCount, umount, writeRandom } from './helpers.js';

const canLoop = isRoot && hasCommand('losetup');
const canXfs = canLoop && hasCommand('mkfs.xfs') && hasCommand('xfs_io');

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'cinderblock-copy-err-'));
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function failure(p: Promise<unknown>): Promise<CopyError> {
  const err = await p.then(
    () => {
      throw new Error('expected the copy to fail, but it reported success');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CopyError);
  expect(err).toBeInstanceOf(NativeError);
  return err as CopyError;
}

describe('copy failures on files', () => {
  it('a source that does not exist: ENOENT, and no destination is created', async () => {
    const dst = path.join(dir, 'never.dst');
    const err = await failure(copy(path.join(dir, 'missing.src'), dst));
    expect(err).toMatchObject({ code: 'ENOENT', syscall: 'open', path: path.join(dir, 'missing.src') });
    expect(err.message).toMatch(/cannot open the source/);
    expect(existsSync(dst)).toBe(false);
  });

  it('a source that is a directory: EISDIR', async () => {
    mkdirSync(path.join(dir, 'adir'), { recursive: true });
    const err = await failure(copy(path.join(dir, 'adir'), path.join(dir, 'x.dst')));
    expect(err.code).toBe('EISDIR');
    expect(err.message).toMatch(/is a directory/);
    expect(existsSync(path.join(dir, 'x.dst'))).toBe(false);
  });

  it('a source we may not read (mode 000, checked as a non-root user) or a character device: clear errors', async () => {
    // As root, mode 000 does not stop reads; /dev/null shows the type check instead.
    const err = await failure(copy('/dev/null', path.join(dir, 'null.dst')));
    expect(err).toMatchObject({ code: 'EINVAL', reason: 'unsupported-file-type' });
    if (!isRoot) {
      const f = path.join(dir, 'secret.src');
      writeRandom(f, 4096);
      chmodSync(f, 0);
      expect((await failure(copy(f, path.join(dir, 'secret.dst')))).code).toBe('EACCES');
    }
  });

  it('length beyond the end of the source', async () => {
    const src = path.join(dir, 'short.src');
    writeRandom(src, MiB);
    const err = await failure(copy(src, path.join(dir, 'short.dst'), { length: 2 * MiB }));
    expect(err).toMatchObject({ code: 'EINVAL', reason: 'length-exceeds-source' });
    expect(err.message).toMatch(/holds only 1\.00 MiB/);
  });

  it('source and destination the same file', async () => {
    const src = path.join(dir, 'same.src');
    writeRandom(src, MiB);
    expect((await failure(copy(src, src, { offload: false }))).reason).toBe('same-file');
  });

  it('bad options are refused before anything starts', () => {
    expect(() => copy('/a', '/b', { blockSize: 1000 })).toThrow(RangeError);
    expect(() => copy('/a', '/b', { depth: 0 })).toThrow(/depth/);
    expect(() => copy('/a', '/b', { bpsLimit: -1 })).toThrow(/bpsLimit/);
    expect(() => copy('/a', '/b', { ioPriority: { class: 'best-effort', level: 9 } })).toThrow(/level/);
  });
});

describe.skipIf(!canLoop)('copy failures on devices and small filesystems', () => {
  const loops: string[] = [];
  const mounts: string[] = [];
  let src: string;

  beforeAll(() => {
    const img = path.join(dir, 'src.img');
    writeRandom(img, 16 * MiB);
    src = attachLoop(img);
    loops.push(src);
  });
  afterAll(() => {
    for (const m of mounts.reverse()) umount(m);
    for (const l of loops) detachLoop(l);
  });

  it('destination device too small: ENOSPC, reason destination-too-small, nothing written', async () => {
    const img = path.join(dir, 'small.img');
    execFileSync('truncate', ['-s', String(8 * MiB), img]);
    const dst = attachLoop(img);
    loops.push(dst);
    const err = await failure(copy(src, dst));
    expect(err).toMatchObject({ code: 'ENOSPC', reason: 'destination-too-small', bytesDone: 0 });
    expect(err.message).toMatch(/holds 8\.00 MiB .* needs 16\.00 MiB.*Extend the destination/);
  });

  it('length not a multiple of the 512-byte sector on a device', async () => {
    const err = await failure(copy(src, path.join(dir, 'unaligned.dst'), { length: MiB + 100 }));
    expect(err).toMatchObject({ code: 'EINVAL', reason: 'unaligned-length' });
    expect(err.message).toMatch(/multiple of the 512-byte logical sector/);
    expect(existsSync(path.join(dir, 'unaligned.dst'))).toBe(false);
  });

  it('ENOSPC in the middle (tmpfs of 8 MiB): the error says so and the half-written file is removed', async () => {
    const m = path.join(dir, 'tmpfs8m');
    mount('tmpfs', 'tmpfs', m, 'size=8m');
    mounts.push(m);
    const dst = path.join(m, 'full.img');
    const err = await failure(copy(src, dst));
    expect(err.code).toBe('ENOSPC');
    expect(err.syscall).toBe('write');
    expect(err.bytesDone).toBeLessThan(16 * MiB);
    expect(err.message).toMatch(/No space|no space/);
    expect(existsSync(dst)).toBe(false);
  });

  it('abort mid-copy: rejects with AbortError, reports how far it got, removes the file it created', async () => {
    const dst = path.join(dir, 'aborted.img');
    const ac = new AbortController();
    const p = copy(src, dst, { bpsLimit: 4 * MiB, blockSize: MiB, signal: ac.signal });
    setTimeout(() => ac.abort(), 400);
    const t0 = Date.now();
    const err = await p.catch((e: unknown) => e);
    expect(Date.now() - t0).toBeLessThan(2000); // aborting does not wait for the throttle
    expect(err).toBeInstanceOf(CopyAbortedError);
    expect(err).toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
    expect((err as CopyAbortedError).bytesDone).toBeLessThan(16 * MiB);
    expect(existsSync(dst)).toBe(false);
    // an already-aborted signal never starts
    await expect(copy(src, dst, { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('abort of a copy into an existing device: AbortError (the device keeps a partial copy)', async () => {
    const img = path.join(dir, 'abort-dst.img');
    execFileSync('truncate', ['-s', String(16 * MiB), img]);
    const dst = attachLoop(img);
    loops.push(dst);
    const ac = new AbortController();
    const p = copy(src, dst, { bpsLimit: 8 * MiB, blockSize: MiB, signal: ac.signal });
    setTimeout(() => ac.abort(new Error('operator asked')), 600);
    const err = (await p.catch((e: unknown) => e)) as CopyAbortedError;
    expect(err.name).toBe('AbortError');
    expect((err.cause as Error).message).toBe('operator asked');
    expect(err.bytesDone).toBeGreaterThan(0);
    expect(err.bytesDone).toBeLessThan(16 * MiB);
  });

  describe.skipIf(!canXfs)('EIO for real: an XFS filesystem shut down mid-copy', () => {
    let m: string;
    beforeAll(() => {
      const img = path.join(dir, 'xfs.img');
      execFileSync('truncate', ['-s', String(300 * MiB), img]);
      execFileSync('mkfs.xfs', ['-q', '-f', img]);
      m = path.join(dir, 'xfs');
      mount('xfs', img, m, 'loop');
      mounts.push(m);
      writeRandom(path.join(m, 'src.img'), 24 * MiB);
      execFileSync('sync');
    });

    it('reading a file on it fails with EIO, not a success', async () => {
      const p = copy(path.join(m, 'src.img'), path.join(dir, 'eio.dst'), { bpsLimit: 8 * MiB, blockSize: MiB, offload: false });
      await sleep(700);
      execFileSync('xfs_io', ['-x', '-c', 'shutdown', m]);
      const err = await failure(p);
      expect(err.code).toBe('EIO');
      expect(err.syscall).toBe('read');
      expect(err.message).toMatch(/Input\/output error.*dmesg/);
      expect(err.bytesDone).toBeGreaterThan(0);
      expect(err.bytesDone).toBeLessThan(24 * MiB);
      expect(existsSync(path.join(dir, 'eio.dst'))).toBe(false);
    });
  });

  describe.skipIf(!canXfs)('EIO for real on a block device: a loop device over a file on XFS that is shut down', () => {
    let m: string;
    let dev: string;
    beforeAll(() => {
      const img = path.join(dir, 'xfs2.img');
      execFileSync('truncate', ['-s', String(300 * MiB), img]);
      execFileSync('mkfs.xfs', ['-q', '-f', img]);
      m = path.join(dir, 'xfs2');
      mount('xfs', img, m, 'loop');
      mounts.push(m);
      execFileSync('truncate', ['-s', String(32 * MiB), path.join(m, 'disk.img')]);
      dev = attachLoop(path.join(m, 'disk.img'), ['--direct-io=on']);
      loops.unshift(dev); // detached before the filesystem under it is unmounted
    });

    it('writing the device fails with EIO mid-copy', async () => {
      const p = copy(src, dev, { bpsLimit: 8 * MiB, blockSize: MiB });
      await sleep(700);
      execFileSync('xfs_io', ['-x', '-c', 'shutdown', m]);
      const err = await failure(p);
      expect(err.code).toBe('EIO');
      expect(['write', 'fdatasync']).toContain(err.syscall);
      expect(err.path).toBe(dev);
    });
  });

  it('leaks no file descriptor and no thread over successes, failures and aborts', async () => {
    const img = path.join(dir, 'leak.img');
    writeRandom(img, 4 * MiB);
    const fds = openFdCount();
    const threads = threadCount();
    for (let i = 0; i < 5; i++) {
      for (const ioBackend of ['io_uring', 'threads'] as const) {
        await copy(src, path.join(dir, `leak-${i}.dst`), { ioBackend, verify: true });
        await copy(img, path.join(dir, `leak-${i}.dst`), { ioBackend, offload: false, sparse: true });
        await copy(src, path.join(dir, 'missing', 'x')).catch(() => undefined);
        await copy(src, path.join(dir, `leak-${i}.dst`), { length: MiB + 1 }).catch(() => undefined);
        const ac = new AbortController();
        const p = copy(src, path.join(dir, `leak-abort-${i}.dst`), { ioBackend, bpsLimit: 16 * MiB, blockSize: MiB, signal: ac.signal });
        setTimeout(() => ac.abort(), 50);
        await p.catch(() => undefined);
        await clear(path.join(dir, `leak-${i}.dst`), MiB);
      }
    }
    await sleep(200); // the copy threads exit right after settling
    expect(openFdCount()).toBe(fds);
    expect(threadCount()).toBeLessThanOrEqual(threads);
  });
});
