// The thin map lookup (drivers/lvm/thin-map.ts) on a REAL, live thin pool in the lab guest: the
// mappings read in-process from the pool's held metadata snapshot (thin-metadata.ts, the addon's
// O_DIRECT reads) must equal what thin_dump reads from the same snapshot, for a device with a
// multi-level mapping tree, a thin snapshot sharing its blocks, and blocks written a moment
// before the lookup (not yet committed by the pool: reserve_metadata_snap commits them). The
// snapshot is released after every lookup, and a copy made with the map is the source, byte for
// byte, on a fresh thin LV. Formats the disk whose serial is cblab-pv0; runs only in the lab.
import { constants as fsc } from 'node:fs';
import { open } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { runChecked } from '../../drivers/lvm/lvm-runner.js';
import { parseThinDumpXml, thinDumpArgv, type ThinDeviceMap } from '../../drivers/lvm/thin-map-commands.js';
import { thinDumpRunner, thinDeviceMap } from '../../drivers/lvm/thin-map.js';
import { checksum, copy, dmMessage } from '../../src/native/index.js';
import { pattern, sh, writeAt } from './lab-io.js';

const inLab = process.env.CINDERBLOCK_LAB === '1' && Boolean(process.env.CBLAB_DISKS);
const DISK = (process.env.CBLAB_DISKS ?? '').split(' ')[0] ?? '';
const VG = 'cbthinmap';
const POOL_NAME = `${VG}-pool-tpool`;
const META = `/dev/mapper/${VG}-pool_tmeta`;
const MiB = 1024 ** 2;
const KiB = 1024;
const SIZE = 512 * MiB;
const dev = (lv: string) => `/dev/${VG}/${lv}`;

/** The device's map as thin_dump reads it from a snapshot held for it: the reference. */
async function thinDumpMap(lv: string): Promise<ThinDeviceMap> {
  const devId = Number(sh(['lvs', '--noheadings', '-o', 'thin_id', `${VG}/${lv}`]).trim());
  await dmMessage(POOL_NAME, 'reserve_metadata_snap');
  try {
    return parseThinDumpXml((await runChecked(thinDumpRunner, thinDumpArgv(META, devId))).stdout, devId);
  } finally {
    await dmMessage(POOL_NAME, 'release_metadata_snap');
  }
}

/** `dmsetup status` of a pool: `0 LEN thin-pool TRANSACTION META_USED/TOTAL DATA_USED/TOTAL HELD_ROOT ...`, '-' when none is held. */
const heldRoot = (): string => sh(['dmsetup', 'status', POOL_NAME]).trim().split(/\s+/)[6]!;

/** Writes without O_DSYNC or a flush: the pool has not necessarily committed the mapping yet. */
async function writeUnflushed(device: string, offset: number, data: Buffer): Promise<void> {
  const fh = await open(device, fsc.O_WRONLY);
  try {
    await fh.write(data, 0, data.length, offset);
  } finally {
    await fh.close();
  }
}

