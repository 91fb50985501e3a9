// LVMVolumeDriver behaviour on the in-memory LVM (fake-lvm.ts): the commands each operation runs
// (compared with cinder's argv), the cinder errors, volume_clear through the injected zero-out,
// and the capability report compared with what cinder-volume sent the scheduler.
import { readFileSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import type { DriverSnapshot, DriverVolume } from '../../../drivers/driver.js';
import { AllocationGate } from '../../../src/concurrency/allocation-gate.js';
import { LvmVolumeDriver, mirrorFreeSpace, nativeBlockDeviceOps, type BlockDeviceOps, type LvmDriverOptions, type LvmType } from '../../../drivers/lvm/lvm-driver.js';
import type { VolumeCopyOptions } from '../../../drivers/lvm/volume-copy.js';
import { FakeLvm } from './fake-lvm.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const VG = 'cinder-volumes';
const sharedDir = process.env.CINDERBLOCK_SHARED ?? new URL('../../../../shared', import.meta.url).pathname;

function vol(id: string, size = 1): DriverVolume {
  return { id, name: `volume-${id}`, size, providerLocation: null, providerAuth: null, multiattach: false };
}

function snap(id: string, v: DriverVolume): DriverSnapshot {
  return { id, name: `snapshot-${id}`, volumeId: v.id, volumeName: v.name, volumeSize: v.size, providerLocation: null };
}

interface Harness {
  fake: FakeLvm;
  driver: LvmVolumeDriver;
  zeroed: [string, number, number][];
  copies: [string, string, VolumeCopyOptions][];
  devices: Set<string>;
}

function harness(lvmType: LvmType, opts: Partial<LvmDriverOptions> & { pvSizes?: number[]; prepare?: (f: FakeLvm) => void } = {}): Harness {
  const fake = new FakeLvm(VG, opts.pvSizes ?? [10 * GiB]);
  opts.prepare?.(fake);
  const zeroed: [string, number, number][] = [];
  const copies: [string, string, VolumeCopyOptions][] = [];
  const devices = new Set<string>();
  const blockDevice: BlockDeviceOps = {
    zeroOut: async (d, o, l) => void zeroed.push([d, o, l]),
    // every active LV has its node; a thick snapshot also its -cow node
    exists: async (p) => {
      if (devices.has(p)) return true;
      for (const lv of fake.lvs.values()) {
        const node = `/dev/mapper/${VG.replace(/-/g, '--')}-${lv.name.replace(/-/g, '--')}`;
        if (lv.active && (p === node || (lv.kind === 'snapshot' && p === `${node}-cow`))) return true;
      }
      return false;
    },
    // what the kernel would say: /dev/<vg>/<lv> resolves to the LV's dm device while it is active
    dmNameOf: async (p) => {
      for (const lv of fake.lvs.values()) {
        if (lv.active && p === `/dev/${VG}/${lv.name}`) return `${VG.replace(/-/g, '--')}-${lv.name.replace(/-/g, '--')}`;
      }
      return null;
    },
    size: async (p) => {
      for (const lv of fake.lvs.values()) {
        const node = `/dev/mapper/${VG.replace(/-/g, '--')}-${lv.name.replace(/-/g, '--')}`;
        if (p === node || p === `${node}-cow`) return lv.sizeBytes;
      }
      return 0;
    },
  };
  const driver = new LvmVolumeDriver({
    volumeGroup: VG,
    lvmType,
    backendName: 'lvm',
    hostname: 'vm',
    runner: fake.runner,
    blockDevice,
    copy: async (s, d, o) => void copies.push([s, d, o]),
    sleep: async () => undefined,
    ...opts,
  });
  return { fake, driver, zeroed, copies, devices };
}

async function ready(h: Harness): Promise<Harness> {
  await h.driver.doSetup();
  await h.driver.checkForSetupError();
  h.fake.calls.length = 0;
  return h;
}

describe('set-up and lvm_type', () => {
  it('default: nothing created', async () => {
    const h = await ready(harness('default'));
    expect(h.driver.lvmType).toBe('default');
    expect(h.fake.lvs.size).toBe(0);
  });

  it('auto on an empty VG: thin, pool of 95% of the free space created and activated', async () => {
    const h = harness('auto', { pvSizes: [3 * GiB] });
    await h.driver.doSetup();
    await h.driver.checkForSetupError();
    expect(h.driver.lvmType).toBe('thin');
    expect(h.fake.changes).toEqual([
      'lvcreate -T -L 2.8499999999999996g cinder-volumes/cinder-volumes-pool',
      'lvchange -a y --yes -K cinder-volumes/cinder-volumes-pool',
    ]);
  });

  it('auto with LVs and no pool: default, nothing created', async () => {
    const h = harness('auto', { prepare: (f) => void f.addLv({ name: 'volume-old', sizeBytes: GiB }) });
    await h.driver.checkForSetupError();
    expect(h.driver.lvmType).toBe('default');
    expect(h.fake.changes).toEqual([]);
  });

  it('auto with an existing pool (cinder made it): thin, the pool reused', async () => {
    const h = harness('auto', {
      prepare: (f) => {
        f.addLv({ name: 'cinder-volumes-pool', sizeBytes: 9 * GiB, kind: 'pool' });
        f.addLv({ name: 'volume-old', sizeBytes: GiB, kind: 'thin', pool: 'cinder-volumes-pool' });
      },
    });
    await h.driver.checkForSetupError();
    expect(h.driver.lvmType).toBe('thin');
    expect(h.fake.changes).toEqual(['lvchange -a y --yes -K cinder-volumes/cinder-volumes-pool']);
  });

  it('auto on LVM without thin support: default', async () => {
    const h = harness('auto', { prepare: (f) => void (f.version = '2.02.90(2) (2011-11-11)') });
    await h.driver.checkForSetupError();
    expect(h.driver.lvmType).toBe('default');
  });

  it('thin on LVM without thin support refuses to start', async () => {
    const h = harness('thin', { prepare: (f) => void (f.version = '2.02.90(2) (2011-11-11)') });
    await expect(h.driver.checkForSetupError()).rejects.toMatchObject({
      className: 'VolumeBackendAPIException',
      message: expect.stringContaining('Thin provisioning not supported on this version of LVM.'),
    });
  });

  it('thin with a pool that cannot be created refuses to start, quoting LVM', async () => {
    const h = harness('thin');
    h.fake.inject((a) => a[0] === 'lvcreate', { stderr: "  Can't create thin-pool without using device-mapper kernel driver.\n" });
    await expect(h.driver.checkForSetupError()).rejects.toMatchObject({
      className: 'VolumeBackendAPIException',
      message: expect.stringContaining('Failed to create thin pool, error message was:   Can\'t create thin-pool'),
    });
  });

  it('a missing VG stops start-up', async () => {
    const h = harness('default');
    h.fake.vgExists = false;
    await expect(h.driver.doSetup()).rejects.toMatchObject({ className: 'VolumeBackendAPIException', message: expect.stringContaining('Volume Group cinder-volumes does not exist') });
    await expect(h.driver.checkForSetupError()).rejects.toMatchObject({ className: 'VolumeBackendAPIException' });
  });

  it('operations before checkForSetupError are a programming error', async () => {
    const h = harness('default');
    await expect(h.driver.createVolume(vol('a'))).rejects.toThrow(/before checkForSetupError/);
  });
});

describe('activateForExport asks the kernel, not lvs', () => {
  it('a path resolving to another dm device (a stale link) is not taken for the LV: activated', async () => {
    const h = await ready(harness('default'));
    const v = vol('0b0b0b0b-0000-4000-8000-000000000001');
    await h.driver.createVolume(v);
    const ops = (h.driver as unknown as { blockDevice: BlockDeviceOps }).blockDevice;
    (h.driver as unknown as { blockDevice: BlockDeviceOps }).blockDevice = { ...ops, dmNameOf: async () => 'cinder--volumes-volume--someone--else' };
    await h.driver.activateForExport(v);
    expect(h.fake.changes.at(-1)).toBe(`lvchange -a y --yes -K cinder-volumes/${v.name}`);
  });

  it('the native probe says null for a path that is absent or not device-mapper', async () => {
    expect(await nativeBlockDeviceOps.dmNameOf('/dev/null')).toBeNull();
    expect(await nativeBlockDeviceOps.dmNameOf('/dev/cinder-volumes/volume-absent')).toBeNull();
  });
});

describe('volumes (thick)', () => {
  it('create, extend, export: the argv cinder ran (lvm_commands_observed.log 19:30:15–19:30:20)', async () => {
    const h = await ready(harness('default'));
    const v = vol('9531a336-8b9f-4724-9d8d-d83f99b240e6');
    await h.driver.createVolume(v);
    await h.driver.extendVolume(v, 2);
    // active, and its path is its dm device: cinder's no-op lvchange is not run, nor an lvs
    expect(await h.driver.activateForExport(v)).toBe(`/dev/${VG}/${v.name}`);
    expect(h.fake.changes).toEqual([`lvcreate -n ${v.name} cinder-volumes -L 1g`, `lvextend -L 2g cinder-volumes/${v.name}`]);
    // inactive (a reboot with activation off, say): activated as cinder does
    [...h.fake.lvs.values()].find((lv) => lv.name === v.name)!.active = false;
    expect(await h.driver.activateForExport(v)).toBe(`/dev/${VG}/${v.name}`);
    expect(h.fake.changes.slice(2)).toEqual([`lvchange -a y --yes -K cinder-volumes/${v.name}`]);
  });

  it('mirrors', async () => {
    const h = await ready(harness('default', { lvmMirrors: 1, pvSizes: [2000 * GiB, 2000 * GiB] }));
    await h.driver.createVolume(vol('m', 1536));
    expect(h.fake.changes).toEqual(['lvcreate -n volume-m cinder-volumes -L 1536g --type=mirror -m 1 --nosync --mirrorlog mirrored -R 2']);
  });

  it('delete: absent is success with no command', async () => {
    const h = await ready(harness('default'));
    await h.driver.deleteVolume(vol('gone'));
    expect(h.fake.changes).toEqual([]);
  });

  it('delete with snapshots is VolumeIsBusy and removes nothing', async () => {
    const h = await ready(harness('default'));
    const v = vol('a');
    await h.driver.createVolume(v);
    await h.driver.createSnapshot(snap('s', v));
    await expect(h.driver.deleteVolume(v)).rejects.toMatchObject({
      className: 'VolumeIsBusy',
      message: 'deleting volume volume-a that has snapshot',
      kwargs: { volume_name: 'volume-a' },
    });
    expect(h.fake.lvs.has('volume-a')).toBe(true);
  });

  it('delete with volume_clear=zero zeroes the whole LV through BLKZEROOUT, then lvremove', async () => {
    const h = await ready(harness('default'));
    const v = vol('a-b', 2);
    await h.driver.createVolume(v);
    h.fake.calls.length = 0;
    await h.driver.deleteVolume(v);
    expect(h.zeroed).toEqual([['/dev/mapper/cinder--volumes-volume--a--b', 0, 2 * GiB]]);
    expect(h.fake.changes).toEqual(["lvremove --config activation { retry_deactivation = 1}  -f cinder-volumes/volume-a-b"]);
  });

  it('volume_clear_size limits the zeroing (MiB)', async () => {
    const h = await ready(harness('default', { volumeClearSize: 100 }));
    await h.driver.createVolume(vol('a'));
    await h.driver.deleteVolume(vol('a'));
    expect(h.zeroed).toEqual([['/dev/mapper/cinder--volumes-volume--a', 0, 100 * MiB]]);
  });

  it('volume_clear=none skips zeroing', async () => {
    const h = await ready(harness('default', { volumeClear: 'none' }));
    await h.driver.createVolume(vol('a'));
    await h.driver.deleteVolume(vol('a'));
    expect(h.zeroed).toEqual([]);
    expect(h.fake.lvs.size).toBe(0);
  });

  it('an inactive LV cannot be cleared: VolumeBackendAPIException, as cinder', async () => {
    const h = await ready(harness('default'));
    await h.driver.createVolume(vol('a'));
    h.fake.lvs.get('volume-a')!.active = false;
    await expect(h.driver.deleteVolume(vol('a'))).rejects.toMatchObject({
      className: 'VolumeBackendAPIException',
      message: expect.stringContaining('Volume device file path /dev/mapper/cinder--volumes-volume--a does not exist.'),
    });
    expect(h.fake.lvs.has('volume-a')).toBe(true);
  });

  it('an unknown volume_clear is InvalidConfigurationValue', async () => {
    const h = await ready(harness('default', { volumeClear: 'shred' }));
    await h.driver.createVolume(vol('a'));
    await expect(h.driver.deleteVolume(vol('a'))).rejects.toMatchObject({ className: 'InvalidConfigurationValue' });
  });
});

describe('snapshots (thick)', () => {
  it('snapshot after extend: -L is the origin size as lvs prints it (log 19:31:20–19:31:24)', async () => {
    const h = await ready(harness('default'));
    const v = vol('03d54be5-6dac-474f-b4fc-17c42c96abe6');
    await h.driver.createVolume(v);
    await h.driver.extendVolume(v, 2);
    await h.driver.createSnapshot(snap('10c612be-b345-4cc4-aea6-c2eff1b586b9', { ...v, size: 2 }));
    expect(h.fake.changes.at(-1)).toBe(
      `lvcreate --name _snapshot-10c612be-b345-4cc4-aea6-c2eff1b586b9 --snapshot cinder-volumes/${v.name} -L 2.00g`,
    );
  });

  it('delete snapshot clears its -cow device for volume_size GiB, then removes the escaped LV', async () => {
    const h = await ready(harness('default'));
    const v = vol('a');
    await h.driver.createVolume(v);
    const s = snap('s-1', v);
    await h.driver.createSnapshot(s);
    h.fake.calls.length = 0;
    await h.driver.deleteSnapshot(s);
    expect(h.zeroed).toEqual([['/dev/mapper/cinder--volumes-_snapshot--s--1-cow', 0, GiB]]);
    expect(h.fake.changes).toEqual(["lvremove --config activation { retry_deactivation = 1}  -f cinder-volumes/_snapshot-s-1"]);
  });

  it('delete of an absent snapshot is success', async () => {
    const h = await ready(harness('default'));
    await h.driver.deleteSnapshot(snap('x', vol('a')));
    expect(h.fake.changes).toEqual([]);
  });

  it('extend of a volume with a snapshot deactivates around lvextend', async () => {
    const h = await ready(harness('default'));
    const v = vol('a');
    await h.driver.createVolume(v);
    await h.driver.createSnapshot(snap('s', v));
    h.fake.calls.length = 0;
    await h.driver.extendVolume(v, 3);
    expect(h.fake.changes).toEqual([
      'lvchange -a n cinder-volumes/volume-a',
      'lvextend -L 3g cinder-volumes/volume-a',
      'lvchange -a y --yes -K cinder-volumes/volume-a',
    ]);
  });

  it('volume from snapshot: new LV, snapshot activated, copy of volume_size GiB (not sparse)', async () => {
    const h = await ready(harness('default', { volumeDdBlocksize: '4M' }));
    const v = vol('a');
    await h.driver.createVolume(v);
    const s = snap('s', v);
    await h.driver.createSnapshot(s);
    h.fake.calls.length = 0;
    await h.driver.createVolumeFromSnapshot(vol('b', 2), s);
    expect(h.fake.changes).toEqual(['lvcreate -n volume-b cinder-volumes -L 2g', 'lvchange -a y --yes -K cinder-volumes/_snapshot-s']);
    expect(h.copies).toEqual([[
      '/dev/mapper/cinder--volumes-_snapshot--s', '/dev/mapper/cinder--volumes-volume--b',
      { sizeBytes: GiB, sparse: false, blocksize: '4M', sync: false },
    ]]);
  });

  it('clone: temporary clone-snap-<id>, new LV, copy, temporary snapshot cleared and removed', async () => {
    const h = await ready(harness('default'));
    const src = vol('src', 1);
    await h.driver.createVolume(src);
    h.fake.calls.length = 0;
    await h.driver.createClonedVolume(vol('new'), src);
    expect(h.fake.changes).toEqual([
      'lvcreate --name clone-snap-new --snapshot cinder-volumes/volume-src -L 1.00g',
      'lvcreate -n volume-new cinder-volumes -L 1g',
      'lvchange -a y --yes -K cinder-volumes/clone-snap-new',
      "lvremove --config activation { retry_deactivation = 1}  -f cinder-volumes/clone-snap-new",
    ]);
    expect(h.copies).toEqual([['/dev/mapper/cinder--volumes-clone--snap--new', '/dev/mapper/cinder--volumes-volume--new', expect.objectContaining({ sizeBytes: GiB })]]);
    expect(h.zeroed).toEqual([['/dev/mapper/cinder--volumes-clone--snap--new-cow', 0, GiB]]);
    expect([...h.fake.lvs.keys()].sort()).toEqual(['volume-new', 'volume-src']);
  });

  it('clone: a failed copy still removes the temporary snapshot', async () => {
    const h = harness('default', { copy: async () => { throw new Error('copy broke'); } });
    await ready(h);
    const src = vol('src');
    await h.driver.createVolume(src);
    await expect(h.driver.createClonedVolume(vol('new'), src)).rejects.toThrow('copy broke');
    expect(h.fake.lvs.has('clone-snap-new')).toBe(false);
  });

  it('revert with volume_clear=none: merge, deactivate, activate, re-create the snapshot (cinder exactly)', async () => {
    const h = await ready(harness('default', { volumeClear: 'none' }));
    const v = vol('a');
    await h.driver.createVolume(v);
    const s = snap('s', v);
    await h.driver.createSnapshot(s);
    h.fake.calls.length = 0;
    await h.driver.revertToSnapshot(v, s);
    expect(h.fake.changes).toEqual([
      'lvconvert --merge cinder-volumes/_snapshot-s',
      'lvchange -a n cinder-volumes/volume-a',
      'lvchange -a y --yes -K cinder-volumes/volume-a',
      'lvcreate --name _snapshot-s --snapshot cinder-volumes/volume-a -L 1.00g',
    ]);
    expect(h.fake.lvs.has('_snapshot-s')).toBe(true);
    expect(h.zeroed).toEqual([]);
  });
});

const PVSEG = 'pvs --reportformat json --units b --nosuffix --segments -o pv_name,pv_uuid,pe_start,vg_extent_size,pvseg_start,pvseg_size,lv_name,lv_uuid,seg_start_pe --select vg_name=cinder-volumes';
const REMOVE = (lv: string): string => `lvremove --config activation { retry_deactivation = 1}  -f cinder-volumes/${lv}`;
/** The fake's first PV uuid as a tag carries it, and the record of the snapshot 's' of volume-a (extents 256-511). */
const PV0 = 'FAKEPV00000000000000000000000000';
const TAG = `cinderblock_wipe_${PV0}_256+256`;
const ADDTAG = (tag = TAG, lv = 'volume-a'): string => `lvchange --addtag ${tag} cinder-volumes/${lv}`;
const DELTAG = (tag = TAG, lv = 'volume-a'): string => `lvchange --deltag ${tag} cinder-volumes/${lv}`;

/** A logger that keeps what was logged (level, fields, message). */
function capturingLogger(): { logger: LvmDriverOptions['logger']; lines: { level: string; obj: Record<string, unknown>; msg: string }[] } {
  const lines: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
  const at = (level: string) => (obj: unknown, msg?: string) => {
    if (typeof obj === 'string') lines.push({ level, obj: {}, msg: obj });
    else lines.push({ level, obj: (obj ?? {}) as Record<string, unknown>, msg: msg ?? '' });
  };
  const logger = { trace: at('trace'), debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), fatal: at('fatal') };
  return { logger: logger as unknown as LvmDriverOptions['logger'], lines };
}

