// The argv builders against the command lines cinder-volume 21.3.1 actually ran
// (/work/shared/cinder/fixtures/lvm_commands_observed.log, captured through a logging shim), and
// against cinder's source for the commands that run did not reach.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  LVREMOVE_CONFIG,
  LVREMOVE_RETRY_CONFIG,
  activateArgv,
  createOnExtentsArgv,
  createSnapshotArgv,
  createThinPoolArgv,
  createVolumeArgv,
  deactivateArgv,
  extendArgv,
  fullReportArgv,
  gibSize,
  lvAttrArgv,
  lvOriginArgv,
  lvmVersionArgv,
  lvsInfoArgv,
  mergeSnapshotArgv,
  mirrorRegionSize,
  pvSegmentsArgv,
  pvsInfoArgv,
  removeArgv,
  renameArgv,
  tagsArgv,
  thinPoolUsageArgv,
  udevSettleArgv,
  vgExistsArgv,
  vgsInfoArgv,
} from '../../../drivers/lvm/lvm-commands.js';
import { LvmNameError } from '../../../drivers/lvm/lvm-names.js';

const sharedDir = process.env.CINDERBLOCK_SHARED ?? new URL('../../../../shared', import.meta.url).pathname;
const observed = readFileSync(`${sharedDir}/cinder/fixtures/lvm_commands_observed.log`, 'utf8')
  .split('\n')
  .filter((l) => l.trim() !== '')
  // "19:30:15 lvcreate -n volume-... cinder-volumes -L 1g": time stamp, then the argv split on spaces
  .map((l) => l.split(' ').slice(1));

/** The shim logged `lvm version` as plain `version` (it was installed as the `lvm` binary). */
function asLogged(argv: string[]): string[] {
  return argv[0] === 'lvm' ? argv.slice(1) : argv;
}

function seen(argv: string[]): boolean {
  const want = JSON.stringify(asLogged(argv));
  return observed.some((o) => JSON.stringify(o) === want);
}

const VG = 'cinder-volumes';
const V1 = 'volume-9531a336-8b9f-4724-9d8d-d83f99b240e6';
const V3 = 'volume-03d54be5-6dac-474f-b4fc-17c42c96abe6';