describe.runIf(inLab)('thin map lookup on a live pool (lab)', () => {
  beforeAll(async () => {
    sh(['pvcreate', '-ff', '-y', DISK]);
    sh(['vgcreate', VG, DISK]);
    sh(['lvcreate', '-q', '-y', '-L', '3G', '--chunksize', '64k', '-T', `${VG}/pool`]);
    sh(['lvcreate', '-q', '-y', '-V', `${SIZE / MiB}M`, '-T', `${VG}/pool`, '-n', 'src']);
    // 1 MiB every 10 MiB (runs of 16 pool blocks), then 600 lone 64 KiB blocks spread over the
    // rest: ~1000 mappings, more than one b-tree leaf holds, so the tree has internal nodes.
    for (let off = 0; off < 256 * MiB; off += 10 * MiB) await writeAt(dev('src'), off, pattern(`run-${off}`, MiB));
    for (let i = 0; i < 600; i++) await writeAt(dev('src'), 256 * MiB + ((i * 7919) % 4000) * 64 * KiB, pattern(`lone-${i}`, 4 * KiB));
    await writeAt(dev('src'), SIZE - MiB + 60 * KiB, pattern('tail', 4 * KiB));
  }, 600_000);

  afterAll(() => {
    sh(['vgremove', '-f', VG]);
  });

  it('reads the same map as thin_dump, in-process, and releases the metadata snapshot', async () => {
    const mine = await thinDeviceMap(dev('src'));
    expect(mine?.readBy).toBe('metadata');
    const ref = await thinDumpMap('src');
    expect(mine!.extents).toEqual(ref.extents);
    expect(mine!.blockBytes).toBe(64 * KiB);
    // the runs of the first half, and lone blocks after them
    expect(mine!.extents[0]).toEqual([0, MiB]);
    expect(mine!.extents.length).toBeGreaterThan(600);
    expect(heldRoot()).toBe('-');
  });

  it('a thin snapshot sharing the blocks, and the origin after it breaks sharing: each as thin_dump reads it', async () => {
    sh(['lvcreate', '-q', '-y', '-s', '-n', 'snap', `${VG}/src`]);
    sh(['lvchange', '-q', '-a', 'y', '-K', `${VG}/snap`]);
    await writeAt(dev('src'), 300 * MiB, pattern('after-snap', MiB));
    const [s, o] = [await thinDeviceMap(dev('snap')), await thinDeviceMap(dev('src'))];
    expect(s!.extents).toEqual((await thinDumpMap('snap')).extents);
    expect(o!.extents).toEqual((await thinDumpMap('src')).extents);
    expect(o!.mappedBytes).toBeGreaterThan(s!.mappedBytes);
  });

  it('blocks written a moment ago without a flush are in the map (the reserve commits them)', async () => {
    sh(['lvcreate', '-q', '-y', '-V', '256M', '-T', `${VG}/pool`, '-n', 'fresh']);
    expect((await thinDeviceMap(dev('fresh')))!.extents).toEqual([]);
    await writeUnflushed(dev('fresh'), 100 * MiB, pattern('unflushed', 64 * KiB));
    expect((await thinDeviceMap(dev('fresh')))!.extents).toEqual([[100 * MiB, 64 * KiB]]);
    // and again after more writes: nothing read before is served stale
    await writeUnflushed(dev('fresh'), 3 * MiB, pattern('unflushed-2', 64 * KiB));
    expect((await thinDeviceMap(dev('fresh')))!.extents).toEqual([
      [3 * MiB, 64 * KiB],
      [100 * MiB, 64 * KiB],
    ]);
    expect(heldRoot()).toBe('-');
  });

  it('a metadata snapshot someone else holds: the lookup fails (EBUSY) and leaves theirs alone', async () => {
    await dmMessage(POOL_NAME, 'reserve_metadata_snap');
    try {
      await expect(thinDeviceMap(dev('src'))).rejects.toThrow(/busy/);
      expect(heldRoot()).not.toBe('-');
    } finally {
      await dmMessage(POOL_NAME, 'release_metadata_snap');
    }
  });

  it('a copy to a fresh thin LV with the map reads only mapped blocks and is the source byte for byte', async () => {
    sh(['lvcreate', '-q', '-y', '-V', `${SIZE / MiB}M`, '-T', `${VG}/pool`, '-n', 'dst']);
    const map = (await thinDeviceMap(dev('src')))!;
    const r = await copy(dev('src'), dev('dst'), { length: SIZE, destinationIsZeroed: true, sync: true, sourceExtents: map.extents });
    // what the map says is unmapped was never read: the engine counts it as holes skipped
    expect(r.bytesSkippedHoles).toBe(SIZE - map.mappedBytes);
    expect(r.bytesWritten).toBeLessThanOrEqual(map.mappedBytes);
    expect(await checksum(dev('dst'), { length: SIZE })).toBe(await checksum(dev('src'), { length: SIZE }));
  }, 300_000);
});
