// The file pool on a filesystem that shares extents (a loop-mounted XFS with reflink=1): setup's
// probe finds reflink, and snapshots, clones and reverts are FICLONE (no space used, data right).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { open, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileVolumeDriver } from '../../../drivers/file/file-driver.js';
import type { DriverVolume } from '../../../drivers/driver.js';

const MiB = 1024 * 1024;
const usable = process.getuid?.() === 0 && existsSync('/usr/sbin/mkfs.xfs');
const vol = (id: string, size = 1): DriverVolume => ({ id, name: `volume-${id}`, size, providerLocation: null, providerAuth: null, multiattach: false });

async function fill(path: string, byte: number, bytes: number): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.write(Buffer.alloc(bytes, byte), 0, bytes, 0);
    await fh.datasync();
  } finally {
    await fh.close();
  }
}
async function firstByte(path: string, offset = 0): Promise<number> {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, offset);
    return b[0]!;
  } finally {
    await fh.close();
  }
}

describe.skipIf(!usable)('file pool on XFS with reflink', () => {
  let dir: string;
  let mnt: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'cb-xfs-'));
    const img = join(dir, 'img');
    mnt = join(dir, 'mnt');
    execFileSync('truncate', ['-s', '320M', img]);
    execFileSync('mkfs.xfs', ['-q', '-m', 'reflink=1', img], { stdio: 'ignore' });
    execFileSync('mkdir', ['-p', mnt]);
    execFileSync('mount', ['-o', 'loop', img, mnt]);
  });
  afterAll(() => {
    if (mnt) execFileSync('umount', [mnt], { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  });

  it('snapshots, clones and reverts share extents', async () => {
    const d = new FileVolumeDriver({ directory: join(mnt, 'pool'), backendName: 'file', hostname: 'h', reservedPercentage: 0, maxOverSubscriptionRatio: 20, storageProtocol: 'iSCSI', filterFunction: null, goodnessFunction: null });
    await d.doSetup();
    expect(d.usesReflink).toBe(true);
    const v = vol('a');
    await d.createVolume(v);
    await fill(d.localPath(v), 0x11, 64 * MiB);
    const free = async () => {
      const s = await statfs(mnt);
      return s.bavail * s.bsize;
    };
    const before = await free();
    const s = { id: 's', name: 'snapshot-s', volumeId: 'a', volumeName: v.name, volumeSize: 1, providerLocation: null };
    await d.createSnapshot(s);
    await d.createClonedVolume(vol('b'), v);
    await d.createVolumeFromSnapshot(vol('c', 2), s);
    // three 64 MiB copies would take 192 MiB; shared extents take next to nothing
    expect(before - (await free())).toBeLessThan(8 * MiB);
    await fill(d.localPath(v), 0x22, MiB);
    expect(await firstByte(d.localPath(v))).toBe(0x22);
    expect(await firstByte(d.localPath(vol('b')))).toBe(0x11);
    expect(await firstByte(d.localPath(vol('c', 2)))).toBe(0x11);
    await d.revertToSnapshot(v, s);
    expect(await firstByte(d.localPath(v))).toBe(0x11);
    expect(await firstByte(d.localPath(v), 63 * MiB)).toBe(0x11);
  });
});