describe('argv builders match what cinder-volume ran', () => {
  it('every distinct observed command line is produced by a builder', () => {
    const built = new Set<string>();
    const add = (a: string[]): void => void built.add(JSON.stringify(asLogged(a)));
    add(lvmVersionArgv());
    add(vgExistsArgv(VG));
    add(vgsInfoArgv(VG));
    add(pvsInfoArgv({ ignoreSkippedCluster: true }));
    add(lvsInfoArgv(VG));
    for (const o of observed) {
      // per-volume lines: rebuild them from the names they carry
      const ref = o[o.length - 1]!;
      const [vg, lv] = ref.split('/');
      if (o[0] === 'lvcreate' && o[1] === '-n') add(createVolumeArgv({ vg: o[3]!, name: o[2]!, sizeGb: Number(o[5]!.slice(0, -1)) }));
      if (o[0] === 'lvcreate' && o[1] === '--name') add(createSnapshotArgv(VG, o[2]!, o[4]!.split('/')[1]!, o[6]!));
      if (o[0] === 'lvdisplay') add(lvAttrArgv(vg!, lv!, { readonly: true }));
      if (o[0] === 'lvextend') add(extendArgv(vg!, lv!, o[2]!));
      if (o[0] === 'lvchange') add(activateArgv(vg!, lv!));
      if (o[0] === 'lvs' && lv) add(lvsInfoArgv(vg!, lv));
    }
    const distinct = new Set(observed.map((o) => JSON.stringify(o)));
    for (const line of distinct) expect(built, `no builder for: ${JSON.parse(line).join(' ')}`).toContain(line);
  });

  it('info commands', () => {
    expect(seen(vgsInfoArgv(VG))).toBe(true);
    expect(vgsInfoArgv(VG)).toEqual(['vgs', '--noheadings', '--unit=g', '-o', 'name,size,free,lv_count,uuid', '--separator', ':', '--nosuffix', VG]);
    expect(seen(vgExistsArgv(VG))).toBe(true);
    expect(seen(pvsInfoArgv({ ignoreSkippedCluster: true }))).toBe(true);
    expect(pvsInfoArgv({ ignoreSkippedCluster: false })).not.toContain('--ignoreskippedcluster');
    expect(seen(lvsInfoArgv(VG))).toBe(true);
    expect(seen(lvsInfoArgv(VG, V3))).toBe(true);
    expect(seen(lvmVersionArgv())).toBe(true);
    expect(seen(lvAttrArgv(VG, V1, { readonly: true }))).toBe(true);
    expect(lvAttrArgv(VG, V1)).toEqual(['lvdisplay', '--noheading', '-C', '-o', 'Attr', `${VG}/${V1}`]);
    expect(lvOriginArgv(VG, '_snapshot-x')).toEqual(['lvdisplay', '--noheading', '-C', '-o', 'Origin', `${VG}/_snapshot-x`]);
    expect(thinPoolUsageArgv(VG, `${VG}-pool`)).toEqual([
      'lvs', '--noheadings', '--unit=g', '-o', 'size,data_percent', '--separator', ':', '--nosuffix', `/dev/${VG}/${VG}-pool`,
    ]);
  });

  it('thick create, extend, activate and snapshot are the observed lines', () => {
    expect(createVolumeArgv({ vg: VG, name: V1, sizeGb: 1 })).toEqual(['lvcreate', '-n', V1, VG, '-L', '1g']);
    expect(seen(createVolumeArgv({ vg: VG, name: V1, sizeGb: 1 }))).toBe(true);
    expect(seen(extendArgv(VG, V1, gibSize(2)))).toBe(true);
    expect(seen(activateArgv(VG, V1))).toBe(true);
    expect(seen(createSnapshotArgv(VG, '_snapshot-10c612be-b345-4cc4-aea6-c2eff1b586b9', V3, '2.00g'))).toBe(true);
  });
});

