// Name rules and the paths derived from names, compared with cinder's own local_path and
// _escape_snapshot (run from Debian's python3-cinder).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  LvmNameError,
  MAX_TAG,
  WIPE_TAG_PREFIX,
  assertLvName,
  assertTag,
  assertVgName,
  cloneSnapshotName,
  decodeWipeTag,
  encodeWipeTags,
  escapeSnapshotName,
  exportPath,
  isWipeTag,
  lvPath,
  mapperPath,
  pvUuidKey,
  recoveryWipeLvName,
  unescapeSnapshotName,
  wipeLvName,
} from '../../../drivers/lvm/lvm-names.js';

describe('LVM name rules', () => {
  it.each(['cinder-volumes', 'vg0', 'a+b', 'a_b.c', 'x'.repeat(127)])('VG %j is accepted', (n) => {
    expect(() => assertVgName(n)).not.toThrow();
  });
  it.each(['volume-3f1c', '_snapshot-3f1c', 'clone-snap-1', 'cinder-volumes-pool', 'lvol0'])('LV %j is accepted', (n) => {
    expect(() => assertLvName(n)).not.toThrow();
  });
  it.each([
    ['', /non-empty/],
    ['-x', /must not start with '-'/],
    ['a/b', /not valid for LVM/],
    ['a b', /not valid for LVM/],
    ["a'b", /not valid for LVM/],
    ['..', /reserved/],
    ['x'.repeat(128), /at most 127/],
  ])('VG %j is refused', (n, why) => {
    expect(() => assertVgName(n)).toThrow(LvmNameError);
    expect(() => assertVgName(n)).toThrow(why);
  });
  it.each([
    ['snapshot-1', /starts with 'snapshot'/],
    ['pvmove0', /starts with 'pvmove'/],
    ['vol_tmeta', /contains '_tmeta'/],
    ['vol_mimage_0', /contains '_mimage'/],
    ['a;b', /not valid for LVM/],
  ])('LV %j is refused', (n, why) => {
    expect(() => assertLvName(n)).toThrow(why);
  });
  it('non-strings are refused', () => {
    expect(() => assertLvName(undefined)).toThrow(LvmNameError);
    expect(() => assertVgName(7)).toThrow(LvmNameError);
  });
});

describe('snapshot name escaping', () => {
  it('escapes names starting with snapshot, and only those', () => {
    expect(escapeSnapshotName('snapshot-1')).toBe('_snapshot-1');
    expect(escapeSnapshotName('_snapshot-1')).toBe('_snapshot-1');
    expect(escapeSnapshotName('volume-1')).toBe('volume-1');
    expect(escapeSnapshotName('clone-snap-1')).toBe('clone-snap-1');
    expect(unescapeSnapshotName('_snapshot-1')).toBe('snapshot-1');
    expect(unescapeSnapshotName('volume-1')).toBe('volume-1');
  });
});

describe('paths', () => {
  it('export path and vg/lv', () => {
    expect(exportPath('cinder-volumes', 'volume-1')).toBe('/dev/cinder-volumes/volume-1');
    expect(lvPath('cinder-volumes', 'volume-1')).toBe('cinder-volumes/volume-1');
    expect(() => exportPath('cinder-volumes', '../x')).toThrow(LvmNameError);
  });

  const cases: [string, string][] = [
    ['cinder-volumes', 'volume-9531a336-8b9f-4724-9d8d-d83f99b240e6'],
    ['cinder-volumes', 'snapshot-10c612be-b345-4cc4-aea6-c2eff1b586b9'],
    ['cinder-volumes', 'clone-snap-2c1076de-91eb-42f7-916f-04100b105d61'],
    ['vg0', 'volume-1'],
    ['my--vg', 'a-b--c'],
  ];

  it('local path doubles dashes (literal)', () => {
    expect(mapperPath('cinder-volumes', 'snapshot-ab-cd')).toBe('/dev/mapper/cinder--volumes-_snapshot--ab--cd');
  });

  it.skipIf(!existsSync('/usr/lib/python3/dist-packages/cinder/volume/drivers/lvm.py'))(
    "is cinder's LVMVolumeDriver.local_path, name for name",
    () => {
      const script = [
        'import json, sys, types',
        'from cinder.volume.drivers.lvm import LVMVolumeDriver as D',
        'out = []',
        'for vg, name in json.load(sys.stdin):',
        '    o = types.SimpleNamespace(configuration=types.SimpleNamespace(volume_group=vg))',
        '    o._escape_snapshot = lambda n: D._escape_snapshot(o, n)',
        "    out.append(D.local_path(o, {'name': name}))",
        'print(json.dumps(out))',
      ].join('\n');
      const py = JSON.parse(execFileSync('/usr/bin/python3', ['-c', script], { input: JSON.stringify(cases), encoding: 'utf8' })) as string[];
      expect(cases.map(([vg, n]) => mapperPath(vg, n))).toEqual(py);
    },
    30_000,
  );
});

describe('temporary LV names', () => {
  it("a clone's temporary snapshot is cinder's clone-snap-<new volume id>", () => {
    expect(cloneSnapshotName('0b8d6c3e-1f0a-4a52-9a2f-4a7d1c4c8e11')).toBe('clone-snap-0b8d6c3e-1f0a-4a52-9a2f-4a7d1c4c8e11');
  });
  it("a revert's wipe LV is _cinderblock-wipe-<snapshot id>, a valid LV name", () => {
    const n = wipeLvName('5555eeee-0000-4000-8000-000000000007');
    expect(n).toBe('_cinderblock-wipe-5555eeee-0000-4000-8000-000000000007');
    expect(() => assertLvName(n)).not.toThrow();
  });
  it('a hostile id never makes a name', () => {
    expect(() => wipeLvName('a/../b')).toThrow(LvmNameError);
    expect(() => cloneSnapshotName('x y')).toThrow(LvmNameError);
  });
});