describe('revert (thick): the extents the merge frees are zeroed before anything else gets them', () => {
  async function withSnapshot(opts: Partial<LvmDriverOptions> & { pvSizes?: number[] } = {}) {
    const h = await ready(harness('default', opts));
    const v = vol('a');
    await h.driver.createVolume(v);
    const s = snap('s', v);
    await h.driver.createSnapshot(s);
    h.fake.calls.length = 0;
    return { h, v, s };
  }

  it('records the exception store\'s extents, merges, holds them in a wipe LV, zeroes it whole, removes it, re-creates the snapshot', async () => {
    const { h, v, s } = await withSnapshot();
    expect(h.fake.segs.get('_snapshot-s')).toEqual([{ pv: '/dev/vda', start: 256, count: 256, lvStart: 0 }]);
    await h.driver.revertToSnapshot(v, s);
    expect(h.fake.changes).toEqual([
      PVSEG,
      ADDTAG(),
      'lvconvert --merge cinder-volumes/_snapshot-s',
      'lvchange -a n cinder-volumes/volume-a',
      'lvchange -a y --yes -K cinder-volumes/volume-a',
      PVSEG,
      'lvcreate -Z n -W n -y -l 256 -n _cinderblock-wipe-s cinder-volumes /dev/vda:256-511',
      DELTAG(),
      REMOVE('_cinderblock-wipe-s'),
      'lvcreate --name _snapshot-s --snapshot cinder-volumes/volume-a -L 1.00g',
    ]);
    expect(h.zeroed).toEqual([['/dev/mapper/cinder--volumes-_cinderblock--wipe--s', 0, GiB]]);
    expect([...h.fake.lvs.keys()].sort()).toEqual(['_snapshot-s', 'volume-a']);
    expect(h.fake.lvs.get('volume-a')!.tags).toEqual([]);
  });

  it('volume_clear_size: only the first volume_clear_size MiB of the exception store, in whole extents', async () => {
    const { h, v, s } = await withSnapshot({ volumeClearSize: 100 });
    await h.driver.revertToSnapshot(v, s);
    expect(h.fake.changes).toContain('lvcreate -Z n -W n -y -l 25 -n _cinderblock-wipe-s cinder-volumes /dev/vda:256-280');
    expect(h.zeroed).toEqual([['/dev/mapper/cinder--volumes-_cinderblock--wipe--s', 0, 100 * MiB]]);
  });

  it('an exception store over two PVs: both ranges, in its own order', async () => {
    const { h, v, s } = await withSnapshot({ pvSizes: [1.5 * GiB, 2 * GiB] });
    expect(h.fake.segs.get('_snapshot-s')).toEqual([
      { pv: '/dev/vda', start: 256, count: 128, lvStart: 0 },
      { pv: '/dev/vdb', start: 0, count: 128, lvStart: 128 },
    ]);
    await h.driver.revertToSnapshot(v, s);
    expect(h.fake.changes).toContain('lvcreate -Z n -W n -y -l 256 -n _cinderblock-wipe-s cinder-volumes /dev/vda:256-383 /dev/vdb:0-127');
    expect(h.zeroed).toEqual([['/dev/mapper/cinder--volumes-_cinderblock--wipe--s', 0, GiB]]);
  });

  it('a merge deferred to the re-activation: waits for LVM to remove the snapshot before taking its extents', async () => {
    const { h, v, s } = await withSnapshot();
    const origin = h.fake.lvs.get('volume-a')!;
    origin.open = true;
    let reads = 0;
    let afterActivation = false;
    h.fake.afterCommand = (argv) => {
      if (argv[0] === 'lvconvert') origin.open = false; // the user let go before the deactivation
      if (argv[0] === 'lvchange' && argv[2] === 'y') afterActivation = true;
      // LVM's background poll finishes the merge a few looks later
      if (afterActivation && argv[1] === 'fullreport' && ++reads === 3) h.fake.dropLv('_snapshot-s');
    };
    // the fake finishes a deferred merge at activation; keep it pending until the poll above
    const finish = (h.fake as unknown as { finishMerge: (o: string) => void }).finishMerge;
    (h.fake as unknown as { finishMerge: (o: string) => void }).finishMerge = () => void (origin.merging = false);
    await h.driver.revertToSnapshot(v, s);
    (h.fake as unknown as { finishMerge: typeof finish }).finishMerge = finish;
    const changes = h.fake.changes;
    expect(changes.slice(0, 5)).toEqual([PVSEG, ADDTAG(), 'lvconvert --merge cinder-volumes/_snapshot-s', 'lvchange -a n cinder-volumes/volume-a', 'lvchange -a y --yes -K cinder-volumes/volume-a']);
    expect(changes).toContain('lvcreate -Z n -W n -y -l 256 -n _cinderblock-wipe-s cinder-volumes /dev/vda:256-511');
    expect(reads).toBeGreaterThanOrEqual(3);
    expect(h.zeroed).toEqual([['/dev/mapper/cinder--volumes-_cinderblock--wipe--s', 0, GiB]]);
  });

  it('a merge that does not finish in time: no wipe (logged), and the revert fails where cinder\'s would (snapshot still there)', async () => {
    const { h, v, s } = await withSnapshot({ mergeWaitMs: 0 });
    (h.fake as unknown as { finishMerge: (o: string) => void }).finishMerge = () => undefined;
    h.fake.lvs.get('volume-a')!.open = true;
    h.fake.afterCommand = (argv) => {
      if (argv[0] === 'lvconvert') h.fake.lvs.get('volume-a')!.open = false;
    };
    await expect(h.driver.revertToSnapshot(v, s)).rejects.toThrow();
    expect(h.fake.changes.some((c) => c.includes('_cinderblock-wipe-'))).toBe(false);
    expect(h.zeroed).toEqual([]);
    // the record stays on the origin: a start after the merge zeroes what is free then
    expect(h.fake.lvs.get('volume-a')!.tags).toEqual([TAG]);
  });

  it('the record (one lvchange, before the merge) names the PVs by uuid; a store over two PVs gives two tags in that one command', async () => {
    const { h, v, s } = await withSnapshot({ pvSizes: [1.5 * GiB, 2 * GiB] });
    await h.driver.revertToSnapshot(v, s);
    const PV1 = 'FAKEPV00000000000000000000000001';
    expect(h.fake.changes[1]).toBe(`lvchange --addtag cinderblock_wipe_${PV0}_256+128 --addtag cinderblock_wipe_${PV1}_0+128 cinder-volumes/volume-a`);
    expect(h.fake.changes).toContain(`lvchange --deltag cinderblock_wipe_${PV0}_256+128 --deltag cinderblock_wipe_${PV1}_0+128 cinder-volumes/volume-a`);
    expect(h.fake.lvs.get('volume-a')!.tags).toEqual([]);
  });

  it('the record is removed only once the wipe LV holds the extents (it is the record from then on)', async () => {
    const { h, v, s } = await withSnapshot();
    const seen: string[][] = [];
    h.fake.afterCommand = (argv) => {
      if (argv[0] === 'lvcreate' && argv.includes('_cinderblock-wipe-s')) seen.push([...h.fake.lvs.get('volume-a')!.tags]);
    };
    await h.driver.revertToSnapshot(v, s);
    expect(seen).toEqual([[TAG]]);
  });

  it('LVM refusing the record refuses the revert before anything is merged', async () => {
    const { h, v, s } = await withSnapshot();
    h.fake.inject((a) => a[0] === 'lvchange' && a[1] === '--addtag', {});
    await expect(h.driver.revertToSnapshot(v, s)).rejects.toThrow(/addtag/);
    expect(h.fake.changes.some((c) => c.startsWith('lvconvert'))).toBe(false);
    expect(h.fake.lvs.has('_snapshot-s')).toBe(true);
  });

  it('a merge LVM refuses (snapshot still there, nothing merging): the record is dropped and the error is cinder\'s', async () => {
    const { h, v, s } = await withSnapshot();
    h.fake.inject((a) => a[0] === 'lvconvert', { stderr: 'merge refused\n' });
    await expect(h.driver.revertToSnapshot(v, s)).rejects.toThrow(/merge refused/);
    expect(h.fake.changes.filter((c) => c.startsWith('lvchange'))).toEqual([ADDTAG(), DELTAG()]);
    expect(h.fake.lvs.get('volume-a')!.tags).toEqual([]);
  });

  it('a wipe LV that cannot be created: the record stays for start-up', async () => {
    const { h, v, s } = await withSnapshot();
    h.fake.inject((a) => a[0] === 'lvcreate' && a.includes('_cinderblock-wipe-s'), {});
    await h.driver.revertToSnapshot(v, s);
    expect(h.zeroed).toEqual([]);
    expect(h.fake.lvs.get('volume-a')!.tags).toEqual([TAG]);
  });

  it('volume_clear=none records nothing', async () => {
    const { h, v, s } = await withSnapshot({ volumeClear: 'none' });
    await h.driver.revertToSnapshot(v, s);
    expect(h.fake.changes.some((c) => c.includes('tag'))).toBe(false);
  });

  it('extents another LV took behind the driver\'s back are left alone and that LV is named; the rest is zeroed', async () => {
    const cap = capturingLogger();
    const { h, v, s } = await withSnapshot({ logger: cap.logger });
    h.fake.afterCommand = (argv) => {
      if (argv[0] === 'lvchange' && argv[2] === 'y') h.fake.addLv({ name: 'intruder', sizeBytes: 40 * MiB });
    };
    await h.driver.revertToSnapshot(v, s);
    expect(h.fake.segs.get('intruder')).toEqual([{ pv: '/dev/vda', start: 256, count: 10, lvStart: 0 }]);
    expect(h.fake.changes).toContain('lvcreate -Z n -W n -y -l 246 -n _cinderblock-wipe-s cinder-volumes /dev/vda:266-511');
    expect(h.zeroed).toEqual([['/dev/mapper/cinder--volumes-_cinderblock--wipe--s', 0, 246 * 4 * MiB]]);
    expect(cap.lines.filter((l) => l.level === 'error').map((l) => l.obj.lvs)).toEqual([['intruder']]);
  });

  it('no LV of the driver is allocated between the merge and the wipe LV', async () => {
    const { h, v, s } = await withSnapshot();
    let create: Promise<unknown> | null = null;
    h.fake.afterCommand = (argv) => {
      if (argv[0] === 'lvconvert') create = h.driver.createVolume(vol('b'));
    };
    await h.driver.revertToSnapshot(v, s);
    await create;
    const lines = h.fake.calls.map((c) => c.join(' '));
    const wipe = lines.findIndex((l) => l.includes('-n _cinderblock-wipe-s'));
    const other = lines.findIndex((l) => l.startsWith('lvcreate -n volume-b'));
    expect(wipe).toBeGreaterThan(0);
    expect(other).toBeGreaterThan(wipe);
    // so volume-b never sat on the old exception store while it held old data
    expect(h.fake.segs.get('volume-b')!.every((g) => g.start >= 512 || g.start + g.count <= 256)).toBe(true);
  });

  it('a zeroing that fails keeps the wipe LV (the extents stay held), logs, and the revert still completes', async () => {
    const { h, v, s } = await withSnapshot();
    const zeroOut = vi.fn(async () => { throw new Error('EIO'); });
    (h.driver as unknown as { blockDevice: BlockDeviceOps }).blockDevice = { ...(h.driver as unknown as { blockDevice: BlockDeviceOps }).blockDevice, zeroOut };
    await h.driver.revertToSnapshot(v, s);
    expect(zeroOut).toHaveBeenCalledTimes(1);
    expect([...h.fake.lvs.keys()].sort()).toEqual(['_cinderblock-wipe-s', '_snapshot-s', 'volume-a']);
  });

  it('an unknown volume_clear is refused before anything is merged', async () => {
    const { h, v, s } = await withSnapshot({ volumeClear: 'shred' });
    await expect(h.driver.revertToSnapshot(v, s)).rejects.toMatchObject({ className: 'InvalidConfigurationValue' });
    expect(h.fake.changes).toEqual([]);
  });
});