describe('argv builders for what the capture did not reach (from cinder/brick/local_dev/lvm.py)', () => {
  it('thin pool and thin volume', () => {
    expect(createThinPoolArgv(VG, `${VG}-pool`, '2.8499999999999996g')).toEqual(['lvcreate', '-T', '-L', '2.8499999999999996g', `${VG}/${VG}-pool`]);
    expect(createVolumeArgv({ vg: VG, name: V1, sizeGb: 5, thinPool: `${VG}-pool` })).toEqual([
      'lvcreate', '-T', '-V', '5g', '-n', V1, `${VG}/${VG}-pool`,
    ]);
  });

  it('thin snapshot has no size', () => {
    expect(createSnapshotArgv(VG, 'volume-new', V1, null)).toEqual(['lvcreate', '--name', 'volume-new', '--snapshot', `${VG}/${V1}`]);
  });

  it('mirrors, with a region size from 1.5 TiB', () => {
    expect(createVolumeArgv({ vg: VG, name: V1, sizeGb: 10, mirrors: 2 })).toEqual([
      'lvcreate', '-n', V1, VG, '-L', '10g', '--type=mirror', '-m', '2', '--nosync', '--mirrorlog', 'mirrored',
    ]);
    expect(createVolumeArgv({ vg: VG, name: V1, sizeGb: 1536, mirrors: 1 }).slice(-2)).toEqual(['-R', '2']);
    expect(mirrorRegionSize(1535)).toBeNull();
    expect(mirrorRegionSize(1536)).toBe(2);
    expect(mirrorRegionSize(2048)).toBe(2);
    expect(mirrorRegionSize(2049)).toBe(4);
    expect(mirrorRegionSize(5 * 1024)).toBe(8);
  });

  it('activation: -K normally, -k n when permanent, neither before LVM 2.02.99', () => {
    expect(activateArgv(VG, 'volume-c', { permanent: true })).toEqual(['lvchange', '-a', 'y', '--yes', '-k', 'n', `${VG}/volume-c`]);
    expect(activateArgv(VG, 'volume-c', { ignoreSkipActivationSupported: false })).toEqual(['lvchange', '-a', 'y', '--yes', `${VG}/volume-c`]);
    expect(deactivateArgv(VG, V1)).toEqual(['lvchange', '-a', 'n', `${VG}/${V1}`]);
  });

  it('lvremove and its retry configuration', () => {
    expect(LVREMOVE_CONFIG).toBe('activation { retry_deactivation = 1} ');
    expect(LVREMOVE_RETRY_CONFIG).toBe('activation { retry_deactivation = 1} devices { ignore_suspended_devices = 1}');
    expect(removeArgv(VG, V1)).toEqual(['lvremove', '--config', 'activation { retry_deactivation = 1} ', '-f', `${VG}/${V1}`]);
    expect(removeArgv(VG, V1, { retry: true })[2]).toBe(LVREMOVE_RETRY_CONFIG);
    expect(udevSettleArgv()).toEqual(['udevadm', 'settle']);
  });

  it('privsep commands: merge and rename', () => {
    expect(mergeSnapshotArgv(VG, '_snapshot-1')).toEqual(['lvconvert', '--merge', `${VG}/_snapshot-1`]);
    expect(renameArgv(VG, 'volume-a', 'volume-b')).toEqual(['lvrename', VG, 'volume-a', 'volume-b']);
  });

  it('tags: every one in one lvchange (one metadata commit), --addtag or --deltag', () => {
    const t1 = 'cinderblock_wipe_ukoHN8dRSp3HYEpC9huJC79xIGfY4uWH_256+256';
    const t2 = 'cinderblock_wipe_Y0ka1TwZgMB9dJaJX7MbwoJVycfiyQTv_0+128';
    expect(tagsArgv(VG, V1, 'add', [t1, t2])).toEqual(['lvchange', '--addtag', t1, '--addtag', t2, `${VG}/${V1}`]);
    expect(tagsArgv(VG, V1, 'delete', [t1])).toEqual(['lvchange', '--deltag', t1, `${VG}/${V1}`]);
    expect(() => tagsArgv(VG, V1, 'add', [])).toThrow(RangeError);
    for (const bad of ['-a', '--yes', 'a b', '@x', 'x'.repeat(128), '']) expect(() => tagsArgv(VG, V1, 'add', [bad])).toThrow(LvmNameError);
    expect(() => tagsArgv(VG, 'a/b', 'add', [t1])).toThrow(LvmNameError);
  });

  it('the state report is one fullreport of the VG in bytes', () => {
    const argv = fullReportArgv(VG);
    expect(argv.slice(0, 7)).toEqual(['lvm', 'fullreport', '--reportformat', 'json', '--units', 'b', '--nosuffix']);
    // --readonly would keep LVM from asking device-mapper: every LV would look inactive (seen in the lab)
    expect(argv).not.toContain('--readonly');
    // the LVs' tags: the driver's records of extents a revert freed (cinderblock_wipe_*)
    expect(argv[argv.indexOf('lv') + 2]!.split(',')).toContain('lv_tags');
    expect(argv[argv.length - 1]).toBe(VG);
  });
});