describe('extent records as LVM tags (a revert\'s freed extents, on the origin)', () => {
  // pv_uuid as LVM prints it (taken from the lab guest's pvs)
  const UUID = 'ukoHN8-dRSp-3HYE-pC9h-uJC7-9xIG-fY4uWH';
  const KEY = 'ukoHN8dRSp3HYEpC9huJC79xIGfY4uWH';
  const UUID2 = 'Y0ka1T-wZgM-B9dJ-aJX7-Mbwo-JVyc-fiyQTv';

  it('a PV uuid loses its hyphens; anything but 32 letters and digits is refused', () => {
    expect(pvUuidKey(UUID)).toBe(KEY);
    for (const bad of ['', 'FAKEPV-0', `${KEY}x`, 'ukoHN8-dRSp-3HYE-pC9h-uJC7-9xIG-fY4uW/', '/dev/vda']) {
      expect(() => pvUuidKey(bad)).toThrow(LvmNameError);
    }
  });

  it('one tag per PV: prefix, uuid, then _<start>+<count> per run, in their order', () => {
    expect(encodeWipeTags([{ pvUuid: UUID, start: 256, count: 256 }])).toEqual([`cinderblock_wipe_${KEY}_256+256`]);
    const tags = encodeWipeTags([
      { pvUuid: UUID, start: 256, count: 128 },
      { pvUuid: UUID2, start: 0, count: 128 },
      { pvUuid: UUID, start: 900, count: 1 },
    ]);
    expect(tags).toEqual([
      `cinderblock_wipe_${KEY}_256+128`,
      'cinderblock_wipe_Y0ka1TwZgMB9dJaJX7MbwoJVycfiyQTv_0+128',
      `cinderblock_wipe_${KEY}_900+1`,
    ]);
    for (const t of tags) expect(isWipeTag(t)).toBe(true);
  });

  it('a fragmented store is split over as many tags as LVM\'s length limit needs; decoding gives every run back', () => {
    const runs = Array.from({ length: 40 }, (_, i) => ({ pvUuid: UUID, start: 1_000_000 + i * 10, count: 3 + i }));
    const tags = encodeWipeTags(runs);
    expect(tags.length).toBeGreaterThan(1);
    for (const t of tags) {
      expect(t.length).toBeLessThanOrEqual(MAX_TAG);
      expect(() => assertTag(t)).not.toThrow();
      expect(t.startsWith(`${WIPE_TAG_PREFIX}${KEY}_`)).toBe(true);
    }
    expect(tags.flatMap((t) => decodeWipeTag(t)!)).toEqual(runs.map((r) => ({ ...r, pvUuid: KEY })));
  });

  it('the largest runs still fit: a tag always holds at least one', () => {
    const big = { pvUuid: UUID, start: Number.MAX_SAFE_INTEGER - 1, count: Number.MAX_SAFE_INTEGER };
    const [tag] = encodeWipeTags([big]);
    expect(tag!.length).toBeLessThanOrEqual(MAX_TAG);
    expect(decodeWipeTag(tag!)).toEqual([{ ...big, pvUuid: KEY }]);
  });

  it('refuses runs that are not whole extents, and PVs without a uuid', () => {
    expect(() => encodeWipeTags([{ pvUuid: UUID, start: -1, count: 1 }])).toThrow(RangeError);
    expect(() => encodeWipeTags([{ pvUuid: UUID, start: 0, count: 0 }])).toThrow(RangeError);
    expect(() => encodeWipeTags([{ pvUuid: UUID, start: 1.5, count: 1 }])).toThrow(RangeError);
    expect(() => encodeWipeTags([{ pvUuid: '', start: 0, count: 1 }])).toThrow(LvmNameError);
    expect(encodeWipeTags([])).toEqual([]);
  });

  it('decodes only well-formed records; other tags (an operator\'s) are not records', () => {
    expect(decodeWipeTag(`cinderblock_wipe_${KEY}_0+1_7+2`)).toEqual([{ pvUuid: KEY, start: 0, count: 1 }, { pvUuid: KEY, start: 7, count: 2 }]);
    for (const t of [
      'backup', 'cinderblock_other', `cinderblock_wipe_${KEY}`, `cinderblock_wipe_${KEY}_`, `cinderblock_wipe_${KEY}_1+0`,
      `cinderblock_wipe_${KEY}_01+2`, `cinderblock_wipe_${KEY}_1-2`, `cinderblock_wipe_short_1+2`, `cinderblock_wipe_${KEY}_1+2_`,
      `cinderblock_wipe_${KEY}_${'9'.repeat(20)}+1`,
    ]) expect(decodeWipeTag(t), t).toBeNull();
    expect(isWipeTag('backup')).toBe(false);
    expect(isWipeTag('cinderblock_wipe_garbage')).toBe(true);
  });

  it('tags: LVM\'s characters, 1 to 127 of them, no leading hyphen', () => {
    for (const ok of ['a', 'A_b+c.d-e', 'x'.repeat(127)]) expect(() => assertTag(ok)).not.toThrow();
    for (const bad of ['', '-a', 'a b', 'a,b', 'a/b', '@a', 'x'.repeat(128), 'é']) expect(() => assertTag(bad)).toThrow(LvmNameError);
  });

  it('the wipe LV start-up makes for a record is named after the LV carrying it (its uuid when too long)', () => {
    expect(recoveryWipeLvName('volume-a', 'ukoHN8-dRSp')).toBe('_cinderblock-wipe-volume-a');
    expect(recoveryWipeLvName('v'.repeat(120), UUID)).toBe(`_cinderblock-wipe-${KEY}`);
  });
});