describe('start-up: temporary LVs of an agent that died midway', () => {
  const prepare = (f: FakeLvm): void => {
    f.addLv({ name: 'volume-a', sizeBytes: GiB });
    f.addLv({ name: 'clone-snap-new', sizeBytes: GiB, kind: 'snapshot', origin: 'volume-a' });
    f.addLv({ name: '_cinderblock-wipe-s', sizeBytes: 64 * MiB });
  };

  it('a wipe LV is zeroed whole and removed; a thick clone-snap-* has its exception store zeroed and is removed', async () => {
    const h = harness('default', { prepare });
    await h.driver.doSetup();
    await h.driver.checkForSetupError();
    expect(h.zeroed).toEqual([
      ['/dev/mapper/cinder--volumes-_cinderblock--wipe--s', 0, 64 * MiB],
      ['/dev/mapper/cinder--volumes-clone--snap--new-cow', 0, GiB],
    ]);
    expect([...h.fake.lvs.keys()]).toEqual(['volume-a']);
    expect(h.fake.changes.filter((c) => c.startsWith('lvremove'))).toEqual([REMOVE('_cinderblock-wipe-s'), REMOVE('clone-snap-new')]);
  });

  it('volume_clear_size limits the clone snapshot\'s clearing; volume_clear=none only removes', async () => {
    const h = harness('default', { prepare, volumeClearSize: 10 });
    await h.driver.doSetup();
    await h.driver.checkForSetupError();
    expect(h.zeroed).toContainEqual(['/dev/mapper/cinder--volumes-clone--snap--new-cow', 0, 10 * MiB]);
    const n = harness('default', { prepare, volumeClear: 'none' });
    await n.driver.doSetup();
    await n.driver.checkForSetupError();
    expect(n.zeroed).toEqual([]);
    expect([...n.fake.lvs.keys()]).toEqual(['volume-a']);
  });

  it('one that cannot be cleared is left in place and start-up goes on', async () => {
    const h = harness('default', { prepare });
    h.fake.inject((a) => a[0] === 'lvremove' && a[4] === 'cinder-volumes/_cinderblock-wipe-s', {}, 99);
    await h.driver.doSetup();
    await h.driver.checkForSetupError();
    expect(h.driver.lvmType).toBe('default');
    expect([...h.fake.lvs.keys()].sort()).toEqual(['_cinderblock-wipe-s', 'volume-a']);
  });

  it('nothing else is touched: volumes and snapshots stay, nothing is cleared', async () => {
    const h = harness('default', {
      prepare: (f) => {
        f.addLv({ name: 'volume-a', sizeBytes: GiB });
        f.addLv({ name: '_snapshot-x', sizeBytes: GiB, kind: 'snapshot', origin: 'volume-a' });
      },
    });
    await h.driver.doSetup();
    await h.driver.checkForSetupError();
    expect(h.zeroed).toEqual([]);
    expect(h.fake.changes).toEqual([]);
  });
});

