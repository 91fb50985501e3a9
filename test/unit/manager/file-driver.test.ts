// The file pool driver on its own: names, snapshots/clones by copy and by (injected) reflink,
// extend, revert in place, manage.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileVolumeDriver, type FilePoolOptions } from '../../../drivers/file/file-driver.js';
import { assertSafeName } from '../../../drivers/file/names.js';
import type { DriverSnapshot, DriverVolume } from '../../../drivers/driver.js';

const GiB = 1024 ** 3;
const vol = (id: string, size = 1): DriverVolume => ({ id, name: `volume-${id}`, size, providerLocation: null, providerAuth: null, multiattach: false });
const snap = (id: string, v: DriverVolume): DriverSnapshot => ({ id, name: `snapshot-${id}`, volumeId: v.id, volumeName: v.name, volumeSize: v.size, providerLocation: null });

async function writeAt(path: string, offset: number, text: string): Promise<void> {
  const fh = await open(path, 'r+');
  await fh.write(Buffer.from(text), 0, text.length, offset);
  await fh.close();
}
async function readAt(path: string, offset: number, len: number): Promise<string> {
  const fh = await open(path, 'r');
  const b = Buffer.alloc(len);
  await fh.read(b, 0, len, offset);
  await fh.close();
  return b.toString();
}