describe('no unsafe value reaches an argv', () => {
  const bad = ['', '-rf', 'a/b', 'a b', 'x;rm -rf /', '$(id)', '`id`', 'a|b', '..', '.', 'a\nb', 'snapshot-1', 'pvmove0', 'x_tdata', 'é', 'x'.repeat(128)];
  it.each(bad)('LV name %j is refused', (name) => {
    expect(() => createVolumeArgv({ vg: VG, name, sizeGb: 1 })).toThrow(LvmNameError);
  });
  it.each(['', '-vg', 'a/b', 'vg name', 'vg;x', '..'])('VG name %j is refused', (vg) => {
    expect(() => createVolumeArgv({ vg, name: V1, sizeGb: 1 })).toThrow(LvmNameError);
    expect(() => fullReportArgv(vg)).toThrow(LvmNameError);
  });
  it('sizes must be plain GiB figures', () => {
    expect(() => extendArgv(VG, V1, '2')).toThrow(RangeError);
    expect(() => extendArgv(VG, V1, '-2g')).toThrow(RangeError);
    expect(() => extendArgv(VG, V1, '2g --force')).toThrow(RangeError);
    expect(() => gibSize(1.5)).toThrow(RangeError);
    expect(() => createVolumeArgv({ vg: VG, name: V1, sizeGb: -1 })).toThrow(RangeError);
    expect(() => createSnapshotArgv(VG, '_snapshot-a', V1, 'lots')).toThrow(RangeError);
  });
  it('the error says what is allowed', () => {
    expect(() => createVolumeArgv({ vg: VG, name: 'a/b', sizeGb: 1 })).toThrow(/only letters, digits and '\+', '_', '\.', '-'/);
    expect(() => createVolumeArgv({ vg: VG, name: '-x', sizeGb: 1 })).toThrow(/must not start with '-'/);
  });
});

describe('extents: the physical-segment report and an LV on given extents (revert wipe)', () => {
  it('pvs --segments in JSON, bytes, the fields the parser reads, the VG selected', () => {
    expect(pvSegmentsArgv(VG)).toEqual([
      'pvs', '--reportformat', 'json', '--units', 'b', '--nosuffix', '--segments',
      '-o', 'pv_name,pv_uuid,pe_start,vg_extent_size,pvseg_start,pvseg_size,lv_name,lv_uuid,seg_start_pe',
      '--select', 'vg_name=cinder-volumes',
    ]);
    expect(() => pvSegmentsArgv('vg name')).toThrow(LvmNameError);
  });

  it('lvcreate on exactly the listed extents: -l is their total, ranges as PV:first-last (last included)', () => {
    expect(createOnExtentsArgv(VG, '_cinderblock-wipe-s', [{ pv: '/dev/vdb', start: 80, count: 64 }, { pv: '/dev/mapper/mpatha', start: 0, count: 1 }])).toEqual([
      'lvcreate', '-Z', 'n', '-W', 'n', '-y', '-l', '65', '-n', '_cinderblock-wipe-s', VG, '/dev/vdb:80-143', '/dev/mapper/mpatha:0-0',
    ]);
  });

  it('refuses what LVM would misread or what is not a range', () => {
    const r = { pv: '/dev/vdb', start: 0, count: 1 };
    expect(() => createOnExtentsArgv(VG, '_cinderblock-wipe-s', [])).toThrow(RangeError);
    expect(() => createOnExtentsArgv(VG, '_cinderblock-wipe-s', [{ ...r, pv: '/dev/disk/by-path/pci-0000:00:04.0' }])).toThrow(/PV:first-last/);
    expect(() => createOnExtentsArgv(VG, '_cinderblock-wipe-s', [{ ...r, pv: '-y' }])).toThrow(RangeError);
    expect(() => createOnExtentsArgv(VG, '_cinderblock-wipe-s', [{ ...r, pv: 'vdb' }])).toThrow(RangeError);
    expect(() => createOnExtentsArgv(VG, '_cinderblock-wipe-s', [{ ...r, count: 0 }])).toThrow(RangeError);
    expect(() => createOnExtentsArgv(VG, '_cinderblock-wipe-s', [{ ...r, start: -1 }])).toThrow(RangeError);
    expect(() => createOnExtentsArgv(VG, '_cinderblock-wipe-s', [{ ...r, start: 1.5 }])).toThrow(RangeError);
    expect(() => createOnExtentsArgv(VG, 'a/b', [r])).toThrow(LvmNameError);
  });
});