describe('start-up: extents a revert recorded on its origin (cinderblock_wipe_* tags) and never zeroed', () => {
  /** volume-a at extents 0-255; a record of 256-511 (the merged snapshot's store, now free) on it. */
  const died = (f: FakeLvm): void => {
    f.addLv({ name: 'volume-a', sizeBytes: GiB, tags: [TAG] });
  };

  async function start(opts: Partial<LvmDriverOptions> & { prepare?: (f: FakeLvm) => void } = {}) {
    const cap = capturingLogger();
    const h = harness('default', { logger: cap.logger, ...opts });
    await h.driver.doSetup();
    await h.driver.checkForSetupError();
    return { h, lines: cap.lines };
  }

  it('the free recorded extents are taken by a wipe LV, the record dropped, the wipe LV zeroed whole and removed', async () => {
    const { h, lines } = await start({ prepare: died });
    expect(h.fake.changes).toEqual([
      PVSEG,
      'lvcreate -Z n -W n -y -l 256 -n _cinderblock-wipe-volume-a cinder-volumes /dev/vda:256-511',
      DELTAG(),
      REMOVE('_cinderblock-wipe-volume-a'),
    ]);
    expect(h.zeroed).toEqual([['/dev/mapper/cinder--volumes-_cinderblock--wipe--volume--a', 0, GiB]]);
    expect([...h.fake.lvs.keys()]).toEqual(['volume-a']);
    expect(h.fake.lvs.get('volume-a')!.tags).toEqual([]);
    expect(lines.filter((l) => l.level === 'error')).toEqual([]);
  });

  it('a merge still in progress (origin O, snapshot there): left alone, logged', async () => {
    const { h, lines } = await start({
      prepare: (f) => {
        died(f);
        f.lvs.get('volume-a')!.merging = true;
        f.addLv({ name: '_snapshot-s', sizeBytes: GiB, kind: 'snapshot', origin: 'volume-a' });
      },
    });
    expect(h.fake.changes).toEqual([]);
    expect(h.fake.lvs.get('volume-a')!.tags).toEqual([TAG]);
    expect(lines.some((l) => l.level === 'warn' && /still in progress/.test(l.msg))).toBe(true);
  });

  it('recorded extents reallocated meanwhile are left alone and the LV holding them is named in an error; the rest is zeroed', async () => {
    const { h, lines } = await start({
      prepare: (f) => {
        died(f);
        f.addLv({ name: 'volume-other-tenant', sizeBytes: 40 * MiB }); // extents 256-265
      },
    });
    expect(h.fake.changes).toContain('lvcreate -Z n -W n -y -l 246 -n _cinderblock-wipe-volume-a cinder-volumes /dev/vda:266-511');
    expect(h.zeroed).toEqual([['/dev/mapper/cinder--volumes-_cinderblock--wipe--volume--a', 0, 246 * 4 * MiB]]);
    const errors = lines.filter((l) => l.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]!.obj).toMatchObject({ origin: 'volume-a', lvs: ['volume-other-tenant'], extents: [{ lv: 'volume-other-tenant', pv: '/dev/vda', start: 256, count: 10 }] });
    expect(h.fake.lvs.get('volume-a')!.tags).toEqual([]);
  });

  it('all of them reallocated: nothing to zero, the record is dropped after the error', async () => {
    const { h, lines } = await start({
      prepare: (f) => {
        died(f);
        f.addLv({ name: 'volume-b', sizeBytes: GiB });
      },
    });
    expect(h.fake.changes).toEqual([PVSEG, DELTAG()]);
    expect(lines.filter((l) => l.level === 'error').map((l) => l.obj.lvs)).toEqual([['volume-b']]);
  });

  it('the merge never ran (the agent died between the record and lvconvert): the snapshot holds them, no error, record dropped', async () => {
    const { h, lines } = await start({
      prepare: (f) => {
        died(f);
        f.addLv({ name: '_snapshot-s', sizeBytes: GiB, kind: 'snapshot', origin: 'volume-a' });
      },
    });
    expect(h.fake.changes).toEqual([PVSEG, DELTAG()]);
    expect(h.fake.lvs.has('_snapshot-s')).toBe(true);
    expect(lines.filter((l) => l.level === 'error')).toEqual([]);
  });

  it('idempotent: a death after the wipe LV was made but before the record went (both left) zeroes the extents, no error', async () => {
    const { h, lines } = await start({
      prepare: (f) => {
        died(f);
        f.allocate('_cinderblock-wipe-s', 256, [{ pv: '/dev/vda', start: 256, count: 256 }]);
        f.addLv({ name: '_cinderblock-wipe-s', sizeBytes: GiB });
      },
    });
    expect(h.fake.changes).toEqual([
      REMOVE('_cinderblock-wipe-s'),
      PVSEG,
      'lvcreate -Z n -W n -y -l 256 -n _cinderblock-wipe-volume-a cinder-volumes /dev/vda:256-511',
      DELTAG(),
      REMOVE('_cinderblock-wipe-volume-a'),
    ]);
    expect(h.zeroed.map((z) => z[0])).toEqual(['/dev/mapper/cinder--volumes-_cinderblock--wipe--s', '/dev/mapper/cinder--volumes-_cinderblock--wipe--volume--a']);
    expect(lines.filter((l) => l.level === 'error')).toEqual([]);
    expect([...h.fake.lvs.keys()]).toEqual(['volume-a']);
  });

  it('a second death in the middle: a wipe LV that could not be created leaves the record for the next start, which finishes it', async () => {
    const first = harness('default', { prepare: died });
    first.fake.inject((a) => a[0] === 'lvcreate' && a.includes('_cinderblock-wipe-volume-a'), {});
    await first.driver.doSetup();
    await first.driver.checkForSetupError();
    expect(first.driver.lvmType).toBe('default');
    expect(first.fake.lvs.get('volume-a')!.tags).toEqual([TAG]);
    // same VG, a fresh agent
    const again = new LvmVolumeDriver({ volumeGroup: VG, lvmType: 'default', runner: first.fake.runner, blockDevice: (first.driver as unknown as { blockDevice: BlockDeviceOps }).blockDevice, sleep: async () => undefined });
    await again.doSetup();
    await again.checkForSetupError();
    expect(first.fake.lvs.get('volume-a')!.tags).toEqual([]);
    expect(first.zeroed).toEqual([['/dev/mapper/cinder--volumes-_cinderblock--wipe--volume--a', 0, GiB]]);
  });

  it('no allocation of the agent runs while start-up holds the recorded extents', async () => {
    const h = harness('default', { prepare: died });
    let create: Promise<unknown> | null = null;
    h.fake.afterCommand = (argv) => {
      if (argv[0] === 'lvcreate' && argv.includes('_cinderblock-wipe-volume-a') && !create) create = h.driver.createVolume(vol('b'));
    };
    await h.driver.doSetup();
    await h.driver.checkForSetupError();
    await create;
    const lines = h.fake.calls.map((c) => c.join(' '));
    expect(lines.findIndex((l) => l.startsWith('lvcreate -n volume-b'))).toBeGreaterThan(lines.indexOf(REMOVE('_cinderblock-wipe-volume-a')));
  });

  it('volume_clear=none: the record is dropped, nothing zeroed', async () => {
    const { h } = await start({ prepare: died, volumeClear: 'none' });
    expect(h.fake.changes).toEqual([DELTAG()]);
    expect(h.zeroed).toEqual([]);
  });

  it('a record on a PV no longer in the VG, or unreadable, is logged and dropped', async () => {
    const gone = `cinderblock_wipe_${'Z'.repeat(32)}_0+4`;
    const { h, lines } = await start({ prepare: (f) => f.addLv({ name: 'volume-a', sizeBytes: GiB, tags: [gone, 'cinderblock_wipe_garbage'] }) });
    expect(h.fake.changes).toEqual([PVSEG, `lvchange --deltag ${gone} --deltag cinderblock_wipe_garbage cinder-volumes/volume-a`]);
    expect(lines.filter((l) => l.level === 'error').map((l) => l.msg)).toEqual([
      expect.stringMatching(/PV no longer in the VG/),
      expect.stringMatching(/unreadable/),
    ]);
  });

  it('LVs cinder-volume made, and tags that are not records (an operator\'s), are left alone', async () => {
    const { h } = await start({
      prepare: (f) => {
        f.addLv({ name: 'volume-a', sizeBytes: GiB, tags: ['backup', 'cinderblock_other'] });
        f.addLv({ name: '_snapshot-x', sizeBytes: GiB, kind: 'snapshot', origin: 'volume-a' });
        f.addLv({ name: 'volume-b', sizeBytes: GiB });
      },
    });
    expect(h.fake.changes).toEqual([]);
    expect(h.zeroed).toEqual([]);
    expect(h.fake.lvs.get('volume-a')!.tags).toEqual(['backup', 'cinderblock_other']);
  });

  it('deleting a volume that carries a record zeroes the recorded extents first (the record would go with the LV)', async () => {
    const { h } = await start({ prepare: died });
    // start-up finished it already; put one back as if the merge had finished after start-up
    h.fake.lvs.get('volume-a')!.tags = [TAG];
    h.fake.calls.length = 0;
    h.zeroed.length = 0;
    await h.driver.deleteVolume(vol('a'));
    expect(h.fake.changes).toEqual([
      PVSEG,
      'lvcreate -Z n -W n -y -l 256 -n _cinderblock-wipe-volume-a cinder-volumes /dev/vda:256-511',
      DELTAG(),
      REMOVE('_cinderblock-wipe-volume-a'),
      REMOVE('volume-a'),
    ]);
    expect(h.zeroed.map((z) => z[0])).toEqual(['/dev/mapper/cinder--volumes-_cinderblock--wipe--volume--a', '/dev/mapper/cinder--volumes-volume--a']);
  });
});