describe('file pool driver', () => {
  let dir: string;
  const base = (extra: Partial<FilePoolOptions> = {}): FilePoolOptions => ({
    directory: dir,
    backendName: 'file',
    hostname: 'h',
    reservedPercentage: 0,
    maxOverSubscriptionRatio: 20,
    storageProtocol: 'iSCSI',
    filterFunction: null,
    goodnessFunction: null,
    ...extra,
  });

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cb-filedrv-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses names with path separators, dot-dot or shell metacharacters', async () => {
    for (const bad of ['../etc/passwd', 'a/b', 'volume-$(reboot)', 'v;rm -rf', '..', '', 'a b', 'x`id`', '.hidden']) {
      expect(() => assertSafeName(bad), bad).toThrow(/unsafe/);
    }
    const d = new FileVolumeDriver(base());
    await d.doSetup();
    await expect(d.createVolume({ ...vol('x'), name: '../../tmp/evil' })).rejects.toThrow(/unsafe/);
    await expect(d.createSnapshot({ ...snap('s', vol('x')), name: 'snapshot-a/../../b' })).rejects.toThrow(/unsafe/);
    await expect(d.createVolume({ ...vol('y'), size: 1.5 })).rejects.toThrow(/whole number/);
  });

  it('snapshot, clone, volume from snapshot and revert by copy keep data and sparseness', async () => {
    const d = new FileVolumeDriver(base({ probeReflink: async () => false }));
    await d.doSetup();
    expect(d.usesReflink).toBe(false);
    const v = vol('a', 1);
    await d.createVolume(v);
    await writeAt(d.localPath(v), 10 * 1024 * 1024, 'HELLO');
    const s = snap('s1', v);
    await d.createSnapshot(s);
    expect((await stat(join(dir, 'snapshot-s1'))).size).toBe(GiB);
    // sparse: only the written block is allocated
    expect((await stat(join(dir, 'snapshot-s1'))).blocks * 512).toBeLessThan(8 * 1024 * 1024);
    await writeAt(d.localPath(v), 10 * 1024 * 1024, 'WORLD');
    const fromSnap = vol('b', 2);
    await d.createVolumeFromSnapshot(fromSnap, s);
    expect((await stat(d.localPath(fromSnap))).size).toBe(2 * GiB);
    expect(await readAt(d.localPath(fromSnap), 10 * 1024 * 1024, 5)).toBe('HELLO');
    const clone = vol('c', 1);
    await d.createClonedVolume(clone, v);
    expect(await readAt(d.localPath(clone), 10 * 1024 * 1024, 5)).toBe('WORLD');
    const inode = (await stat(d.localPath(v))).ino;
    await d.revertToSnapshot(v, s);
    expect(await readAt(d.localPath(v), 10 * 1024 * 1024, 5)).toBe('HELLO');
    expect((await stat(d.localPath(v))).ino).toBe(inode);
    await d.deleteSnapshot(s);
    await d.deleteSnapshot(s); // gone already: fine
    await expect(stat(join(dir, 'snapshot-s1'))).rejects.toThrow();
  });

  it('uses the reflink when the probe says the filesystem can', async () => {
    const clones: Array<[string, string | number]> = [];
    const d = new FileVolumeDriver(
      base({
        probeReflink: async () => true,
        clone: async (src, dst) => {
          clones.push([src, dst]);
          if (typeof dst === 'string') await writeFile(dst, await readFile(src));
        },
      }),
    );
    await d.doSetup();
    const v = vol('r', 1);
    await writeFile(d.localPath(v), 'data');
    await d.createSnapshot(snap('rs', v));
    expect(clones).toEqual([[d.localPath(v), join(dir, 'snapshot-rs')]]);
  });

  it('copy falls back to the JavaScript copy only when the addon is missing, not on any TypeError', async () => {
    const d = new FileVolumeDriver(base());
    const dst = join(dir, 'dst');
    await writeFile(dst, Buffer.alloc(4096));
    // An argument the engine refuses is a bug to report, not a reason to copy some other way.
    await expect(d.copyData(123 as unknown as string, dst, 4096)).rejects.toThrow(/^source must be a path/);
  });

  it('extend grows, never shrinks; manage_existing renames and sizes', async () => {
    const d = new FileVolumeDriver(base());
    await d.doSetup();
    const v = vol('e', 1);
    await d.createVolume(v);
    await d.extendVolume(v, 3);
    expect((await stat(d.localPath(v))).size).toBe(3 * GiB);
    await expect(d.extendVolume(v, 2)).rejects.toThrow(/shrink/);
    await writeFile(join(dir, 'old-disk'), Buffer.alloc(100));
    expect(await d.manageExistingGetSize({ 'source-name': 'old-disk' })).toBe(1);
    await expect(d.manageExistingGetSize({ 'source-name': '../x' })).rejects.toThrow(/unsafe/);
    const m = vol('m', 1);
    await d.manageExisting(m, { 'source-name': 'old-disk' });
    expect((await stat(d.localPath(m))).size).toBe(GiB);
  });
  it('lists its files for the manageable listings and adopts a file as a snapshot; an unsafe reference is refused', async () => {
    const d = new FileVolumeDriver(base());
    await d.doSetup();
    await d.createVolume(vol('a', 1));
    await writeFile(join(dir, 'foreign'), Buffer.alloc(10));
    await writeFile(join(dir, '.partial'), '');
    const list = (await d.listBackendObjects()).sort((x, y) => x.name.localeCompare(y.name));
    expect(list).toEqual([
      { name: 'foreign', cinderName: 'foreign', size: 1, inUse: false, isSnapshot: false, origin: null },
      { name: 'volume-a', cinderName: 'volume-a', size: 1, inUse: false, isSnapshot: false, origin: null },
    ]);
    const s = snap('s1', vol('a', 1));
    expect(await d.manageExistingSnapshotGetSize({ 'source-name': 'foreign' })).toBe(1);
    await d.manageExistingSnapshot(s, { 'source-name': 'foreign' });
    expect((await stat(join(dir, 'snapshot-s1'))).size).toBe(10);
    expect((await d.listBackendObjects()).find((o) => o.name === 'snapshot-s1')).toMatchObject({ isSnapshot: true });
    await expect(d.manageExistingSnapshot(s, { 'source-name': '../etc/passwd' })).rejects.toThrow(/unsafe/);
  });
  it('copyData skips zero runs only on a file it emptied; any other destination gets every byte', async () => {
    const calls: Array<[string, boolean | undefined]> = [];
    const d = new FileVolumeDriver(base({ copy: async (_s, dst, _b, zeroed) => void calls.push([dst, zeroed]) }));
    const src = join(dir, 'src');
    const dstFile = join(dir, 'dst');
    await writeFile(src, 'x');
    await writeFile(dstFile, 'stale');
    await d.copyData(src, dstFile, 1);
    // a character device stands in for a block device of another pool (a migration's LV)
    await d.copyData(src, '/dev/null', 1);
    expect(calls).toEqual([[dstFile, true], ['/dev/null', false]]);
  });
});