describe('AllocationGate', () => {
  it('exclusive waits for running shared sections; shared ones wait for exclusive', async () => {
    const gate = new AllocationGate();
    const log: string[] = [];
    let releaseShared!: () => void;
    const s1 = gate.shared(async () => {
      log.push('s1 start');
      await new Promise<void>((r) => (releaseShared = r));
      log.push('s1 end');
    });
    const x = gate.exclusive(async () => {
      log.push('x start');
      await Promise.resolve();
      log.push('x end');
    });
    const s2 = gate.shared(async () => void log.push('s2'));
    await new Promise((r) => setTimeout(r, 5));
    expect(log).toEqual(['s1 start']);
    releaseShared();
    await Promise.all([s1, x, s2]);
    expect(log).toEqual(['s1 start', 's1 end', 'x start', 'x end', 's2']);
  });

  it('a failing section releases the gate', async () => {
    const gate = new AllocationGate();
    await expect(gate.exclusive(async () => { throw new Error('x'); })).rejects.toThrow('x');
    await expect(gate.shared(async () => 1)).resolves.toBe(1);
  });
});

describe('thin', () => {
  async function thin(): Promise<Harness> {
    return ready(harness('thin', { pvSizes: [10 * GiB] }));
  }

  it('create is a thin LV in <vg>-pool; delete never clears', async () => {
    const h = await thin();
    await h.driver.createVolume(vol('a', 5));
    await h.driver.deleteVolume(vol('a', 5));
    expect(h.fake.changes).toEqual([
      'lvcreate -T -V 5g -n volume-a cinder-volumes/cinder-volumes-pool',
      "lvremove --config activation { retry_deactivation = 1}  -f cinder-volumes/volume-a",
    ]);
    expect(h.zeroed).toEqual([]);
  });

  it('snapshot has no size; a thin origin with snapshots is not busy (attr V, as cinder)', async () => {
    const h = await thin();
    const v = vol('a');
    await h.driver.createVolume(v);
    await h.driver.createSnapshot(snap('s', v));
    expect(h.fake.changes.at(-1)).toBe('lvcreate --name _snapshot-s --snapshot cinder-volumes/volume-a');
    await h.driver.deleteVolume(v);
    expect(h.fake.lvs.has('_snapshot-s')).toBe(true);
  });

  it('volume from snapshot: thin snapshot of the snapshot, grown, both activated, the new one for good', async () => {
    const h = await thin();
    const v = vol('a', 1);
    await h.driver.createVolume(v);
    const s = snap('s', v);
    await h.driver.createSnapshot(s);
    h.fake.calls.length = 0;
    await h.driver.createVolumeFromSnapshot(vol('b', 3), s);
    expect(h.fake.changes).toEqual([
      'lvcreate --name volume-b --snapshot cinder-volumes/_snapshot-s',
      'lvextend -L 3g cinder-volumes/volume-b',
      'lvchange -a y --yes -K cinder-volumes/_snapshot-s',
      'lvchange -a y --yes -k n cinder-volumes/volume-b',
    ]);
    expect(h.copies).toEqual([]);
  });

  it('clone: thin snapshot of the source, activated with -k n', async () => {
    const h = await thin();
    await h.driver.createVolume(vol('src', 1));
    h.fake.calls.length = 0;
    await h.driver.createClonedVolume(vol('c', 1), vol('src', 1));
    expect(h.fake.changes).toEqual([
      'lvcreate --name volume-c --snapshot cinder-volumes/volume-src',
      'lvchange -a y --yes -k n cinder-volumes/volume-c',
    ]);
    expect(h.fake.lvs.get('volume-c')!.skipActivation).toBe(false);
  });

  it('revert is NotImplementedError (builtins) so the manager uses the generic revert', async () => {
    const h = await thin();
    const v = vol('a');
    await h.driver.createVolume(v);
    await expect(h.driver.revertToSnapshot(v, snap('s', v))).rejects.toMatchObject({
      className: 'NotImplementedError',
      module: 'builtins',
      message: 'Revert volume to snapshot not implemented for thin LVM.',
    });
  });
});

describe('capability report', () => {
  it('is what cinder-volume sent the scheduler for the same VG (3 GiB, empty, thick)', async () => {
    const fixture = JSON.parse(readFileSync(`${sharedDir}/cinder/fixtures/scheduler.update_service_capabilities.e2e.json`, 'utf8'));
    const sent = fixture.request.oslo_message.args.capabilities;
    // the manager adds allocated_capacity_gb and cacheable to the pool and the top-level functions
    const { allocated_capacity_gb: _a, cacheable: _c, ...pool } = sent.pools[0];
    const { filter_function: _f, goodness_function: _g, ...top } = sent;
    const h = await ready(harness('default', { pvSizes: [3 * GiB] }));
    expect(await h.driver.getVolumeStats()).toEqual({ ...top, pools: [pool] });
  });

  it('thick: provisioned = total - free; total_volumes counts snapshots', async () => {
    const h = await ready(harness('default', { pvSizes: [10 * GiB] }));
    const v = vol('a', 2);
    await h.driver.createVolume(v);
    await h.driver.createSnapshot(snap('s', v));
    const { pools: [p] } = await h.driver.getVolumeStats();
    expect(p).toMatchObject({ total_capacity_gb: 10, free_capacity_gb: 6, provisioned_capacity_gb: 4, total_volumes: 2, location_info: 'LVMVolumeDriver:vm:cinder-volumes:default:0' });
  });

  it('thin: pool size, free from data_percent, provisioned = every LV but the pool', async () => {
    const h = await ready(harness('thin', { pvSizes: [3 * GiB] }));
    await h.driver.createVolume(vol('a', 1));
    await h.driver.createVolume(vol('b', 2));
    await h.driver.createSnapshot(snap('s', vol('a', 1)));
    h.fake.lvs.get('cinder-volumes-pool')!.dataPercent = 3.43;
    const stats = await h.driver.getVolumeStats();
    const pool = h.fake.lvs.get('cinder-volumes-pool')!.sizeBytes / GiB; // 2.85 rounded up to extents
    expect(stats.sparse_copy_volume).toBe(true);
    expect(stats.pools[0]).toMatchObject({
      total_capacity_gb: Number(pool.toFixed(2)),
      free_capacity_gb: Math.round((pool - (pool / 100) * 3.43) * 100) / 100,
      provisioned_capacity_gb: 4,
      total_volumes: 4,
      thin_provisioning_support: true,
      thick_provisioning_support: false,
      location_info: 'LVMVolumeDriver:vm:cinder-volumes:thin:0',
    });
  });

  it('mirrors: total = free / (mirrors+1), free from the PVs', async () => {
    const h = await ready(harness('default', { lvmMirrors: 1, pvSizes: [10 * GiB, 6 * GiB] }));
    h.fake.pvFree = [10 * GiB, 6 * GiB];
    const { pools: [p] } = await h.driver.getVolumeStats();
    expect(p).toMatchObject({ total_capacity_gb: 8, free_capacity_gb: 6, provisioned_capacity_gb: 2, location_info: 'LVMVolumeDriver:vm:cinder-volumes:default:1' });
  });

  it('mirror free space: cinder vg_mirror_free_space', () => {
    expect(mirrorFreeSpace([10, 6], 1)).toBe(6);
    expect(mirrorFreeSpace([10, 6, 4], 1)).toBe(10);
    expect(mirrorFreeSpace([10, 6, 4], 2)).toBe(4);
    expect(mirrorFreeSpace([5], 1)).toBe(0);
  });

  it('options pass through: backend name, ratio string, reserved, functions, protocol', async () => {
    const h = await ready(harness('default', {
      backendName: null, maxOverSubscriptionRatio: '1.5', reservedPercentage: 10,
      filterFunction: 'volume.size < 10', goodnessFunction: '100', storageProtocol: 'iSER',
    }));
    const s = await h.driver.getVolumeStats();
    expect(s.volume_backend_name).toBe('LVM');
    expect(s.storage_protocol).toBe('iSER');
    expect(s.pools[0]).toMatchObject({ pool_name: 'LVM', max_over_subscription_ratio: '1.5', reserved_percentage: 10, filter_function: 'volume.size < 10', goodness_function: '100' });
  });

  it('each call reads one fresh report', async () => {
    const h = await ready(harness('default'));
    await h.driver.getVolumeStats();
    await h.driver.getVolumeStats();
    expect(h.fake.reportCount).toBe(2);
  });
});

describe('paths', () => {
  it('local path and export path', async () => {
    const h = harness('default');
    expect(h.driver.localPath(vol('1-2'))).toBe('/dev/mapper/cinder--volumes-volume--1--2');
    expect(h.driver.snapshotPath(snap('3', vol('1')))).toBe('/dev/mapper/cinder--volumes-_snapshot--3');
    expect(h.driver.exportPath(vol('1'))).toBe('/dev/cinder-volumes/volume-1');
    expect(h.driver.className).toBe('LVMVolumeDriver');
    expect(h.driver.secureFileOperationsEnabled()).toBe(false);
  });

  it('a hostile name never reaches LVM', async () => {
    const h = await ready(harness('default'));
    await expect(h.driver.createVolume({ ...vol('x'), name: 'volume-x; rm -rf /' })).rejects.toThrow(/not valid for LVM/);
    expect(() => h.driver.localPath({ name: '../../etc/passwd' })).toThrow(/not valid for LVM/);
    expect(h.fake.changes).toEqual([]);
  });
});
